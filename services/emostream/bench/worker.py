"""`emostream bench worker`: the worker's processing of recorded JPEG frames, no Kafka.

Frames are 640x480 JPEGs with 1-4 faces per stream, moving slowly: made from face photos in
``--photos DIR`` (head-and-shoulder pictures) or, without it, generated from scikit-image's
public-domain astronaut photo (mirrored, scaled and lit differently per face). Streams are
interleaved in capture order and cut into micro-batches, as a worker consuming many partitions
gets them.

Two paths run on the same records, in the same process:
- ``cpu_path``: ``FrameProcessor`` as ``emostream worker`` builds it (the configured settings,
  ``--detector`` overriding the detector kind), on the first ``--reference-frames`` records;
- ``device_path``: ``DeviceFrameProcessor`` on ``--device`` (decode, detection and crops batched
  as torch ops; on CUDA, nvJPEG and the GPU) on all ``--frames`` records.
Reported: frames/s, faces/s and per-batch p50/p99 latency of each, the device path's speed-up,
and its agreement with the CPU path on the frames both processed: the fraction of the CPU
path's faces with a device-path box of IoU >= 0.9, and of matched faces with the same dominant
(raw) emotion. ``agreement`` compares with the CPU path running the same detector (YuNet; the
PyTorch one, which matches OpenCV's) on every frame in full, once more and untimed;
``agreement_vs_cpu_path_as_configured`` with the timed run (its detector, and its boxes between
full scans found by the search around tracks, so lower by design).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

from emostream.errors import ConfigError
from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.schemas import EmotionEventV1
from emostream.tracking.tracker import iou
from emostream.worker.processing import FrameProcessor, RawFrame

FRAME_W, FRAME_H = 640, 480
FPS = 15.0
TILE_PX = 200  # a face tile (head and shoulders) this wide: faces ~45-70 px wide in the frame


def _astronaut_tiles(rng: np.random.Generator, count: int = 8) -> list[np.ndarray]:
    from skimage import data

    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:300, 60:360]
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


def _batches(records: list[RawFrame], size: int) -> Iterator[list[RawFrame]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _results(
    processor, batches: list[list[RawFrame]], device: torch.device, overlap: bool
) -> Iterator[tuple[object, float]]:
    """(result, latency ms) per batch. With ``overlap``, batch k+1 is decoded and detected in a
    second thread (on its own CUDA stream) while batch k is tracked, classified and built;
    latency then runs from its preparation's start."""
    if not overlap:
        for batch in batches:
            t = time.perf_counter()
            result = processor.process(batch)
            _sync(device)
            yield result, (time.perf_counter() - t) * 1000
        return
    side = torch.cuda.Stream(device) if device.type == "cuda" else None

    def prepare(batch):
        return time.perf_counter(), processor.prepare(batch, side)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare") as ahead:
        pending = ahead.submit(prepare, batches[0]) if batches else None
        for k in range(len(batches)):
            started, prepared = pending.result()
            if k + 1 < len(batches):
                pending = ahead.submit(prepare, batches[k + 1])
            result = processor.finish(prepared)
            _sync(device)
            yield result, (time.perf_counter() - started) * 1000


def run_path(
    processor: FrameProcessor,
    records: list[RawFrame],
    batch_frames: int,
    device: torch.device,
    warmup: list[RawFrame],
    overlap: bool = False,
) -> tuple[dict, list[EmotionEventV1]]:
    """Process ``records`` in batches; figures and every event. Warm-up streams are separate."""
    for batch in _batches(warmup, batch_frames):
        processor.process(batch)
    _sync(device)
    getattr(processor, "stage_s", {}).clear()
    latencies_ms, events, frames_ok, rejected = [], [], 0, 0
    t0 = time.perf_counter()
    for result, ms in _results(processor, list(_batches(records, batch_frames)), device, overlap):
        latencies_ms.append(ms)
        events.extend(result.events)
        frames_ok += result.frames_ok
        rejected += len(result.rejected)
    elapsed = time.perf_counter() - t0
    lat = np.array(latencies_ms or [0.0])
    return {
        "frames": len(records),
        "frames_ok": frames_ok,
        "rejected": rejected,
        "faces": len(events),
        "batch_frames": batch_frames,
        "seconds": round(elapsed, 3),
        "frames_per_s": round(frames_ok / elapsed, 2) if elapsed else None,
        "faces_per_s": round(len(events) / elapsed, 2) if elapsed else None,
        "latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 2),
            "p99": round(float(np.percentile(lat, 99)), 2),
        },
    }, events


def agreement(reference: list[EmotionEventV1], other: list[EmotionEventV1]) -> dict:
    """Per face of the reference (on frames both processed): box IoU and dominant emotion."""

    def by_frame(events):
        out: dict[tuple[str, int], list[EmotionEventV1]] = {}
        for e in events:
            out.setdefault((e.stream_id, e.frame_seq), []).append(e)
        return out

    ref, oth = by_frame(reference), by_frame(other)
    compared = box_ok = matched = same = 0
    for key, faces in ref.items():
        if key not in oth:
            continue
        for e in faces:
            compared += 1
            a = (e.face.box.x, e.face.box.y, e.face.box.w, e.face.box.h)
            best = max(
                oth[key],
                key=lambda o: iou(a, (o.face.box.x, o.face.box.y, o.face.box.w, o.face.box.h)),
            )
            overlap = iou(a, (best.face.box.x, best.face.box.y, best.face.box.w, best.face.box.h))
            box_ok += overlap >= 0.9
            if overlap >= 0.5:
                matched += 1
                same += best.emotion.label == e.emotion.label
    return {
        "faces_compared": compared,
        "box_iou_ge_0_9": round(box_ok / compared, 4) if compared else None,
        "faces_matched": matched,
        "dominant_emotion": round(same / matched, 4) if matched else None,
    }


def _check_device(device: str) -> torch.device:
    """One clear line when the GPU path cannot run here (no CUDA, no matching torchvision)."""
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"--device cuda: no CUDA device visible to torch {torch.__version__}; "
            "run on a GPU machine with a CUDA build of torch, or use --device cpu"
        )
    try:
        import torchvision.io  # noqa: F401 - the GPU path's JPEG decoder
    except Exception as exc:  # noqa: BLE001 - ImportError or a torch/torchvision mismatch
        raise ConfigError(
            f"--device cuda needs torchvision built for torch {torch.__version__} "
            f"(the 'gpu' extra): {str(exc).splitlines()[0]}"
        ) from None
    return torch.device("cuda")


def _reference_events(settings, records: list[RawFrame], batch_frames: int) -> list[EmotionEventV1]:
    """Untimed: the CPU path with YuNet scanning every frame in full, one detection thread."""
    from emostream.worker.main import build_processor

    ref = settings.model_copy(deep=True)
    ref.detector = ref.detector.model_copy(
        update={"kind": "yunet_torch", "full_scan_interval_s": 0.0, "threads": 1}
    )
    processor = build_processor(ref)
    try:
        return run_path(processor, records, batch_frames, torch.device("cpu"), [])[1]
    finally:
        processor.close()


def bench_worker(
    device: str = "cpu",
    frames: int | None = None,
    reference_frames: int | None = None,
    streams: int = 64,
    batch_frames: int | None = None,
    device_batch_frames: int | None = None,
    detector: str | None = None,
    photos: Path | None = None,
    seed: int = 0,
    host_decode: bool = False,
    overlap: bool = False,
) -> dict:
    from emostream.config import WorkerSettings
    from emostream.inference import engine_from_settings
    from emostream.worker.device_processing import DeviceFrameProcessor
    from emostream.worker.main import build_processor

    dev = _check_device(device)
    on_gpu = dev.type == "cuda"  # a CPU runs the batched path for its agreement, not its speed
    frames = frames or (2048 if on_gpu else 256)
    reference_frames = reference_frames or (512 if on_gpu else 256)
    device_batch_frames = device_batch_frames or (256 if on_gpu else 16)
    if frames < 1 or reference_frames < 1 or streams < 1:
        raise ConfigError("--frames, --reference-frames and --streams must be at least 1")
    records, source = record_frames(max(frames, reference_frames), streams, photos, seed)
    # Warm-up (first model runs, allocator, cuDNN) on streams of their own: no tracking shared.
    warmup_frames = min(max(device_batch_frames, 2 * streams), max(frames, 16), 512)
    warmup, _ = record_frames(warmup_frames, streams, photos, seed + 1, prefix="warmup")
    settings = WorkerSettings()
    if detector:
        settings.detector = settings.detector.model_copy(update={"kind": detector})
    device_model = settings.model.model_copy(update={"device": str(dev)})
    settings.model = settings.model.model_copy(update={"device": "cpu"})  # auto would take CUDA
    batch_frames = batch_frames or settings.worker.max_batch_frames
    cpu = build_processor(settings)
    try:
        cpu_figures, cpu_events = run_path(
            cpu,
            records[:reference_frames],
            batch_frames,
            torch.device("cpu"),
            warmup[: 2 * batch_frames],
        )
    finally:
        cpu.close()
    reference_events = _reference_events(settings, records[:reference_frames], batch_frames)
    engine = cpu.engine if dev.type == "cpu" else engine_from_settings(device_model)
    det = settings.detector
    track_hits = getattr(settings.worker, "track_min_hits", None)
    extra = {"track_min_hits": track_hits} if track_hits is not None else {}
    gpu = DeviceFrameProcessor(
        engine,
        device=str(dev),
        max_width_px=det.max_width_px,
        min_face_px=det.min_face_px,
        max_faces=det.max_faces,
        score_threshold=det.score_threshold,
        host_decode=host_decode,
        timing=not overlap,
        **extra,
    )  # stage timing syncs: not with overlap
    try:
        dev_figures, dev_events = run_path(
            gpu, records[:frames], device_batch_frames, dev, warmup, overlap
        )
    finally:
        gpu.close()
    cpu_figures.update(
        detector=det.kind,
        full_scan_interval_s=det.full_scan_interval_s,
        detect_threads=det.threads,
        dtype=str(cpu.engine.dtype).removeprefix("torch."),
    )
    batches = -(-len(records[:frames]) // device_batch_frames)
    dev_figures.update(
        detector="yunet_torch (batched, full scan every frame)",
        dtype=str(engine.dtype).removeprefix("torch."),
        decode="opencv threads" if gpu.host_decode else "nvjpeg",
        overlap=overlap,
        stage_ms_per_batch={k: round(v * 1000 / batches, 2) for k, v in gpu.stage_s.items()},
    )
    speedup = (
        round(dev_figures["frames_per_s"] / cpu_figures["frames_per_s"], 2)
        if cpu_figures["frames_per_s"] and dev_figures["frames_per_s"]
        else None
    )
    return {
        "benchmark": "worker",
        "device": str(dev),
        "device_name": (
            torch.cuda.get_device_name(dev)
            if dev.type == "cuda"
            else platform.processor() or platform.machine()
        ),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "model": engine.model_name,
        "frames_source": source,
        "frame_size": [FRAME_W, FRAME_H],
        "streams": streams,
        "reference_frames_per_stream": -(-min(reference_frames, len(records)) // streams),
        "faces_per_frame": "1-4 (stream i has 1 + i % 4)",
        "frames_per_s": dev_figures["frames_per_s"],
        "faces_per_s": dev_figures["faces_per_s"],
        "latency_ms": dev_figures["latency_ms"],
        "speedup_vs_cpu_path": speedup,
        "agreement": agreement(reference_events, dev_events),
        "agreement_vs_cpu_path_as_configured": agreement(cpu_events, dev_events),
        "cpu_path": cpu_figures,
        "device_path": dev_figures,
    }


def run_bench_worker(args) -> int:
    report = bench_worker(
        args.device,
        args.frames,
        args.reference_frames,
        args.streams,
        args.batch_frames,
        args.device_batch_frames,
        args.detector,
        Path(args.photos) if args.photos else None,
        args.seed,
        args.host_decode,
        args.overlap,
    )
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0
