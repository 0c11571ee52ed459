"""Face crop geometry exactly as the official RMN inference path squares detector boxes."""

from __future__ import annotations

import math

import numpy as np

MIN_CROP_PX = 10


def official_crop_box(
    x: int, y: int, w: int, h: int, image_w: int, image_h: int
) -> tuple[int, int, int, int] | None:
    """Square a detector box with a 1.1 margin; return (x1, y1, x2, y2) or None if too small.

    centre = integer centre of the box; half side = floor(floor((w + h) / 2) / 2) * 1.1;
    corners truncated to int; the top-left clamped to >= 0 (numpy slicing clips the
    bottom-right); crops under 10 px in either dimension are skipped.
    """
    cx, cy = x + w // 2, y + h // 2
    half = math.floor(math.floor((w + h) / 2) / 2) * 1.1
    x1, y1 = max(int(cx - half), 0), max(int(cy - half), 0)
    x2, y2 = min(int(cx + half), image_w), min(int(cy + half), image_h)
    if x2 - x1 < MIN_CROP_PX or y2 - y1 < MIN_CROP_PX:
        return None
    return x1, y1, x2, y2


def crop(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    return gray[y1:y2, x1:x2]
