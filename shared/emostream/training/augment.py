"""Batched augmentation on tensors: flips and random affine warps, as the RMN recipe uses."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def to_input(images_u8: torch.Tensor, size: int) -> torch.Tensor:
    """N x H x W uint8 grey faces -> N x 3 x size x size floats in [0, 1]."""
    x = images_u8.float().div_(255.0).unsqueeze(1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.expand(-1, 3, -1, -1).contiguous()


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    max_rotation_deg: float = 15.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    max_shift: float = 0.08,
    flip_p: float = 0.5,
) -> torch.Tensor:
    """Random horizontal flip, rotation, scale and shift per sample (border pixels replicated)."""
    n = x.shape[0]
    dev = x.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=generator).to(dev) * (hi - lo) + lo

    angle = uniform(-max_rotation_deg, max_rotation_deg) * math.pi / 180.0
    scale = uniform(*scale_range)
    flip = torch.where(torch.rand(n, generator=generator).to(dev) < flip_p, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = cos * flip
    theta[:, 0, 1] = -sin
    theta[:, 1, 0] = sin * flip
    theta[:, 1, 1] = cos
    theta[:, 0, 2] = uniform(-max_shift, max_shift) * 2
    theta[:, 1, 2] = uniform(-max_shift, max_shift) * 2
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_erase(
    x: torch.Tensor,
    p: float = 0.25,
    max_frac: float = 0.25,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Zero a random rectangle in a fraction ``p`` of the samples (occlusion robustness)."""
    n, _, h, w = x.shape
    for i in torch.nonzero(torch.rand(n, generator=generator) < p).flatten().tolist():
        eh = int(h * max_frac * float(torch.rand(1, generator=generator)) + 4)
        ew = int(w * max_frac * float(torch.rand(1, generator=generator)) + 4)
        top = int(torch.randint(0, h - eh + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - ew + 1, (1,), generator=generator))
        x[i, :, top : top + eh, left : left + ew] = 0.0
    return x


def hflip(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=[-1])


def mix_batch(
    x: torch.Tensor, y: torch.Tensor, mode: str, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix of a batch with a permutation of itself.

    Returns the mixed inputs, the two label sets and the weight ``lam`` of the first; the loss is
    ``lam * CE(y_a) + (1 - lam) * CE(y_b)``. ``mode`` "off" returns the batch unchanged (lam 1).
    """
    if mode == "off" or alpha <= 0:
        return x, y, y, 1.0
    lam = float(torch.distributions.Beta(alpha, alpha).sample())  # global RNG: saved on resume
    perm = torch.randperm(x.shape[0], generator=generator)
    if mode == "mixup":
        return lam * x + (1 - lam) * x[perm], y, y[perm], lam
    if mode != "cutmix":
        raise ValueError(f"mix must be 'off', 'mixup' or 'cutmix', got {mode!r}")
    _, _, h, w = x.shape
    ch, cw = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
    cy = int(torch.randint(0, h, (1,), generator=generator))
    cx = int(torch.randint(0, w, (1,), generator=generator))
    top, bottom = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    left, right = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (h * w)
    return x, y, y[perm], lam
