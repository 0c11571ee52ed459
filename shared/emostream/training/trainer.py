"""FER2013 training (`emostream train`): recipes, the epoch loop's order, best-epoch selection.

The epoch itself is ``training.epoch``; the run's files (resume state, best checkpoint, metrics,
plots) are ``training.run_files``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog
import torch

from emostream.models.checkpoint import EmotionClassifier, load_checkpoint
from emostream.models.deepen import can_reshape, reshape_state_dict
from emostream.models.registry import get_spec
from emostream.models.rmn import RMNConfig
from emostream.training.distill import cached_soft_targets
from emostream.training.ema import WeightEMA
from emostream.training.epoch import EpochResult, EpochSetup, train_epoch
from emostream.training.evaluate import classification_report, predict_logits
from emostream.training.fer2013 import blur_warning, load_fer2013
from emostream.training.run_files import (
    append_metrics,
    plot_curves,
    resume,
    save_best,
    save_last,
)

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
    evaluated, selected and saved. ``mix`` is ``off``, ``mixup`` or ``cutmix``
    (Beta(``mix_alpha``)), applied to a fraction ``mix_p`` of the batches.

    ``init`` (a checkpoint path) starts the weights from that model instead of at random: a warm
    restart, one more cosine cycle on a committed snapshot, so a model can grow over sessions
    without any run depending on a machine surviving. The schedule, optimiser and EMA start fresh.

    ``teachers`` (checkpoint paths) turns on distillation (``training.distill``): the loss is
    ``(1 - kd_alpha) * label loss + kd_alpha * T^2 * soft-target loss`` at ``kd_temperature``.
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
    init: str | None = None
    teachers: tuple[str, ...] = ()
    kd_alpha: float = 0.7
    kd_temperature: float = 4.0


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
        opt: torch.optim.Optimizer = torch.optim.RAdam(net.parameters(), lr=lr, weight_decay=wd)
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


def _validate(model: EmotionClassifier, images: np.ndarray, labels: np.ndarray) -> dict:
    """Plain and flip-TTA accuracy, and the flip-TTA report and NLL, from one pass per view."""
    logits = predict_logits(model, images, flip=True)  # N x 2 x 7
    plain = logits[:, 0].argmax(1)
    probs = torch.softmax(torch.from_numpy(logits), dim=2).mean(1).numpy()
    nll = float(-np.log(np.clip(probs[np.arange(len(probs)), labels], 1e-9, None)).mean())
    report = classification_report(labels, probs.argmax(1))
    return {"report": report, "nll": nll, "plain_acc": round(float((plain == labels).mean()), 4)}


def _init_weights(cfg: TrainConfig, spec) -> dict | None:
    """The state dict of ``cfg.init`` (None without one), checked against ``spec``'s network."""
    if not cfg.init:
        return None
    source = load_checkpoint(cfg.init).net
    state = source.state_dict()
    target = spec.build()
    source_cfg = getattr(source, "config", None)
    if (
        isinstance(source_cfg, RMNConfig)
        and source_cfg != spec.config
        and can_reshape(source_cfg, spec.config)
    ):
        # Same widths, other block counts: added blocks start as the identity, dropped ones go.
        log.info("reshaping the --init model", init=cfg.init, blocks=spec.config.blocks)
        return reshape_state_dict(state, source_cfg, target)
    try:
        target.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(
            f"--init {cfg.init} is not a {cfg.arch!r} checkpoint, nor an RMN of the same widths "
            "with other block counts; pass --arch with its architecture"
        ) from exc
    return state


def _setup(
    cfg: TrainConfig, spec, train_set, device: torch.device, init: dict | None = None
) -> EpochSetup:
    """Model, optimiser, schedule and EMA, seeded by ``cfg.seed``; the faces on ``device``."""
    batch_size, lr, wd, max_rot = _recipe_defaults(cfg)
    torch.manual_seed(cfg.seed)
    net = spec.build()
    if init is not None:
        net.load_state_dict(init)
        log.info("weights initialised from a checkpoint", init=cfg.init)
    net = net.to(device, memory_format=torch.channels_last)
    steps_per_epoch = (len(train_set) + batch_size - 1) // batch_size
    if cfg.max_batches:
        steps_per_epoch = min(steps_per_epoch, cfg.max_batches)
    opt, sched = _optimizer(
        cfg, net, lr, wd, cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch
    )
    ema = WeightEMA(net, cfg.ema_decay) if cfg.ema_decay > 0 else None
    teacher_targets = None
    if cfg.teachers:
        targets = cached_soft_targets(
            cfg.teachers, train_set.images, cfg.kd_temperature, Path(cfg.out_dir)
        )
        teacher_targets = torch.from_numpy(targets).to(device)
    return EpochSetup(
        net=net,
        opt=opt,
        sched=sched,
        ema=ema,
        # Augmentation runs where training does.
        images=torch.from_numpy(train_set.images).to(device),
        labels=torch.from_numpy(train_set.labels).to(device),
        gen=torch.Generator().manual_seed(cfg.seed),
        device=device,
        input_size=spec.preprocessing.input_size,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        max_rotation_deg=max_rot,
        per_step_sched=cfg.recipe != "official",
        teacher_targets=teacher_targets,
    )


def _load_data(cfg: TrainConfig):
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
    return train_set, val_set


def _epoch_row(
    cfg: TrainConfig, epoch: int, fit: EpochResult, val: dict, lr: float, history: list, t0: float
) -> dict:
    epoch_s = time.perf_counter() - t0
    done = [h["epoch_s"] for h in history] + [epoch_s]
    return {
        "epoch": epoch,
        "train_loss": round(fit.loss_sum / fit.seen, 4),
        "train_acc": round(fit.correct / fit.seen, 4),
        "val_loss": round(val["nll"], 4),
        "val_acc": val["report"]["accuracy"],
        "val_acc_plain": val["plain_acc"],
        "lr": lr,
        "epoch_s": round(epoch_s, 1),
        "eta_s": round(float(np.mean(done[-5:])) * (cfg.epochs - epoch)),
    }


def train(cfg: TrainConfig) -> dict:
    """Train, resuming from ``out_dir/last.pt`` when present; return the best epoch's metrics.

    Args:
        cfg: The run.

    Returns:
        The best epoch's metrics row, with its classification ``report``.

    Raises:
        ValueError: An unknown ``amp`` or recipe, or a ``last.pt`` or ``init`` of another
            architecture.
    """
    if cfg.amp not in ("off", "bf16"):
        raise ValueError(f"amp must be 'off' or 'bf16', got {cfg.amp!r}")
    if cfg.teachers and not 0.0 <= cfg.kd_alpha <= 1.0:
        raise ValueError(f"kd_alpha must be within [0, 1], got {cfg.kd_alpha}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _recipe_defaults(cfg)  # an unknown recipe fails before the data loads
    spec = get_spec(cfg.arch)
    init = _init_weights(cfg, spec)  # a wrong --init fails before the data loads
    train_set, val_set = _load_data(cfg)
    run = _setup(cfg, spec, train_set, torch.device(cfg.device), init)
    history: list[dict] = []
    best = {"val_acc": -1.0}
    start_epoch = 1
    last_path = out / "last.pt"
    if last_path.exists():
        start_epoch, history, best = resume(last_path, cfg, run)
    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        fit = train_epoch(cfg, run, epoch)
        run.net.eval()
        candidate = run.ema.module if run.ema is not None else run.net
        model = EmotionClassifier(candidate, spec.preprocessing, name=cfg.arch, trained=True)
        val = _validate(model, val_set.images, val_set.labels)
        row = _epoch_row(cfg, epoch, fit, val, run.opt.param_groups[0]["lr"], history, t0)
        history.append(row)
        append_metrics(out / "metrics.jsonl", row)
        if not run.per_step_sched:
            # The official recipe's ReduceLROnPlateau: it steps on validation accuracy.
            assert isinstance(run.sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
            run.sched.step(val["report"]["accuracy"])
        if val["report"]["accuracy"] > best["val_acc"]:
            best = {**row, "report": val["report"]}
            save_best(out, cfg, candidate, spec.preprocessing, val, epoch)
        save_last(last_path, cfg, run, history, best, epoch)
        plot_curves(history, out / "curves.png")
        log.info("epoch done", **row, best_val_acc=best["val_acc"])
    (out / "best_report.json").write_text(json.dumps(best, indent=2))
    return best
