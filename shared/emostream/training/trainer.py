"""`emostream train`: FER2013 training with resumable checkpoints, metrics, curves and a confusion matrix."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import structlog
import torch
import torch.nn.functional as F
from tqdm import tqdm

from emostream.models.checkpoint import EmotionClassifier, save_checkpoint
from emostream.models.registry import get_spec
from emostream.training.augment import mix_batch, random_affine, random_erase, to_input
from emostream.training.ema import WeightEMA
from emostream.training.evaluate import classification_report, predict_logits, save_confusion_png
from emostream.training.fer2013 import blur_warning, load_fer2013

log = structlog.get_logger(__name__)

RECIPES = ("sgd", "fast", "official")


@dataclass
class TrainConfig:
    """One training run. ``recipe`` picks the optimiser and schedule.

    ``sgd`` (default): SGD with Nesterov momentum 0.9, linear warm-up then one cosine anneal over
    the planned epochs, batch 256, lr 0.1, weight decay 5e-4 (what reached 68% in five GPU minutes,
    ../shared/reference/FER2013_RECIPES.md section 6).
    ``fast``: AdamW, one-cycle LR, batch 128 (the recipe of the first packaged model).
    ``official``: the RMN paper's recipe (RAdam lr 1e-4, weight decay 1e-3, batch 48, flips and
    +-30 degree rotations, LR divided by 10 when PublicTest accuracy plateaus).

    ``ema_decay`` > 0 keeps an exponential moving average of the weights; it is the model that is
    evaluated, selected and saved. ``mix`` is ``off``, ``mixup`` or ``cutmix`` (Beta(``mix_alpha``)),
    applied to a fraction ``mix_p`` of the batches.
    """

    data: str
    out_dir: str
    arch: str = "rmn_compact"
    recipe: str = "sgd"
    epochs: int = 60
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    ema_decay: float = 0.999
    mix: str = "off"
    mix_alpha: float = 1.0
    mix_p: float = 0.5
    erase_p: float = 0.5
    seed: int = 0
    threads: int | None = None
    max_batches: int | None = None  # per epoch; for smoke tests
    val_usage: str = "PublicTest"
    half_weights: bool = True
    amp: str = "off"  # "bf16": autocast forward and loss (CPU or CUDA); weights stay fp32
    device: str = "cpu"


def _recipe_defaults(cfg: TrainConfig) -> tuple[int, float, float, float]:
    """Batch size, lr, weight decay, max rotation for the recipe."""
    if cfg.recipe == "official":
        return cfg.batch_size or 48, cfg.lr or 1e-4, cfg.weight_decay or 1e-3, 30.0
    if cfg.recipe == "fast":
        return cfg.batch_size or 128, cfg.lr or 3e-3, cfg.weight_decay or 5e-4, 15.0
    if cfg.recipe == "sgd":
        return cfg.batch_size or 256, cfg.lr or 0.1, cfg.weight_decay or 5e-4, 15.0
    raise ValueError(f"recipe must be one of {RECIPES}, got {cfg.recipe!r}")


def _optimizer(
    cfg: TrainConfig,
    net: torch.nn.Module,
    lr: float,
    wd: float,
    total_steps: int,
    warmup_steps: int,
):
    if cfg.recipe == "official":
        opt = torch.optim.RAdam(net.parameters(), lr=lr, weight_decay=wd)
        return opt, torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", patience=2, factor=0.1
        )
    if cfg.recipe == "fast":
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd)
        return opt, torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=total_steps, pct_start=0.15
        )
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


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
    a2.plot(epochs, [h["val_acc"] for h in history], label="val (flip TTA)")
    a2.set_title("accuracy")
    a2.legend()
    for ax in (a1, a2):
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _validate(model: EmotionClassifier, images: np.ndarray, labels: np.ndarray) -> dict:
    """Plain and flip-TTA accuracy, and the flip-TTA report and NLL, from one pass per view."""
    logits = predict_logits(model, images, flip=True)  # N x 2 x 7
    plain = logits[:, 0].argmax(1)
    probs = torch.softmax(torch.from_numpy(logits), dim=2).mean(1).numpy()
    nll = float(-np.log(np.clip(probs[np.arange(len(probs)), labels], 1e-9, None)).mean())
    report = classification_report(labels, probs.argmax(1))
    return {"report": report, "nll": nll, "plain_acc": round(float((plain == labels).mean()), 4)}


def _resume(path: Path, cfg: TrainConfig, net, opt, sched, ema) -> tuple[int, list, dict]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("arch", cfg.arch) != cfg.arch:
        raise ValueError(
            f"{path} belongs to a {state['arch']!r} run, not {cfg.arch!r}: "
            "use another --out or the same --arch"
        )
    net.load_state_dict(state["net"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    if ema is not None and state.get("ema"):
        ema.load_state_dict(state["ema"])
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])  # dropout on the GPU draws from these
    log.info("resumed", epoch=state["epoch"], best_val_acc=state["best"]["val_acc"])
    return state["epoch"] + 1, state["history"], state["best"]


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
    device = torch.device(cfg.device)

    train_set = load_fer2013(cfg.data, "Training")
    val_set = load_fer2013(cfg.data, cfg.val_usage)
    warning = blur_warning(train_set.images, val_set.images)
    if warning:
        log.warning("training faces look blurred", detail=warning)
    log.info(
        "data loaded",
        train=len(train_set),
        val=len(val_set),
        arch=cfg.arch,
        recipe=cfg.recipe,
        epochs=cfg.epochs,
    )

    torch.manual_seed(cfg.seed)
    net = spec.build().to(device, memory_format=torch.channels_last)
    steps_per_epoch = (len(train_set) + batch_size - 1) // batch_size
    if cfg.max_batches:
        steps_per_epoch = min(steps_per_epoch, cfg.max_batches)
    opt, sched = _optimizer(
        cfg, net, lr, wd, cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch
    )
    ema = WeightEMA(net, cfg.ema_decay) if cfg.ema_decay > 0 else None

    history: list[dict] = []
    best = {"val_acc": -1.0}
    start_epoch = 1
    last_path = out / "last.pt"
    if last_path.exists():
        start_epoch, history, best = _resume(last_path, cfg, net, opt, sched, ema)

    images = torch.from_numpy(train_set.images).to(device)  # augmentation runs where training does
    labels = torch.from_numpy(train_set.labels).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    metrics_path = out / "metrics.jsonl"
    per_step_sched = cfg.recipe != "official"
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
            x = random_affine(
                x, gen, max_rotation_deg=max_rot, scale_range=(0.85, 1.15), max_shift=0.1
            )
            x = random_erase(x, p=cfg.erase_p, generator=gen)
            y = labels[idx]
            use_mix = cfg.mix != "off" and float(torch.rand(1, generator=gen)) < cfg.mix_p
            x, ya, yb, lam = mix_batch(x, y, cfg.mix if use_mix else "off", cfg.mix_alpha, gen)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(
                device_type=device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16"
            ):
                logits = net(x).float()
                loss = lam * F.cross_entropy(logits, ya, label_smoothing=cfg.label_smoothing)
                if lam < 1.0:
                    loss = loss + (1 - lam) * F.cross_entropy(
                        logits, yb, label_smoothing=cfg.label_smoothing
                    )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update(net)
            if per_step_sched:
                sched.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == ya).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        bar.close()

        net.eval()
        candidate = ema.module if ema is not None else net
        model = EmotionClassifier(candidate, spec.preprocessing, name=cfg.arch, trained=True)
        val = _validate(model, val_set.images, val_set.labels)
        report = val["report"]
        epoch_s = time.perf_counter() - t0
        done = [h["epoch_s"] for h in history] + [epoch_s]
        row = {
            "epoch": epoch,
            "train_loss": round(loss_sum / seen, 4),
            "train_acc": round(correct / seen, 4),
            "val_loss": round(val["nll"], 4),
            "val_acc": report["accuracy"],
            "val_acc_plain": val["plain_acc"],
            "lr": opt.param_groups[0]["lr"],
            "epoch_s": round(epoch_s, 1),
            "eta_s": round(float(np.mean(done[-5:])) * (cfg.epochs - epoch)),
        }
        history.append(row)
        with metrics_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        if not per_step_sched:
            sched.step(report["accuracy"])
        if report["accuracy"] > best["val_acc"]:
            best = {**row, "report": report}
            meta = {
                "version": f"{cfg.arch}-sharp-{cfg.recipe}-s{cfg.seed}-e{epoch}",
                "trained": True,
                "val_usage": cfg.val_usage,
                "val_acc_flip": report["accuracy"],
                "val_acc": val["plain_acc"],
                "epoch": epoch,
                "train_config": asdict(cfg),
            }
            save_checkpoint(
                out / "best.pt", candidate, cfg.arch, spec.preprocessing, meta, cfg.half_weights
            )
            save_confusion_png(
                report["confusion_matrix"],
                out / "confusion_matrix.png",
                f"{cfg.arch} {cfg.val_usage} (epoch {epoch})",
            )
        tmp = last_path.with_suffix(".tmp")
        torch.save(
            {
                "arch": cfg.arch,
                "net": net.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "history": history,
                "best": best,
                "epoch": epoch,
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            },
            tmp,
        )
        tmp.replace(last_path)  # a kill mid-write leaves the previous epoch's state intact
        _plot_curves(history, out / "curves.png")
        log.info("epoch done", **row, best_val_acc=best["val_acc"])
    (out / "best_report.json").write_text(json.dumps(best, indent=2))
    return best
