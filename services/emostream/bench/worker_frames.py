"""Synthetic camera frames for `emostream bench worker`: 640x480 JPEG records, 1-4 moving faces
per stream, from face photos or scikit-image's astronaut."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from emostream.errors import ConfigError
from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.worker.batch import RawFrame

FRAME_W, FRAME_H = 640, 480
FPS = 15.0
TILE_PX = 200  # a face tile (head and shoulders) this wide: faces ~45-70 px wide in the frame


def _astronaut_tiles(rng: np.random.Generator, count: int = 8) -> list[np.ndarray]:
    from emostream.sample_photo import astronaut_bgr

    face = astronaut_bgr()[0:300, 60:360]
    tiles = []
    for i in range(count):
        tile = cv2.flip(face, 1) if i % 2 else face
        gain = rng.uniform(0.75, 1.2)
        tiles.append(np.clip(tile.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    return tiles


def _photo_tiles(folder: Path, limit: int = 64) -> list[np.ndarray]:
    from emostream.bench.detect import find_images

    tiles = []
    for path, _ in find_images(folder)[::3][:limit]:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            tiles.append(image)
    if not tiles:
        raise ConfigError(f"no readable images under {folder}")
    return tiles


def _frame(tiles: list[np.ndarray], t: float, background: np.ndarray) -> np.ndarray:
    """One frame: each tile in its quarter of the frame, drifting on a small ellipse."""
    frame = background.copy()
    for k, tile in enumerate(tiles):
        cell_x, cell_y = (k % 2) * FRAME_W // 2, (k // 2) * FRAME_H // 2
        width = int(TILE_PX * (0.8 + 0.1 * k))
        height = min(int(width * tile.shape[0] / tile.shape[1]), FRAME_H // 2)
        small = cv2.resize(
            tile, (width, int(width * tile.shape[0] / tile.shape[1])), interpolation=cv2.INTER_AREA
        )[:height]
        x = cell_x + int((FRAME_W // 2 - width) * (0.5 + 0.4 * np.sin(t * 0.7 + k)))
        y = cell_y + int((FRAME_H // 2 - height) * (0.5 + 0.4 * np.cos(t * 0.5 + k)))
        frame[y : y + height, x : x + width] = small
    return frame


def record_frames(
    n_frames: int, streams: int, photos: Path | None, seed: int = 0, prefix: str = "bench"
) -> tuple[list[RawFrame], str]:
    """``n_frames`` JPEG records over ``streams`` streams (1-4 faces each), interleaved by seq."""
    rng = np.random.default_rng(seed)
    if photos is not None:
        pool = _photo_tiles(photos)
        source = f"photos under {photos}"
    else:
        pool = _astronaut_tiles(rng)
        source = "generated from scikit-image's astronaut photo"
    per_stream = -(-n_frames // streams)
    plans = []
    for s in range(streams):
        faces = 1 + s % 4
        picks = [pool[int(i)] for i in rng.choice(len(pool), size=faces, replace=len(pool) < faces)]
        shade = rng.integers(40, 200)
        background = np.full((FRAME_H, FRAME_W, 3), shade, np.uint8)
        plans.append((picks, background))
    records = []
    t0_ms = 1_700_000_000_000
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as encoder:  # cv2 frees the GIL
        for seq in range(per_stream):
            row = plans[: n_frames - len(records)]
            images = [
                _frame(picks, seq / FPS + s, background)
                for s, (picks, background) in enumerate(row)
            ]
            for s, payload in enumerate(encoder.map(encode_frame, images)):
                meta = FrameMeta(f"{prefix}-{s:03d}", seq, t0_ms + int(seq * 1000 / FPS))
                records.append(RawFrame("bench.frames", s, seq, payload, frame_headers(meta)))
    return records, source
