"""Near-duplicate faces across FER2013 splits.

FER2013 holds the same photo more than once (re-crops, re-encodes, mirror images; about 12% of all
rows have a near-duplicate, KadenMc/EmotionRecognition). A test face whose near-duplicate is in
Training measures memory, not generalisation, so accuracy is also reported without them.

Method: each face is reduced to a 16 x 16 thumbnail (area interpolation removes JPEG noise and
small shifts), made zero-mean and unit-norm; two faces are near-duplicates when the cosine
similarity of their thumbnails (either way round, mirrored included) is at least ``threshold``.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_THRESHOLD = 0.92
_SIDE = 16


def thumbnails(images_u8: np.ndarray, mirror: bool = False) -> np.ndarray:
    """N x 48 x 48 uint8 -> N x 256 float32 zero-mean, unit-norm vectors."""
    ims = images_u8[:, :, ::-1] if mirror else images_u8
    small = np.stack(
        [
            cv2.resize(np.ascontiguousarray(im), (_SIDE, _SIDE), interpolation=cv2.INTER_AREA)
            for im in ims
        ]
    )
    v = small.reshape(len(ims), -1).astype(np.float32)
    v -= v.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-6)


def max_similarity(test_u8: np.ndarray, train_u8: np.ndarray, chunk: int = 512) -> np.ndarray:
    """For each test face, the highest thumbnail cosine similarity to any training face."""
    train = thumbnails(train_u8)
    best = np.full(len(test_u8), -1.0, dtype=np.float32)
    for mirror in (False, True):
        test = thumbnails(test_u8, mirror=mirror)
        for start in range(0, len(test), chunk):
            sims = test[start : start + chunk] @ train.T
            best[start : start + chunk] = np.maximum(best[start : start + chunk], sims.max(axis=1))
    return best


def near_duplicate_mask(
    test_u8: np.ndarray, train_u8: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """Boolean mask of the test faces that have a near-duplicate among the training faces."""
    return max_similarity(test_u8, train_u8) >= threshold
