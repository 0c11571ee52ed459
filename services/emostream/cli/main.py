"""The one entry point: `emostream <command>`; every service and tool is a subcommand."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from importlib import metadata

from emostream.cli import bench, migrate_store, schema, services, tools, train
from emostream.cli.logconfig import configure_logging
from emostream.cli.model_cache import configure_model_cache
from emostream.errors import EmostreamError


def build_parser(with_benches: bool = True) -> argparse.ArgumentParser:
    """The whole command line; each command module adds its own sub-commands (help order)."""
    parser = argparse.ArgumentParser(prog="emostream", description=__doc__)
    # The namespace has no __init__.py to hold a version: it comes from the installed metadata.
    parser.add_argument(
        "--version", action="version", version=f"emostream {metadata.version('emostream')}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    services.register(sub)
    schema.register(sub)
    train.register(sub)
    tools.register(sub)
    migrate_store.register(sub)
    bench.register(sub, with_benches)
    return parser


# Commands that load no model or detector (and should not import torch to find the cache).
_NO_MODELS = {"ingest", "aggregator", "schema", "migrate-store"}


def _exit_at_once_on_interrupt() -> None:
    """The command is over and has cleaned up: a Ctrl-C while the interpreter shuts down (torch's
    atexit hooks take a moment) exits at once instead of printing a KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(with_benches=words[:1] == ["bench"]).parse_args(argv)
    try:
        return _run(args)
    finally:
        if argv is None:  # the program itself, not a caller (tests) that keeps its own handlers
            _exit_at_once_on_interrupt()


def _run(args: argparse.Namespace) -> int:
    try:
        if getattr(args, "log_level", None):  # tools; services configure from their settings
            configure_logging(args.log_level)
        if args.command not in _NO_MODELS:
            configure_model_cache()
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if isinstance(exc, EmostreamError):
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
