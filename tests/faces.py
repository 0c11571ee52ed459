"""Synthetic 48x48 grey faces for training and preprocessing tests (no dataset needed)."""

from __future__ import annotations

import cv2
import numpy as np

from emostream.labels import EMOTIONS
from emostream.training import FaceDataset

USAGES = ("Training", "PublicTest", "PrivateTest")


def synthetic(n_per_class: int = 8, seed: int = 0) -> FaceDataset:
    """Learnable faces: each class is a distinct brightness band plus noise."""
    rng = np.random.default_rng(seed)
    images, labels, usage = [], [], []
    for label in range(len(EMOTIONS)):
        for i in range(n_per_class):
            img = np.clip(rng.normal(30 + label * 30, 10, (48, 48)), 0, 255).astype(np.uint8)
            images.append(img)
            labels.append(label)
            usage.append(USAGES[i % 3])
    return FaceDataset(np.stack(images), np.array(labels), np.array(usage))


def blocky_faces(n: int, seed: int = 0) -> np.ndarray:
    """``n`` sharp 48x48 faces: random 24x24 noise upscaled without smoothing (for blur tests)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (n, 24, 24), dtype=np.uint8)
    return np.stack([cv2.resize(im, (48, 48), interpolation=cv2.INTER_NEAREST) for im in noise])
