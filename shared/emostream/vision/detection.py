"""What a face detector returns (``Detection``) and is (``FaceDetector``); kept apart from the
detectors so the PyTorch YuNet (``yunet_torch``) and ``detector`` import this, not each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detection:
    x: int
    y: int
    w: int
    h: int
    score: float


class FaceDetector(Protocol):
    name: str

    def detect(self, image_bgr: np.ndarray) -> list[Detection]: ...


def yunet_rows_to_detections(
    rows, width: int, height: int, min_face_px: int, max_faces: int
) -> list[Detection]:
    """YuNet output rows (x, y, w, h, 10 landmark values, score) -> clamped integer boxes, largest
    first; shared by OpenCV's YuNet and the PyTorch one so both report faces the same way."""
    found = []
    for row in rows:
        x, y, bw, bh = (int(round(float(v))) for v in row[:4])
        x, y = max(x, 0), max(y, 0)
        bw, bh = min(bw, width - x), min(bh, height - y)
        if min(bw, bh) < min_face_px:
            continue
        found.append(Detection(x, y, bw, bh, float(min(max(row[-1], 0.0), 1.0))))
    found.sort(key=lambda d: d.w * d.h, reverse=True)
    return found[:max_faces]
