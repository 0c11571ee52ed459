"""The one entry point: `emostream <command>`; every service and tool is a subcommand."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from emostream.cli.env_check import load_settings
from emostream.cli.logconfig import configure_logging
from emostream.errors import EmostreamError


def _overrides(settings, section: str, **values):
    """Apply CLI flags (those not None) on top of the environment's settings."""
    updates = {k: v for k, v in values.items() if v is not None}
    if updates:
        current = getattr(settings, section)
        setattr(settings, section, current.model_copy(update=updates))
    return settings


def _cmd_ingest(args) -> int:
    from emostream.config import IngestSettings
    from emostream.ingest.main import run_ingest

    s = _overrides(
        load_settings(IngestSettings),
        "ingest",
        source=args.source,
        fps=args.fps,
        stream_id=args.stream_id,
        max_frames=args.max_frames,
        loop=args.loop or None,
    )
    configure_logging(s.log.level, s.log.json_output)
    return asyncio.run(run_ingest(s))


def _cmd_worker(args) -> int:
    from emostream.config import WorkerSettings
    from emostream.worker.main import run_worker

    s = _overrides(load_settings(WorkerSettings), "model", checkpoint=args.checkpoint)
    configure_logging(s.log.level, s.log.json_output)
    return asyncio.run(run_worker(s))


def _cmd_aggregator(args) -> int:
    from emostream.aggregator.main import run_aggregator
    from emostream.config import AggregatorSettings

    s = _overrides(load_settings(AggregatorSettings), "api", port=args.api_port)
    configure_logging(s.log.level, s.log.json_output)
    return asyncio.run(run_aggregator(s))


def _cmd_demo(args) -> int:
    from emostream.config import DemoSettings
    from emostream.demo.runner import demo_log_level, run_demo

    s = load_settings(DemoSettings)
    s = _overrides(s, "ingest", source=args.source, fps=args.fps)
    s = _overrides(s, "api", port=args.api_port)
    s = _overrides(s, "model", checkpoint=args.checkpoint)
    level = demo_log_level(s.log.level, args.quiet, args.verbose, sys.stderr.isatty())
    configure_logging(level, s.log.json_output)
    return asyncio.run(run_demo(s, args.duration, once=args.once))


def _cmd_schema(args) -> int:
    from emostream.schemas import json_schemas_text

    print(json_schemas_text())
    return 0


def _cmd_train(args) -> int:
    from emostream.training import TrainConfig, train

    configure_logging("INFO")
    best = train(
        TrainConfig(
            data=args.data,
            out_dir=args.out,
            arch=args.arch,
            recipe=args.recipe,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            threads=args.threads,
            max_batches=args.max_batches,
            amp=args.amp,
            ema_decay=args.ema,
            mix=args.mix,
            mix_alpha=args.mix_alpha,
            label_smoothing=args.label_smoothing,
            device=args.device,
        )
    )
    print(json.dumps({k: v for k, v in best.items() if k != "report"}))
    return 0


def _cmd_eval(args) -> int:
    from emostream.cli.evaluate import run_eval

    configure_logging("WARNING")
    return run_eval(args)


def _cmd_eval_photos(args) -> int:
    from emostream.cli.eval_photos import run_eval_photos

    configure_logging("WARNING")
    return run_eval_photos(args)


def _cmd_calibrate(args) -> int:
    from emostream.cli.evaluate import run_calibrate

    configure_logging("WARNING")
    return run_calibrate(args)


def _cmd_models(args) -> int:
    from emostream.cli.models import run_models

    configure_logging("WARNING")
    return run_models(args)


def _cmd_predict(args) -> int:
    from emostream.cli.predict import run_predict

    configure_logging("WARNING")
    return run_predict(args)


def _cmd_bench(args) -> int:
    configure_logging("WARNING")
    if args.bench_command == "smoothing":
        from emostream.bench.smoothing import run_bench_smoothing

        return run_bench_smoothing(args)
    if args.bench_command == "detect":
        from emostream.bench.detect import run_bench_detect

        return run_bench_detect(args)
    if args.bench_command == "pipeline":
        from emostream.bench.pipeline import run_bench_pipeline

        return run_bench_pipeline(args)
    if args.bench_command == "fuzz-frames":
        from emostream.bench.fuzz import run_bench_fuzz

        return run_bench_fuzz(args)
    if args.bench_command == "worker":
        from emostream.bench.worker import run_bench_worker

        return run_bench_worker(args)
    if args.bench_command == "soak":
        from emostream.bench.soak import run_bench_soak

        return run_bench_soak(args)
    from emostream.bench.classify import run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emostream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="read a camera source and publish frames to Kafka")
    s.add_argument(
        "--source", help="sample | video file | image folder | webcam index | rtsp/http URL"
    )
    s.add_argument("--fps", type=float)
    s.add_argument("--stream-id")
    s.add_argument("--max-frames", type=int)
    s.add_argument("--loop", action="store_true", help="restart files and folders at the end")
    s.set_defaults(func=_cmd_ingest)

    s = sub.add_parser("worker", help="consume frames, detect and classify faces, publish events")
    s.add_argument("--checkpoint", help="model checkpoint (default: the packaged model)")
    s.set_defaults(func=_cmd_worker)

    s = sub.add_parser("aggregator", help="consume events into Redis and serve the HTTP API")
    s.add_argument("--api-port", type=int)
    s.set_defaults(func=_cmd_aggregator)

    s = sub.add_parser("demo", help="run everything locally on an embedded broker and Redis")
    s.add_argument(
        "--source",
        help="default: the built-in sample clip; video files and image "
        "folders loop until stopped (see --once)",
    )
    s.add_argument(
        "--once",
        action="store_true",
        help="stop ingest at the end of a file or folder (the API keeps serving)",
    )
    s.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    s.add_argument("--api-port", type=int, default=8000)
    s.add_argument("--fps", type=float)
    s.add_argument("--checkpoint")
    s.add_argument("--quiet", action="store_true", help="only warnings and the summary line")
    s.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every batch (in a terminal the demo shows only its progress line)",
    )
    s.set_defaults(func=_cmd_demo)

    s = sub.add_parser("schema", help="print the JSON Schemas of published messages")
    s.set_defaults(func=_cmd_schema)

    s = sub.add_parser("train", help="train an emotion model on FER2013")
    s.add_argument("--data", required=True, help="FER2013 CSV(.gz) or image-folder root")
    s.add_argument("--out", required=True, help="run directory (resumes from last.pt)")
    s.add_argument("--arch", default="rmn_compact")
    s.add_argument(
        "--recipe",
        choices=["sgd", "fast", "official"],
        default="sgd",
        help="sgd: Nesterov SGD, warm-up + cosine (default); fast: AdamW one-cycle; "
        "official: the RMN paper's",
    )
    s.add_argument("--epochs", type=int, default=60)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int)
    s.add_argument("--max-batches", type=int, help="batches per epoch (smoke runs)")
    s.add_argument(
        "--amp",
        choices=["off", "bf16"],
        default="off",
        help="bf16 autocast: ~1.8x faster on CPUs with AMX (rmn_compact), results differ "
        "from fp32 runs",
    )
    s.add_argument(
        "--ema",
        type=float,
        default=0.999,
        help="decay of the weight average that is evaluated and saved (0: off)",
    )
    s.add_argument("--mix", choices=["off", "mixup", "cutmix"], default="off")
    s.add_argument("--mix-alpha", type=float, default=1.0)
    s.add_argument("--label-smoothing", type=float, default=0.1)
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("eval", help="evaluate checkpoints (an ensemble if several) on FER2013")
    s.add_argument("--data", required=True)
    s.add_argument(
        "--usage", default="PublicTest", choices=["PublicTest", "PrivateTest", "Training", "all"]
    )
    s.add_argument("--checkpoint", action="append", help="repeat for an ensemble")
    s.add_argument("--tta", type=int, default=0, help="random flip/rotation views per model")
    s.add_argument("--flip", action="store_true", help="add the deterministic mirrored view")
    s.add_argument(
        "--dtype",
        choices=["fp32", "bf16"],
        default="fp32",
        help="bf16 also reports its top-1 agreement with fp32 on the same data",
    )
    s.add_argument(
        "--near-duplicates",
        action="store_true",
        help="also report accuracy without the faces that have a near-duplicate in "
        "Training (needs the Training rows in --data)",
    )
    s.add_argument(
        "--near-dup-threshold",
        type=float,
        default=None,
        help="16x16 thumbnail cosine similarity that counts as a near-duplicate (default 0.92)",
    )
    s.add_argument("--json", action="store_true")
    s.add_argument("--confusion-png", help="write the confusion matrix here")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser(
        "calibrate", help="fit a temperature on FER2013 PublicTest and store it in the checkpoint"
    )
    s.add_argument("--data", required=True)
    s.add_argument("--usage", default="PublicTest", choices=["PublicTest", "PrivateTest"])
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", help="write here instead of updating --checkpoint in place")
    s.add_argument(
        "--no-flip",
        dest="flip",
        action="store_false",
        help="fit on single views (default: face + mirror, as the worker runs)",
    )
    s.set_defaults(func=_cmd_calibrate)

    s = sub.add_parser("models", help="list, inspect and download models")
    msub = s.add_subparsers(dest="models_command", required=True)
    m = msub.add_parser("list", help="registered architectures and cached checkpoints")
    m.add_argument("--json", action="store_true")
    m = msub.add_parser("info", help="architecture, preprocessing and size of one model")
    m.add_argument("name", help="registered name or checkpoint path")
    m.add_argument("--json", action="store_true")
    m = msub.add_parser("pull", help="download the official RMN checkpoint and YuNet")
    m.add_argument("--cache-dir")
    m.add_argument("--hub-url", help="override the Hugging Face base URL (mirrors)")
    s.set_defaults(func=_cmd_models)

    s = sub.add_parser("predict", help="faces and emotions in image files")
    s.add_argument("images", nargs="+")
    s.add_argument("--detector", choices=["haar", "yunet", "yunet_torch"], default="haar")
    s.add_argument("--yunet-model", help="YuNet ONNX path (default: the pulled one)")
    s.add_argument("--checkpoint")
    s.add_argument("--json", action="store_true", help="one JSON list, one entry per image")
    s.add_argument(
        "--annotate",
        help="write boxes and labels: an image file for one image, "
        "else a folder (created if missing; <name>_annotated.jpg per image)",
    )
    s.set_defaults(func=_cmd_predict)

    s = sub.add_parser(
        "eval-photos", help="cross-dataset accuracy on labelled photos, detect -> crop -> classify"
    )
    s.add_argument("--photos", required=True, help="folder with labels.csv (path,label_fer7)")
    s.add_argument("--detector", choices=["haar", "yunet", "yunet_torch"], default="haar")
    s.add_argument("--checkpoint", help="default: the packaged model; commas: an ensemble")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_eval_photos)

    s = sub.add_parser("bench", help="benchmarks (JSON)")
    bsub = s.add_subparsers(dest="bench_command", required=True)
    b = bsub.add_parser("classify", help="faces/s by batch size and dtype vs the per-face baseline")
    b.add_argument(
        "--model",
        default="default",
        help="'default' (the packaged model, as the worker runs it), a checkpoint path, "
        "several paths separated by commas (an ensemble), or a registered "
        "architecture name (random weights: speed only)",
    )
    b.add_argument("--batch-sizes", default="1,8,32")
    b.add_argument("--dtypes", default="fp32,bf16")
    b.add_argument("--seconds", type=float, default=5.0)
    b.add_argument("--json", action="store_true")
    b = bsub.add_parser("pipeline", help="sustained frames/s and latency vs a naive worker")
    b.add_argument("--streams", type=int, default=4)
    b.add_argument("--fps", type=float, default=15.0, help="per stream")
    b.add_argument("--duration", type=float, default=20.0)
    b.add_argument("--max-batch", type=int, default=16)
    b.add_argument("--max-frame-age-ms", type=int, default=1000)
    b.add_argument(
        "--mode",
        choices=["both", "all", "naive", "fullscan", "batched"],
        default="both",
        help="both: naive + batched; all: also batched with a full-frame scan every frame",
    )
    b.add_argument("--json", action="store_true")
    b = bsub.add_parser("smoothing", help="label changes/min raw vs smoothed on generated clips")
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
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", action="store_true")
    b = bsub.add_parser(
        "fuzz-frames",
        help="mutated/random payloads and headers through the "
        "frame decoder; counts outcomes (crashes must be 0)",
    )
    b.add_argument("--cases", type=int, default=10_000)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", action="store_true")
    b = bsub.add_parser(
        "soak",
        help="the stack at moderate load for minutes: RSS growth per "
        "process, errors, a steady verdict (not for CI)",
    )
    b.add_argument("--minutes", type=float, default=10.0)
    b.add_argument("--streams", type=int, default=2)
    b.add_argument("--fps", type=float, default=5.0, help="per stream")
    b.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period")
    b.add_argument(
        "--max-growth-mb-per-min",
        type=float,
        default=1.0,
        help="steady when each service grows less than this over the second half",
    )
    b.add_argument("--json", action="store_true")
    b = bsub.add_parser("detect", help="faces found per image and ms/image per detector")
    b.add_argument(
        "folder", nargs="?", help="images with exactly one face each (sub-folders allowed)"
    )
    b.add_argument("--fer2013", help="instead of a folder: FER2013 faces pasted into frames")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--no-classify", action="store_true", help="skip emotion accuracy")
    b.add_argument("--detectors", default="haar,yunet")
    b.add_argument("--yunet-model", help="YuNet .onnx (default: the models cache)")
    b.add_argument("--limit", type=int, default=0, help="at most this many images (0: all)")
    b.add_argument("--json", action="store_true")
    b = bsub.add_parser(
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
    b.add_argument(
        "--overlap",
        action="store_true",
        help="prepare (decode, detect) batch k+1 while batch k is classified",
    )
    b.add_argument("--photos", help="face photos to compose frames from (default: generated)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_bench)
    return p


# Input errors raised outside the EmostreamError tree (module, class); looked up only once their
# module is imported, so handling them never imports torch.
_USER_ERRORS = (
    ("emostream.models.checkpoint", "CheckpointError"),
    ("emostream.training.fer2013", "DatasetError"),
)


def _user_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [EmostreamError]
    for module, name in _USER_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _exit_at_once_on_interrupt() -> None:
    """The command is over and has cleaned up: a Ctrl-C while the interpreter shuts down (torch's
    atexit hooks take a moment) exits at once instead of printing a KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    finally:
        if argv is None:  # the program itself, not a caller (tests) that keeps its own handlers
            _exit_at_once_on_interrupt()


def _run(args) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if isinstance(exc, _user_errors()):
            message = str(exc)
        elif isinstance(exc, OSError) and exc.filename is not None:  # a file the user named
            message = f"{exc.filename}: {exc.strerror or exc}"
        elif getattr(args, "data", None) and isinstance(
            exc, UnicodeDecodeError | EOFError | OSError
        ):
            # A binary or truncated file given as --data (the CSV reader or gzip fails on it).
            message = (
                f"{args.data}: not a FER2013 CSV ({type(exc).__name__}); pass the CSV "
                "(.csv or .csv.gz, columns emotion,pixels[,Usage]) or an image-folder root"
            )
        else:
            raise
        print(f"emostream {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
