"""The files of a training run: ``last.pt`` (resume state), ``best.pt``, metrics and plots."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import structlog
import torch

from emostream.extras import import_extra
from emostream.models.checkpoint import save_checkpoint
from emostream.training.epoch import EpochSetup
from emostream.training.evaluate import save_confusion_png

log = structlog.get_logger(__name__)


def resume(path: Path, cfg, run: EpochSetup) -> tuple[int, list, dict]:
    """Load ``path`` (a ``last.pt``) into the run's model, optimiser, schedule, EMA and RNG.

    Args:
        path: The run's ``last.pt``.
        cfg: The run's ``TrainConfig`` (its ``arch`` must match the file's).
        run: The objects to restore.

    Returns:
        The next epoch, the history so far and the best epoch's row.

    Raises:
        ValueError: The file belongs to a run of another architecture.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("arch", cfg.arch) != cfg.arch:
        raise ValueError(
            f"{path} belongs to a {state['arch']!r} run, not {cfg.arch!r}: "
            "use another --out or the same --arch"
        )
    run.net.load_state_dict(state["net"])
    run.opt.load_state_dict(state["opt"])
    run.sched.load_state_dict(state["sched"])
    if run.ema is not None and state.get("ema"):
        run.ema.load_state_dict(state["ema"])
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])  # dropout on the GPU draws from these
    log.info("resumed", epoch=state["epoch"], best_val_acc=state["best"]["val_acc"])
    return state["epoch"] + 1, state["history"], state["best"]


def save_last(path: Path, cfg, run: EpochSetup, history: list, best: dict, epoch: int) -> None:
    """Write the resume state atomically (a kill mid-write keeps the previous epoch's)."""
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "arch": cfg.arch,
            "net": run.net.state_dict(),
            "opt": run.opt.state_dict(),
            "sched": run.sched.state_dict(),
            "ema": run.ema.state_dict() if run.ema is not None else None,
            "history": history,
            "best": best,
            "epoch": epoch,
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if run.device.type == "cuda" else None,
        },
        tmp,
    )
    tmp.replace(path)


def save_best(out: Path, cfg, candidate, preprocessing, val: dict, epoch: int) -> None:
    """Write ``best.pt`` (the evaluated weights, with the run's metadata) and its confusion plot."""
    report = val["report"]
    meta = {
        "version": f"{cfg.arch}-sharp-{cfg.recipe}{'-kd' if cfg.teachers else ''}"
        f"-s{cfg.seed}-e{epoch}",
        "trained": True,
        "val_usage": cfg.val_usage,
        "val_acc_flip": report["accuracy"],
        "val_acc": val["plain_acc"],
        "epoch": epoch,
        "train_config": asdict(cfg),
    }
    save_checkpoint(out / "best.pt", candidate, cfg.arch, preprocessing, meta, cfg.half_weights)
    save_confusion_png(
        report["confusion_matrix"],
        out / "confusion_matrix.png",
        f"{cfg.arch} {cfg.val_usage} (epoch {epoch})",
    )


def append_metrics(path: Path, row: dict) -> None:
    """One JSON line per epoch (``metrics.jsonl``)."""
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, train and validation, as a PNG."""
    matplotlib = import_extra("matplotlib", "train", "plotting")
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
