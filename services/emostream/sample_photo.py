"""The sample clip's photo, packaged: scikit-image's astronaut (Eileen Collins, NASA, public
domain), stored losslessly (WebP, the same pixels as ``skimage.data.astronaut()``), so the sample
ingest source, the demo and the benchmarks need neither scikit-image nor a download."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

PHOTO = Path(__file__).with_name("astronaut.webp")


@cache
def _photo() -> np.ndarray:
    image = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"the packaged sample photo is missing or unreadable: {PHOTO}")
    image.setflags(write=False)
    return image


def astronaut_bgr() -> np.ndarray:
    """The 512 x 512 BGR photo (a fresh copy; the caller may write to it)."""
    return _photo().copy()
