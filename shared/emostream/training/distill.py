"""Knowledge distillation: cached teacher probabilities and the loss that learns from them.

A student trained with ``TrainConfig.teachers`` learns from two targets at once: the label
(label-smoothed cross-entropy, weight ``1 - kd_alpha``) and the teachers' probabilities softened at
``kd_temperature`` (weight ``kd_alpha``, scaled by the squared temperature as in Hinton et al.
2015 so its gradients keep their size as the temperature changes).

The teachers' probabilities are computed once per run, on the un-augmented Training faces, as the
mean over teachers of the mean over views (the face and its mirror image) of
``softmax(logits / kd_temperature)``, and cached beside the run (``teacher_targets_<hash>.npy``)
so a resumed run reuses them: the hash covers the teachers' bytes, the temperature and the faces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import structlog
import torch
import torch.nn.functional as F

from emostream.models.checkpoint import load_checkpoint
from emostream.training.evaluate import predict_logits

log = structlog.get_logger(__name__)


def _cache_key(teachers: Sequence[str], temperature: float, images: np.ndarray) -> str:
    digest = hashlib.sha256()
    for path in teachers:
        digest.update(Path(path).read_bytes())
    digest.update(f"T={temperature:.6g};n={len(images)}".encode())
    digest.update(hashlib.sha256(np.ascontiguousarray(images).tobytes()).digest())
    return digest.hexdigest()[:16]


def soft_targets(teachers: Sequence[str], images_u8: np.ndarray, temperature: float) -> np.ndarray:
    """N x 7 teacher probabilities at ``temperature``: mean over teachers and flip views.

    Args:
        teachers: Checkpoint paths (each loads as the worker would load it, calibration included).
        images_u8: N x 48 x 48 grey faces.
        temperature: The softening temperature (> 0).

    Returns:
        float32 probabilities, each row summing to 1.

    Raises:
        ValueError: No teacher, or a temperature <= 0.
    """
    if not teachers:
        raise ValueError("distillation needs at least one teacher checkpoint")
    if temperature <= 0:
        raise ValueError(f"kd_temperature must be > 0, got {temperature}")
    total = np.zeros((len(images_u8), 7), dtype=np.float64)
    for path in teachers:
        model = load_checkpoint(path)
        logits = torch.from_numpy(predict_logits(model, images_u8, flip=True))  # N x 2 x 7
        total += torch.softmax(logits / temperature, dim=2).mean(1).double().numpy()
    return (total / len(teachers)).astype(np.float32)


def cached_soft_targets(
    teachers: Sequence[str], images_u8: np.ndarray, temperature: float, out_dir: Path
) -> np.ndarray:
    """``soft_targets``, read from ``out_dir`` when this run computed them before."""
    path = out_dir / f"teacher_targets_{_cache_key(teachers, temperature, images_u8)}.npy"
    if path.exists():
        targets = np.load(path)
        if targets.shape == (len(images_u8), 7):
            log.info("teacher targets from cache", path=str(path))
            return targets
    targets = soft_targets(teachers, images_u8, temperature)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, targets)
    tmp.replace(path)
    log.info("teacher targets computed", path=str(path), teachers=len(teachers))
    return targets


def distill_loss(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft-target cross-entropy at ``temperature``, times its square (Hinton et al. 2015).

    Equal to KL(targets || softmax(logits / T)) * T^2 up to a constant of the targets, so its
    gradient is the distillation gradient.
    """
    log_p = F.log_softmax(logits / temperature, dim=1)
    return -(targets * log_p).sum(1).mean() * temperature**2
