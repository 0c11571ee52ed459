"""`emostream bench onset`: what a new track reports in its first second (issue 38's question
about calm faces read as another emotion when a person first appears).

Each photo of ``--label`` (default ``neutral``) under ``--photos`` (labelled folders such as
``../shared/data/photos/frames``: ``<label>/*.jpg``) becomes a clip of ``--seconds`` at ``--fps``:
the photo on a 640x480 canvas, drifting a few pixels, with brightness, sensor-noise and JPEG
jitter, a stream of its own so that every clip opens a new track. The worker's own processor, as
`emostream worker` builds it from the environment (``--checkpoint`` picks the model), runs over
each clip in micro-batches of ``--batch-frames``.

Reported per clip and summed up: the raw label of the first event (what one still frame says),
the share of frames whose raw label is ``--label``, and the smoothed label the track reports over
the first second (at its end, and on every frame), with ``uncertain`` (abstaining) counted apart.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from emostream.bench import add_bench
from emostream.bench.smoothing import Observed
from emostream.errors import ConfigError
from emostream.labels import EMOTIONS

HELP = "what new tracks report in their first second, on still photos of one emotion"
FRAME_W, FRAME_H = 640, 480


def register(subparsers) -> None:
    """Add `bench onset`."""
    b = add_bench(subparsers, "onset", run_bench_onset, HELP, seed=True)
    b.add_argument("--photos", required=True, help="labelled folders: <emotion>/*.jpg")
    b.add_argument("--label", default="neutral", choices=list(EMOTIONS))
    b.add_argument("--checkpoint", help="model(s), comma-separated (default: the worker's)")
    b.add_argument("--seconds", type=float, default=1.0, help="clip length (the track's start)")
    b.add_argument("--fps", type=int, default=15)
    b.add_argument("--batch-frames", type=int, default=5, help="frames per micro-batch")
    b.add_argument("--limit", type=int, default=0, help="at most this many photos (0: all)")


def clip_frames(photo: np.ndarray, n_frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n_frames`` BGR frames: ``photo`` fitted into 640x480, drifting with per-frame jitter."""
    scale = min(FRAME_W * 0.9 / photo.shape[1], FRAME_H * 0.95 / photo.shape[0])
    w, h = int(photo.shape[1] * scale), int(photo.shape[0] * scale)
    fitted = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    shade = float(rng.integers(60, 200))
    frames = []
    for i in range(n_frames):
        frame = np.full((FRAME_H, FRAME_W, 3), shade, np.float32)
        x = (FRAME_W - w) // 2 + int(round(6 * np.sin(i / 4.0))) + int(rng.integers(-1, 2))
        y = (FRAME_H - h) // 2 + int(round(3 * np.cos(i / 5.0))) + int(rng.integers(-1, 2))
        x, y = min(max(x, 0), FRAME_W - w), min(max(y, 0), FRAME_H - h)
        frame[y : y + h, x : x + w] = fitted
        frame = frame * rng.uniform(0.95, 1.05) + rng.normal(0.0, 2.0, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


@dataclass
class ClipSeen:
    """One clip's events, in frame order: the raw and smoothed labels of its main face."""

    name: str
    frames: int
    first_event_s: float | None = None
    raw: list[str] = field(default_factory=list)
    smoothed: list[str] = field(default_factory=list)


def summarise(clips: list[ClipSeen], label: str) -> dict:
    """The clips' figures against the true ``label`` (see the module docstring)."""
    seen = [c for c in clips if c.raw]
    n = len(seen)

    def share(count: int) -> float | None:
        return round(count / n, 4) if n else None

    end = Counter(c.smoothed[-1] for c in seen)
    first = Counter(c.raw[0] for c in seen)
    raw_frames = [lb for c in seen for lb in c.raw]
    starts = [c.first_event_s for c in seen if c.first_event_s is not None]
    return {
        "clips": len(clips),
        "clips_with_face": n,
        "first_event_raw_recall": share(first[label]),
        "raw_frame_recall": round(raw_frames.count(label) / len(raw_frames), 4)
        if raw_frames
        else None,
        "smoothed_end_recall": share(end[label]),
        "smoothed_end_uncertain": share(end["uncertain"]),
        "smoothed_every_frame_recall": share(sum(set(c.smoothed) == {label} for c in seen)),
        "smoothed_ever_other": share(
            sum(any(lb not in (label, "uncertain") for lb in c.smoothed) for c in seen)
        ),
        "first_event_s_median": round(float(np.median(starts)), 3) if starts else None,
        "first_event_raw_labels": dict(first.most_common()),
        "smoothed_end_labels": dict(end.most_common()),
    }


def _play(processor, name: str, frames: list[np.ndarray], fps: int, batch: int) -> ClipSeen:
    """Feed one clip to ``processor`` in micro-batches of ``batch`` frames."""
    from emostream.frames import FrameMeta, encode_frame, frame_headers
    from emostream.worker.processing import RawFrame

    seen = ClipSeen(name, len(frames))
    records = [
        RawFrame(
            "frames",
            0,
            i,
            encode_frame(img),
            frame_headers(FrameMeta(f"onset-{name}", i, 1_700_000_000_000 + i * 1000 // fps)),
        )
        for i, img in enumerate(frames)
    ]
    observed = Observed()  # the most confident face of each frame, in frame order
    for start in range(0, len(records), batch):
        observed.add(processor.process(records[start : start + batch]).events, fps)
    seen.raw, seen.smoothed = observed.raw_labels, observed.smooth_labels
    seen.first_event_s = observed.times[0] if observed.times else None
    return seen


def photos_of(folder: Path, label: str, limit: int = 0) -> list[Path]:
    """The images under ``folder`` whose parent folder names ``label``, in name order."""
    from emostream.bench.detect import find_images

    paths = sorted(p for p, lb in find_images(folder) if lb == label)
    if not paths:
        raise ConfigError(f"no images of {label!r} under {folder} (expected {label}/*.jpg)")
    return paths[:limit] if limit else paths


def run_bench_onset(args) -> int:
    from emostream.config import WorkerSettings
    from emostream.worker.factory import build_processor, resolve_path

    if args.fps < 1 or args.batch_frames < 1 or args.seconds <= 0:
        raise ConfigError("--fps and --batch-frames must be >= 1 and --seconds > 0")
    paths = photos_of(Path(args.photos), args.label, args.limit)
    settings = WorkerSettings()
    if args.checkpoint:
        settings.model.checkpoint = args.checkpoint
    processor = build_processor(settings)
    rng = np.random.default_rng(args.seed)
    n_frames = max(1, round(args.seconds * args.fps))
    t0 = time.perf_counter()
    clips = []
    try:
        for path in paths:
            photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if photo is None:
                raise ConfigError(f"unreadable image: {path}")
            frames = clip_frames(photo, n_frames, rng)
            clips.append(_play(processor, path.stem, frames, args.fps, args.batch_frames))
    finally:
        processor.close()
    report = {
        "benchmark": "onset",
        "label": args.label,
        "model": processor.engine.model_version,
        "detector": settings.detector.kind,
        "path": resolve_path(settings.worker.path),
        "clip": {"seconds": args.seconds, "fps": args.fps, "batch_frames": args.batch_frames},
        "smoother": settings.smoothing.model_dump(),
        "seed": args.seed,
        **summarise(clips, args.label),
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(report, indent=None if args.json else 2))
    return 0
