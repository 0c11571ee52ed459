"""Image files on disk: which names the tools read as images (no heavy imports).

One list for every reader (``emostream predict``, ingest's folder source, ``bench detect``, the
FER2013 folder layout): the formats the bundled OpenCV decodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
)


def is_image_path(path: str | Path) -> bool:
    """True for a name with an image suffix (any case); the file itself is not opened."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def image_paths(paths: Iterable[Path]) -> list[Path]:
    """The image files among ``paths``, sorted (e.g. ``image_paths(folder.iterdir())``)."""
    return sorted(p for p in paths if is_image_path(p))
