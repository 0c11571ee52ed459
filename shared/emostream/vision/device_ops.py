"""Image operations of the worker's CPU path redone as batched torch ops on any device.

A GPU worker must not copy frames back to the host between decode, detection and cropping, so
the resize before detection, the grey conversion and the official crop + resize happen here on
the device. Each reproduces the OpenCV call the CPU path makes closely enough that the same faces
are found and classified alike (``emostream bench worker`` measures the agreement):
- ``area_resize``: ``cv2.resize(..., INTER_AREA)`` when shrinking: each output pixel the
  area-weighted mean of the few source pixels it covers, one axis at a time; rounded like uint8;
- ``bgr_to_gray``: ``cv2.COLOR_BGR2GRAY``'s fixed-point weights, exactly;
- ``crop_resize``: ``gray[y1:y2, x1:x2]`` then ``cv2.resize(..., INTER_LINEAR)``, one
  ``grid_sample`` for all faces: the sample points are where OpenCV's would be (pixel centres
  mapped, clamped to the crop's edge). ``area`` is approximated by 4x4 supersampling.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]


def _area_taps(
    in_size: int, out_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(out x T source indices, out x T weights): each output pixel is the area-weighted mean of
    the T source pixels its interval touches (fractions at both ends), as INTER_AREA shrinks."""
    scale = in_size / out_size
    taps = int(np.ceil(scale)) + 1
    start = torch.arange(out_size, device=device, dtype=torch.float64)[:, None] * scale
    index = torch.floor(start) + torch.arange(taps, device=device, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(index + 1, start + scale) - torch.maximum(index, start)).clamp(min=0)
    weight = torch.where(index < in_size, overlap / scale, torch.zeros_like(overlap))
    return index.clamp(max=in_size - 1).long(), weight.float()


def _resample(x: torch.Tensor, dim: int, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted sum of a few gathered slices along ``dim``: O(pixels x taps), no dense matrix."""
    shape = [1] * x.ndim
    shape[dim] = -1
    out = x.index_select(dim, index[:, 0]) * weight[:, 0].view(shape)  # every filter has a tap
    for t in range(1, index.shape[1]):
        out = out + x.index_select(dim, index[:, t]) * weight[:, t].view(shape)
    return out


def area_resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """N x C x H x W (0..255) -> N x C x height x width float, rounded to integers like uint8.

    For shrinking (the only use: frames to the detection width); equal sizes pass through.
    """
    h, w = images.shape[-2:]
    if (h, w) == (height, width):
        return images.float()
    if height > h or width > w:
        raise ValueError(f"area_resize shrinks only: {h}x{w} -> {height}x{width}")
    x = _resample(images.float(), images.ndim - 1, *_area_taps(w, width, images.device))
    x = _resample(x, images.ndim - 2, *_area_taps(h, height, images.device))
    return x.round_().clamp_(0, 255)


def bgr_to_gray(images: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W BGR uint8 -> N x 1 x H x W float grey (0..255), as cv2 rounds it."""
    x = images.to(torch.int32)
    b, g, r = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return ((b * 3735 + g * 19235 + r * 9798 + 16384) >> 15).float()  # OpenCV's 15-bit weights


def _axis(lo: torch.Tensor, hi: torch.Tensor, out: int, full: int) -> torch.Tensor:
    """Normalised grid coordinates (K x out) of OpenCV's bilinear sample points in [lo, hi)."""
    j = torch.arange(out, device=lo.device, dtype=torch.float32)[None, :]
    length = (hi - lo).float()[:, None]
    src = lo.float()[:, None] + (j + 0.5) * length / out - 0.5
    src = torch.minimum(torch.maximum(src, lo.float()[:, None]), hi.float()[:, None] - 1)
    return (src + 0.5) * 2.0 / full - 1.0


def crop_resize(
    gray: torch.Tensor,
    frame_index: torch.Tensor,
    boxes: torch.Tensor,
    size: int,
    interpolation: str = "bilinear",
) -> torch.Tensor:
    """Official crops of grey frames, resized: K x 1 x size x size float (0..255, rounded).

    ``gray`` is N x 1 x H x W; ``frame_index`` (K) says which frame each box (K x 4: x1, y1,
    x2, y2, integers, inside the frame) is cut from.
    """
    k = boxes.shape[0]
    if k == 0:
        return gray.new_zeros((0, 1, size, size))
    n, _, h, w = gray.shape
    factor = 4 if interpolation == "area" else 1
    samples = size * factor
    gx = _axis(boxes[:, 0], boxes[:, 2], samples, w)  # K x samples
    gy = _axis(boxes[:, 1], boxes[:, 3], samples, h)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    # One grid_sample per batch: faces of a frame are stacked along the output height.
    per_frame = torch.bincount(frame_index, minlength=n)
    rows = int(per_frame.max().item())
    slot = torch.zeros(k, dtype=torch.long, device=gray.device)
    order = torch.argsort(frame_index, stable=True)
    starts = torch.cumsum(per_frame, 0) - per_frame
    slot[order] = torch.arange(k, device=gray.device) - starts[frame_index[order]]
    canvas = grid.new_full((n, rows, samples, samples, 2), -2.0)  # off-image: never read back
    canvas[frame_index, slot] = grid
    mode = "nearest" if interpolation == "nearest" else "bilinear"
    out = F.grid_sample(
        gray.float(),
        canvas.reshape(n, rows * samples, samples, 2),
        mode=mode,
        padding_mode="border",
        align_corners=False,
    )
    out = out.reshape(n, rows, samples, samples)[frame_index, slot][:, None]
    if factor > 1:
        out = F.avg_pool2d(out, factor)
    return out.round_().clamp_(0, 255)
