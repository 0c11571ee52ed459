"""`emostream ingest|worker|aggregator|demo`: settings from the environment, flags on top."""

from __future__ import annotations

import argparse
import asyncio
import sys

from emostream.cli.env_check import load_settings
from emostream.cli.logconfig import configure_logging


def _overrides(settings, section: str, **values):
    """Apply CLI flags (those not None) on top of the environment's settings."""
    updates = {k: v for k, v in values.items() if v is not None}
    if updates:
        current = getattr(settings, section)
        setattr(settings, section, current.model_copy(update=updates))
    return settings


def _cmd_ingest(args: argparse.Namespace) -> int:
    from emostream.config import IngestSettings
    from emostream.ingest.main import run_ingest

    s = load_settings(IngestSettings)
    s = _overrides(
        s,
        "ingest",
        # No source given at all: a member of the camera fleet (issue 35).
        source=args.source or (None if "source" in s.ingest.model_fields_set else "fleet"),
        fps=args.fps,
        stream_id=args.stream_id,
        max_frames=args.max_frames,
        loop=args.loop or None,
    )
    configure_logging(s.log.level, s.log.json_output)
    return asyncio.run(run_ingest(s))


def _cmd_worker(args: argparse.Namespace) -> int:
    from emostream.config import WorkerSettings
    from emostream.worker.main import run_worker

    s = _overrides(load_settings(WorkerSettings), "model", checkpoint=args.checkpoint)
    configure_logging(s.log.level, s.log.json_output)
    return asyncio.run(run_worker(s))


def _cmd_aggregator(args: argparse.Namespace) -> int:
    from emostream.aggregator.main import run_aggregator
    from emostream.config import AggregatorSettings

    s = _overrides(load_settings(AggregatorSettings), "api", port=args.api_port)
    configure_logging(s.log.level, s.log.json_output)
    return asyncio.run(run_aggregator(s))


def _cmd_demo(args: argparse.Namespace) -> int:
    from emostream.config import DemoSettings
    from emostream.demo.runner import demo_log_level, run_demo

    s = load_settings(DemoSettings)
    s = _overrides(s, "ingest", source=args.source, fps=args.fps)
    s = _overrides(s, "api", port=args.api_port)
    s = _overrides(s, "model", checkpoint=args.checkpoint)
    level = demo_log_level(s.log.level, args.quiet, args.verbose, sys.stderr.isatty())
    configure_logging(level, s.log.json_output)
    return asyncio.run(run_demo(s, args.duration, once=args.once))


def register(subparsers) -> None:
    """Add the `ingest`, `worker`, `aggregator` and `demo` sub-commands."""
    s = subparsers.add_parser("ingest", help="read a camera source and publish frames to Kafka")
    _source_options(
        s,
        "sample | video file | image folder | webcam index | rtsp/http URL | http (no "
        "source: only frames sent to EMOSTREAM_INGEST__HTTP__PORT)",
    )
    s.add_argument("--stream-id")
    s.add_argument("--max-frames", type=int)
    s.add_argument("--loop", action="store_true", help="restart files and folders at the end")
    s.set_defaults(func=_cmd_ingest)

    s = subparsers.add_parser(
        "worker", help="consume frames, detect and classify faces, publish events"
    )
    s.add_argument("--checkpoint", help="model checkpoint (default: the packaged model)")
    s.set_defaults(func=_cmd_worker)

    s = subparsers.add_parser("aggregator", help="consume events into Redis and serve the HTTP API")
    s.add_argument("--api-port", type=int)
    s.set_defaults(func=_cmd_aggregator)
    _register_demo(subparsers)


def _source_options(s, source_help: str) -> None:
    """``--source`` and ``--fps``: what ingest reads (a standalone ingest or the demo's)."""
    s.add_argument("--source", help=source_help)
    s.add_argument("--fps", type=float, help="frames per second read from the source")


def _register_demo(subparsers) -> None:
    s = subparsers.add_parser("demo", help="run everything locally, with its own broker and Redis")
    _source_options(
        s,
        "default: the built-in sample clip; video files and image folders loop until stopped "
        "(see --once)",
    )
    s.add_argument(
        "--once",
        action="store_true",
        help="stop ingest at the end of a file or folder (the API keeps serving)",
    )
    s.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    s.add_argument("--api-port", type=int, default=8000)
    s.add_argument("--checkpoint")
    s.add_argument("--quiet", action="store_true", help="only warnings and the summary line")
    s.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every batch (in a terminal the demo shows only its progress line)",
    )
    s.set_defaults(func=_cmd_demo)
