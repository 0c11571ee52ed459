"""`emostream bench smoothing`: label changes per minute, raw vs smoothed, on generated clips.

A clip is a moving face built from FER2013 faces: each segment shows one face of a known
emotion, pasted into a 640x480 frame, drifting across it, with per-frame jitter (scale,
brightness, sensor noise, JPEG). At a segment boundary the face (and its true emotion) changes
while the position continues, so the tracker keeps the track and the smoother must follow.
The worker's own FrameProcessor (detector, tracker, model, smoother) runs on every frame.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from emostream.bench import add_bench
from emostream.labels import EMOTIONS

HELP = "label changes/min raw vs smoothed on generated clips"


def register(subparsers) -> None:
    """Add `bench smoothing`."""
    b = add_bench(subparsers, "smoothing", run_bench_smoothing, HELP, seed=True)
    b.add_argument(
        "--data", required=True, help="FER2013 CSV(.gz) or image folder (faces to paste)"
    )
    b.add_argument("--usage", default="PublicTest")
    b.add_argument("--checkpoint", help="default: the packaged model")
    b.add_argument("--detector", default="haar", choices=["haar", "yunet", "yunet_torch"])
    b.add_argument("--segments", type=int, default=12)
    b.add_argument("--segment-seconds", type=float, default=5.0)
    b.add_argument("--fps", type=int, default=15)
    b.add_argument("--half-life", type=float, default=0.25)
    b.add_argument("--hold", type=float, default=0.3)
    b.add_argument("--min-confidence", type=float, default=0.35)


FRAME_W, FRAME_H = 640, 480


@dataclass(frozen=True)
class Segment:
    image: np.ndarray  # 48x48 grey
    label: str
    start_s: float
    end_s: float


def face_frame(
    face48: np.ndarray, t: float, duration_s: float, rng: np.random.Generator, face_px: int = 150
) -> np.ndarray:
    """One BGR frame: the face at its place on a left-right-left path, with jitter."""
    size = int(face_px * rng.uniform(0.96, 1.04))
    border = 7  # FER2013 crops are tight: give the detector some head around the face
    face48 = cv2.copyMakeBorder(face48, border, border, border, border, cv2.BORDER_REPLICATE)
    face = cv2.resize(face48, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    frame = np.full((FRAME_H, FRAME_W), 110.0, np.float32)
    frame += np.linspace(-20, 20, FRAME_W, dtype=np.float32)[None, :]  # lit from one side
    phase = 0.5 - 0.5 * np.cos(2 * np.pi * t / max(duration_s, 1e-6))  # 0 -> 1 -> 0
    x = int(20 + phase * (FRAME_W - size - 40)) + int(rng.integers(-2, 3))
    y = int((FRAME_H - size) / 2 + 15 * np.sin(2 * np.pi * t / 3.0)) + int(rng.integers(-2, 3))
    # Feathered edges, so the paste has no hard square border for the detector to key on.
    ramp = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    edge = np.clip(ramp / (size * 0.08), 0, 1)
    alpha = np.outer(edge, edge)
    region = frame[y : y + size, x : x + size]
    frame[y : y + size, x : x + size] = alpha * face + (1 - alpha) * region
    frame = frame * rng.uniform(0.92, 1.08) + rng.normal(0, 3.0, frame.shape)
    return cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def schedule(
    faces: dict[str, list[np.ndarray]], n_segments: int, segment_s: float, rng: np.random.Generator
) -> list[Segment]:
    """Segments with a different emotion each time (a real change at every boundary)."""
    labels = [k for k, v in faces.items() if v]
    out: list[Segment] = []
    prev = None
    for i in range(n_segments):
        label = rng.choice([lb for lb in labels if lb != prev])
        pool = faces[label]
        out.append(
            Segment(
                pool[int(rng.integers(len(pool)))], str(label), i * segment_s, (i + 1) * segment_s
            )
        )
        prev = label
    return out


def count_changes(labels: list[str]) -> int:
    return sum(1 for a, b in zip(labels, labels[1:]) if a != b)


def follow_latencies(
    times: list[float], labels: list[str], segments: list[Segment]
) -> list[float | None]:
    """Per boundary: seconds until the reported label first equals the new true label.

    None where it never does within the segment.
    """
    out: list[float | None] = []
    for seg in segments[1:]:
        hit = next(
            (
                t - seg.start_s
                for t, lb in zip(times, labels)
                if seg.start_s <= t < seg.end_s and lb == seg.label
            ),
            None,
        )
        out.append(hit)
    return out


def recognised(times: list[float], raw_labels: list[str], segments: list[Segment]) -> list[bool]:
    """Per boundary: does the classifier see the new emotion (its majority in the segment)?

    Where it does not, no smoother can follow the change: that is a classification error, and it
    is reported apart from the smoothing delay.
    """
    out = []
    for seg in segments[1:]:
        seen = [lb for t, lb in zip(times, raw_labels) if seg.start_s <= t < seg.end_s]
        out.append(bool(seen) and max(set(seen), key=seen.count) == seg.label)
    return out


def _pick_faces(
    data, engine, detector, per_label: int, rng: np.random.Generator
) -> dict[str, list[np.ndarray]]:
    """Faces the detector finds and the model gets right on a still frame.

    The benchmark measures smoothing and tracking, not detection or accuracy.
    """
    order = rng.permutation(len(data))[:1500]
    probs = engine.classify(list(data.images[order]))
    faces: dict[str, list[np.ndarray]] = {e: [] for e in EMOTIONS}
    for idx, p in zip(order, probs):
        label = EMOTIONS[int(data.labels[idx])]
        if int(np.argmax(p)) != int(data.labels[idx]) or len(faces[label]) >= per_label:
            continue
        if len(detector.detect(face_frame(data.images[idx], 0.0, 1.0, rng))) == 1:
            faces[label].append(data.images[idx])
    return faces


def _summary(name: str, times, labels, segments, minutes: float, seen: list[bool]) -> dict:
    lat = follow_latencies(times, labels, segments)
    followed = [x for x in lat if x is not None]
    return {
        "labels": name,
        "changes": count_changes(labels),
        "changes_per_min": round(count_changes(labels) / minutes, 2),
        "true_changes_per_min": round((len(segments) - 1) / minutes, 2),
        "followed_within_1s": sum(1 for x in followed if x <= 1.0),
        "boundaries": len(lat),
        "followed_within_1s_where_recognised": sum(
            1 for x, ok in zip(lat, seen) if ok and x is not None and x <= 1.0
        ),
        "boundaries_recognised": sum(seen),
        "follow_s_median": round(float(np.median(followed)), 3) if followed else None,
        "follow_s_max": round(max(followed), 3) if followed else None,
    }


@dataclass
class Observed:
    """Per frame with a face: its time and the raw and smoothed labels; the tracks seen."""

    times: list[float] = field(default_factory=list)
    raw_labels: list[str] = field(default_factory=list)
    smooth_labels: list[str] = field(default_factory=list)
    tracks: set = field(default_factory=set)

    def add(self, events, fps: int) -> None:
        by_seq: dict[int, object] = {}
        for ev in events:  # one face per frame; keep the most confident detection
            best = by_seq.get(ev.frame_seq)
            if best is None or ev.face.detector_score > best.face.detector_score:
                by_seq[ev.frame_seq] = ev
        for seq in sorted(by_seq):
            ev = by_seq[seq]
            self.times.append(seq / fps)
            self.raw_labels.append(ev.emotion.label)
            self.smooth_labels.append(ev.smoothed.label)
            self.tracks.add(ev.face.track_id)


def _play(
    processor, segments: list[Segment], duration: float, fps: int, rng: np.random.Generator
) -> Observed:
    """Feed the clip to ``processor`` in one-second batches, as the worker would."""
    from emostream.frames import FrameMeta, encode_frame, frame_headers
    from emostream.worker.processing import RawFrame

    n_frames = int(duration * fps)
    seen = Observed()
    seg_i = 0
    batch: list[RawFrame] = []
    for i in range(n_frames + 1):
        if i < n_frames:
            t = i / fps
            while t >= segments[seg_i].end_s:
                seg_i += 1
            img = face_frame(segments[seg_i].image, t, duration, rng)
            meta = FrameMeta("bench-smoothing", i, int(1_700_000_000_000 + t * 1000))
            batch.append(RawFrame("frames", 0, i, encode_frame(img), frame_headers(meta)))
        if len(batch) >= fps or (i == n_frames and batch):
            seen.add(processor.process(batch).events, fps)
            batch = []
    return seen


def run_bench_smoothing(args) -> int:
    from emostream.inference import engine_from_settings
    from emostream.training.fer2013 import load_fer2013
    from emostream.vision_options import DetectorOptions, ModelOptions, SmoothingOptions
    from emostream.worker.main import detector_from_settings
    from emostream.worker.processing import FrameProcessor

    rng = np.random.default_rng(args.seed)
    data = load_fer2013(args.data, args.usage)
    engine = engine_from_settings(ModelOptions(checkpoint=args.checkpoint))
    det_settings = DetectorOptions(kind=args.detector)  # as the worker runs it
    detector = detector_from_settings(det_settings)
    faces = _pick_faces(data, engine, detector, per_label=20, rng=rng)
    segments = schedule(faces, args.segments, args.segment_seconds, rng)
    processor = FrameProcessor(
        detector,
        engine,
        smoothing=SmoothingOptions(
            half_life_s=args.half_life, hold_s=args.hold, min_confidence=args.min_confidence
        ),
        full_scan_interval_s=det_settings.full_scan_interval_s,
        detector_factory=lambda: detector_from_settings(det_settings),
    )
    t0 = time.perf_counter()
    duration = args.segments * args.segment_seconds
    seen = _play(processor, segments, duration, args.fps, rng)
    report = _report(args, engine.model_name, segments, seen, time.perf_counter() - t0)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def _report(args, model_name: str, segments: list[Segment], seen: Observed, elapsed: float):
    duration = args.segments * args.segment_seconds
    minutes = duration / 60
    ok = recognised(seen.times, seen.raw_labels, segments)
    raw = _summary("raw", seen.times, seen.raw_labels, segments, minutes, ok)
    smooth = _summary("smoothed", seen.times, seen.smooth_labels, segments, minutes, ok)
    return {
        "benchmark": "smoothing",
        "model": model_name,
        "detector": args.detector,
        "clip": {
            "seconds": duration,
            "fps": args.fps,
            "segments": args.segments,
            "frames": int(duration * args.fps),
            "frames_with_face": len(seen.times),
            "tracks": len(seen.tracks),
            "seed": args.seed,
        },
        "smoother": {
            "half_life_s": args.half_life,
            "hold_s": args.hold,
            "min_confidence": args.min_confidence,
        },
        "raw": raw,
        "smoothed": smooth,
        "flicker_reduction": (
            round(raw["changes_per_min"] / smooth["changes_per_min"], 2)
            if smooth["changes_per_min"]
            else None
        ),
        "elapsed_s": round(elapsed, 1),
    }
