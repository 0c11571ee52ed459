"""Bytes a frame takes on the frames topic, for docs/SCALING.md's capacity model.

Mean JPEG size as ingest publishes a frame (``emostream.frames.encode_frame``, quality 85) of the
built-in sample clip (640x360) and of a folder of photos scaled to 640 px wide:

    .venv/bin/python scripts/frame_sizes.py ../shared/data/photos/frames
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import cv2

from emostream.frames import encode_frame
from emostream.ingest.sources import sample_frames

WIDTH = 640


def photo_sizes(folder: Path) -> list[int]:
    sizes = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        image = cv2.imread(str(path))
        if image is None:
            continue
        height = round(image.shape[0] * WIDTH / image.shape[1])
        scaled = cv2.resize(image, (WIDTH, height), interpolation=cv2.INTER_AREA)
        sizes.append(len(encode_frame(scaled)))
    return sizes


def main() -> None:
    out: dict[str, float] = {
        "sample_clip_640x360_bytes_mean": statistics.mean(
            len(encode_frame(f)) for f in sample_frames(120)
        )
    }
    if len(sys.argv) > 1:
        sizes = photo_sizes(Path(sys.argv[1]))
        out |= {"photos": len(sizes), f"photos_{WIDTH}px_bytes_mean": statistics.mean(sizes)}
    print(json.dumps({k: round(v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
