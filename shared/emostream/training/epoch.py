"""One training epoch: seeded order, augmentation, mixing, the optimiser step and its schedule."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from emostream.extras import import_extra
from emostream.training.augment import mix_batch, random_affine, random_erase, to_input
from emostream.training.distill import distill_loss
from emostream.training.ema import WeightEMA


@dataclass
class EpochSetup:
    """What every epoch of one run shares: the model, its optimiser and the training tensors.

    Attributes:
        net: The model being trained (channels-last, on ``device``).
        opt: Its optimiser.
        sched: The LR schedule; stepped per batch when ``per_step_sched``.
        ema: The weight average, or None.
        images: Training faces (uint8, on ``device``).
        labels: Their labels (on ``device``).
        gen: The generator every random draw of the epoch takes from.
        device: Where training runs.
        input_size: The model's input side, in pixels.
        batch_size: Faces per step.
        steps_per_epoch: Steps per epoch.
        max_rotation_deg: Rotation range of the augmentation.
        per_step_sched: Step ``sched`` after every batch (else once per epoch on accuracy).
        teacher_targets: N x 7 teacher probabilities of the training faces (distillation), or
            None.
    """

    net: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    ema: WeightEMA | None
    images: torch.Tensor
    labels: torch.Tensor
    gen: torch.Generator
    device: torch.device
    input_size: int
    batch_size: int
    steps_per_epoch: int
    max_rotation_deg: float
    per_step_sched: bool
    teacher_targets: torch.Tensor | None = None


@dataclass
class EpochResult:
    """Summed training loss, correct predictions and faces seen over one epoch."""

    loss_sum: float
    correct: int
    seen: int


def train_epoch(cfg, run: EpochSetup, epoch: int) -> EpochResult:
    """Train one epoch of ``cfg`` (a ``TrainConfig``); its face order depends only on the epoch.

    Args:
        cfg: The run's ``TrainConfig``.
        run: The model, optimiser and data shared by the run's epochs.
        epoch: The 1-based epoch number (seeds the order, so a resumed run repeats it exactly).

    Returns:
        The epoch's summed loss, correct predictions and faces seen.
    """
    run.net.train()
    run.gen.manual_seed(cfg.seed * 1000 + epoch)  # resumable: each epoch's order is fixed
    perm = torch.randperm(len(run.labels), generator=run.gen)
    result = EpochResult(0.0, 0, 0)
    tqdm = import_extra("tqdm", "train", "training").tqdm
    bar = tqdm(range(run.steps_per_epoch), desc=f"epoch {epoch}/{cfg.epochs}", leave=False)
    for step in bar:
        idx = perm[step * run.batch_size : (step + 1) * run.batch_size]
        loss, logits, ya = _step(cfg, run, idx)
        y = run.labels[idx]
        result.loss_sum += float(loss.detach()) * len(y)
        result.correct += int((logits.argmax(1) == ya).sum())
        result.seen += len(y)
        bar.set_postfix(
            loss=f"{result.loss_sum / result.seen:.3f}", acc=f"{result.correct / result.seen:.3f}"
        )
    bar.close()
    return result


def _step(cfg, run: EpochSetup, idx: torch.Tensor):
    """One optimiser step on the faces ``idx``; returns the loss, logits and (first) targets."""
    gen = run.gen
    x = to_input(run.images[idx], run.input_size)
    x = random_affine(
        x, gen, max_rotation_deg=run.max_rotation_deg, scale_range=(0.85, 1.15), max_shift=0.1
    )
    x = random_erase(x, p=cfg.erase_p, generator=gen)
    y = run.labels[idx]
    use_mix = cfg.mix != "off" and float(torch.rand(1, generator=gen)) < cfg.mix_p
    # Mixed by positions so the teachers' targets can follow the labels (same random draws).
    pos = torch.arange(len(y), device=y.device)
    x, pa, pb, lam = mix_batch(x, pos, cfg.mix if use_mix else "off", cfg.mix_alpha, gen)
    ya, yb = y[pa], y[pb]
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(
        device_type=run.device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16"
    ):
        logits = run.net(x).float()
        loss = lam * F.cross_entropy(logits, ya, label_smoothing=cfg.label_smoothing)
        if lam < 1.0:
            loss = loss + (1 - lam) * F.cross_entropy(
                logits, yb, label_smoothing=cfg.label_smoothing
            )
        if run.teacher_targets is not None:
            t = run.teacher_targets[idx]
            soft = lam * t[pa] + (1 - lam) * t[pb]
            kd = distill_loss(logits, soft, cfg.kd_temperature)
            loss = (1 - cfg.kd_alpha) * loss + cfg.kd_alpha * kd
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    if run.ema is not None:
        run.ema.update(run.net)
    if run.per_step_sched:
        run.sched.step()
    return loss, logits, ya
