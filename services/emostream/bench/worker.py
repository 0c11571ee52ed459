"""`emostream bench worker`: the worker's processing of recorded JPEG frames, no Kafka.

Frames are 640x480 JPEGs with 1-4 faces per stream, moving slowly: made from face photos in
``--photos DIR`` (head-and-shoulder pictures) or, without it, generated from scikit-image's
public-domain astronaut photo (mirrored, scaled and lit differently per face). Streams are
interleaved in capture order and cut into micro-batches, as a worker consuming many partitions
gets them.

Two paths run on the same records, in the same process:
- ``cpu_path``: ``FrameProcessor`` as ``emostream worker`` builds it with
  ``EMOSTREAM_WORKER__PATH=cpu`` (the configured settings, ``--detector`` overriding the
  detector kind), on the first ``--reference-frames`` records;
- ``device_path``: ``DeviceFrameProcessor`` as the worker builds it with ``path=device`` on
  ``--device`` (decode, detection and crops batched as torch ops; on CUDA, nvJPEG and the GPU)
  on all ``--frames`` records.
Both come from the worker's one factory (``worker.factory.build_processor``).
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
import platform
from pathlib import Path

import torch

from emostream.bench.worker_agreement import agreement
from emostream.bench.worker_frames import FRAME_H, FRAME_W, record_frames
from emostream.bench.worker_paths import reference_events, run_path
from emostream.errors import ConfigError


def register(subparsers) -> None:
    """Add `bench worker`."""
    b = subparsers.add_parser(
        "worker",
        help="the worker's processing of recorded frames, no Kafka: "
        "frames/s, faces/s, batch latency; the --device path vs the CPU path",
    )
    b.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where the batched path decodes, detects and crops (cuda: nvJPEG + GPU)",
    )
    b.add_argument(
        "--frames", type=int, help="records for the device path (default: 2048 on cuda, 256 on cpu)"
    )
    b.add_argument(
        "--reference-frames",
        type=int,
        help="the first records, for the CPU path (agreement is measured on these; "
        "give each stream more than the track confirmation needs; default: "
        "512 on cuda, 256 on cpu)",
    )
    b.add_argument("--streams", type=int, default=64, help="stream i shows 1 + i %% 4 faces")
    b.add_argument("--batch-frames", type=int, help="CPU path micro-batch (default: the worker's)")
    b.add_argument("--device-batch-frames", type=int, help="default: 256 on cuda, 16 on cpu")
    b.add_argument(
        "--detector",
        choices=["haar", "yunet", "yunet_torch"],
        help="the timed CPU path's detector (default: the configured one)",
    )
    b.add_argument(
        "--host-decode",
        action="store_true",
        help="cuda: decode with OpenCV threads instead of nvJPEG",
    )
    b.add_argument("--overlap", action="store_true", help="prepare batch k+1 while k is classified")
    b.add_argument("--photos", help="face photos to compose frames from (default: generated)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=run_bench_worker)


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


def _device_path(settings, engine, dev, records, batch_frames, warmup, host_decode, overlap):
    """``DeviceFrameProcessor`` as the worker builds it (``path=device``); figures and events."""
    from emostream.worker.factory import build_processor

    dev_settings = settings.model_copy(deep=True)
    dev_settings.worker = dev_settings.worker.model_copy(update={"path": "device"})
    gpu = build_processor(
        dev_settings,
        split_threads=False,
        engine=engine,
        host_decode=host_decode,
        timing=not overlap,  # stage timing syncs: not with overlap
    )
    gpu.max_frame_age_ms = None  # recorded frames are not live; never stale
    try:
        figures, events = run_path(gpu, records, batch_frames, dev, warmup, overlap)
    finally:
        gpu.close()
    batches = -(-len(records) // batch_frames)
    figures.update(
        detector="yunet_torch (batched, full scan every frame)",
        dtype=str(engine.dtype).removeprefix("torch."),
        decode="opencv threads" if gpu.host_decode else "nvjpeg",
        overlap=overlap,
        stage_ms_per_batch={k: round(v * 1000 / batches, 2) for k, v in gpu.stage_s.items()},
    )
    return figures, events


def _cpu_path(settings, records, batch_frames, warmup):
    """``FrameProcessor`` as ``emostream worker`` builds it; it, figures and events."""
    from emostream.worker.factory import build_processor

    cpu_settings = settings.model_copy(deep=True)
    cpu_settings.worker = cpu_settings.worker.model_copy(update={"path": "cpu"})
    cpu = build_processor(cpu_settings, split_threads=False)  # batches one at a time, no overlap
    try:
        figures, events = run_path(cpu, records, batch_frames, torch.device("cpu"), warmup)
    finally:
        cpu.close()
    det = settings.detector
    figures.update(
        detector=det.kind,
        full_scan_interval_s=det.full_scan_interval_s,
        detect_threads=det.threads,
        dtype=str(cpu.engine.dtype).removeprefix("torch."),
    )
    return cpu, figures, events


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
    cpu, cpu_figures, cpu_events = _cpu_path(
        settings, records[:reference_frames], batch_frames, warmup[: 2 * batch_frames]
    )
    reference = reference_events(settings, records[:reference_frames], batch_frames)
    engine = cpu.engine if dev.type == "cpu" else engine_from_settings(device_model)
    dev_figures, dev_events = _device_path(
        settings, engine, dev, records[:frames], device_batch_frames, warmup, host_decode, overlap
    )
    return _report(
        dev,
        engine,
        source,
        streams,
        reference_frames,
        len(records),
        cpu_figures,
        dev_figures,
        (reference, cpu_events, dev_events),
    )


def _report(
    dev, engine, source, streams, reference_frames, n_records, cpu_figures, dev_figures, events
) -> dict:
    """The JSON report: the device path's figures, its speed-up and agreement, both paths."""
    reference, cpu_events, dev_events = events
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
        "reference_frames_per_stream": -(-min(reference_frames, n_records) // streams),
        "faces_per_frame": "1-4 (stream i has 1 + i % 4)",
        "frames_per_s": dev_figures["frames_per_s"],
        "faces_per_s": dev_figures["faces_per_s"],
        "latency_ms": dev_figures["latency_ms"],
        "speedup_vs_cpu_path": speedup,
        "agreement": agreement(reference, dev_events),
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
