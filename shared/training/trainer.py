"""`emostream train`: FER2013 training with resumable checkpoints, metrics, curves and a confusion matrix."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import structlog
import torch
import torch.nn.functional as F
from tqdm import tqdm

from emostream.models.checkpoint import save_checkpoint
from emostream.models.registry import get_spec
from emostream.training.augment import random_affine, random_erase, to_input
from emostream.training.evaluate import classification_report, predict_proba, save_confusion_png
from emostream.training.fer2013 import estimate_blur_sigma, load_fer2013

log = structlog.get_logger(__name__)


@dataclass
class TrainConfig:
    """One training run. ``recipe`` picks the optimiser and schedule.

    ``official``: the RMN paper's recipe (RAdam lr 1e-4, weight decay 1e-3, batch 48, flips and
    +-30 degree rotations, LR divided by 10 when PublicTest accuracy plateaus).
    ``fast``: for compact models on CPUs (AdamW, one-cycle LR, label smoothing, batch 128).
    """

    data: str
    out_dir: str
    arch: str = "rmn_compact"
    recipe: str = "fast"
    epochs: int = 30
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    label_smoothing: float = 0.1
    seed: int = 0
    threads: int | None = None
    max_batches: int | None = None  # per epoch; for smoke tests
    val_usage: str = "PublicTest"
    half_weights: bool = True
    input_blur_sigma: float | None = None  # None: estimated from the data (see estimate_blur_sigma)
    amp: str = "off"  # "bf16": autocast forward and loss (CPU or CUDA); weights stay fp32


def _recipe_defaults(cfg: TrainConfig) -> tuple[int, float, float, float]:
    """Batch size, lr, weight decay, max rotation for the recipe."""
    if cfg.recipe == "official":
        return cfg.batch_size or 48, cfg.lr or 1e-4, cfg.weight_decay or 1e-3, 30.0
    if cfg.recipe == "fast":
        return cfg.batch_size or 128, cfg.lr or 3e-3, cfg.weight_decay or 5e-4, 15.0
    raise ValueError(f"recipe must be 'official' or 'fast', got {cfg.recipe!r}")


def _plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(epochs, [h["train_loss"] for h in history], label="train")
    a1.plot(epochs, [h["val_loss"] for h in history], label="val")
    a1.set_title("loss")
    a1.legend()
    a2.plot(epochs, [h["train_acc"] for h in history], label="train")
    a2.plot(epochs, [h["val_acc"] for h in history], label="val")
    a2.set_title("accuracy")
    a2.legend()
    for ax in (a1, a2):
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(cfg: TrainConfig) -> dict:
    """Train, resuming from ``out_dir/last.pt`` when present; return the best epoch's metrics."""
    if cfg.amp not in ("off", "bf16"):
        raise ValueError(f"amp must be 'off' or 'bf16', got {cfg.amp!r}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batch_size, lr, wd, max_rot = _recipe_defaults(cfg)
    spec = get_spec(cfg.arch)
    size = spec.preprocessing.input_size

    train_set = load_fer2013(cfg.data, "Training")
    val_set = load_fer2013(cfg.data, cfg.val_usage)
    blur = cfg.input_blur_sigma
    if blur is None:
        blur = estimate_blur_sigma(train_set.images, val_set.images)
    preprocessing = replace(spec.preprocessing, blur_sigma=blur)
    log.info("data loaded", train=len(train_set), val=len(val_set), arch=cfg.arch,
             input_blur_sigma=blur)

    torch.manual_seed(cfg.seed)
    net = spec.build().to(memory_format=torch.channels_last)
    steps_per_epoch = (len(train_set) + batch_size - 1) // batch_size
    if cfg.max_batches:
        steps_per_epoch = min(steps_per_epoch, cfg.max_batches)
    if cfg.recipe == "official":
        opt = torch.optim.RAdam(net.parameters(), lr=lr, weight_decay=wd)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=2, factor=0.1)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
        )

    history: list[dict] = []
    best = {"val_acc": -1.0}
    start_epoch = 1
    last_path = out / "last.pt"
    if last_path.exists():
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        history, best = state["history"], state["best"]
        start_epoch = state["epoch"] + 1
        torch.set_rng_state(state["rng"])
        log.info("resumed", epoch=state["epoch"], best_val_acc=best["val_acc"])

    images = torch.from_numpy(train_set.images)
    labels = torch.from_numpy(train_set.labels)
    gen = torch.Generator().manual_seed(cfg.seed)
    metrics_path = out / "metrics.jsonl"
    for epoch in range(start_epoch, cfg.epochs + 1):
        net.train()
        t0 = time.perf_counter()
        gen.manual_seed(cfg.seed * 1000 + epoch)  # resumable: each epoch's order is fixed
        perm = torch.randperm(len(labels), generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{cfg.epochs}", leave=False)
        for step in bar:
            idx = perm[step * batch_size : (step + 1) * batch_size]
            x = to_input(images[idx], size)
            x = random_affine(x, gen, max_rotation_deg=max_rot)
            x = random_erase(x, generator=gen).contiguous(memory_format=torch.channels_last)
            y = labels[idx]
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=cfg.amp == "bf16"):
                logits = net(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if cfg.recipe == "fast":
                sched.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        bar.close()

        from emostream.models.checkpoint import EmotionClassifier

        net.eval()
        model = EmotionClassifier(net, preprocessing, name=cfg.arch, trained=True)
        probs = predict_proba([model], val_set.images)
        val_pred = probs.argmax(1)
        val_loss = float(
            -np.log(np.clip(probs[np.arange(len(probs)), val_set.labels], 1e-9, None)).mean()
        )
        report = classification_report(val_set.labels, val_pred)
        row = {
            "epoch": epoch,
            "train_loss": round(loss_sum / seen, 4),
            "train_acc": round(correct / seen, 4),
            "val_loss": round(val_loss, 4),
            "val_acc": report["accuracy"],
            "lr": opt.param_groups[0]["lr"],
            "epoch_s": round(time.perf_counter() - t0, 1),
        }
        history.append(row)
        with metrics_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        if cfg.recipe == "official":
            sched.step(report["accuracy"])
        if report["accuracy"] > best["val_acc"]:
            best = {**row, "report": report}
            meta = {
                "version": f"{cfg.arch}-fer2013-e{epoch}",
                "trained": True,
                "val_usage": cfg.val_usage,
                "val_acc": report["accuracy"],
                "epoch": epoch,
                "train_config": asdict(cfg),
            }
            save_checkpoint(out / "best.pt", net, cfg.arch, preprocessing, meta, cfg.half_weights)
            save_confusion_png(report["confusion_matrix"], out / "confusion_matrix.png",
                               f"{cfg.arch} {cfg.val_usage} (epoch {epoch})")
        torch.save(
            {
                "net": net.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "history": history,
                "best": best,
                "epoch": epoch,
                "rng": torch.get_rng_state(),
            },
            last_path,
        )
        _plot_curves(history, out / "curves.png")
        log.info("epoch done", **row, best_val_acc=best["val_acc"])
    (out / "best_report.json").write_text(json.dumps(best, indent=2))
    return best
