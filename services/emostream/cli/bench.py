"""`emostream bench <name>`: each benchmark module registers its own sub-command."""

from __future__ import annotations

import importlib

# Help order. Importing a benchmark pulls in torch and the services, so the modules are only
# imported when the command line asks for a benchmark (see ``register``).
BENCH_MODULES = (
    "classify",
    "runtime",
    "pipeline",
    "smoothing",
    "onset",
    "fuzz",
    "soak",
    "detect",
    "worker",
    "dashboard",
    "aggregator",
    "fleet",
)


def register(subparsers, with_benches: bool = True) -> None:
    """Add `bench`; its sub-commands only ``with_benches`` (other commands stay light)."""
    s = subparsers.add_parser("bench", help="benchmarks (JSON)")
    bench_subparsers = s.add_subparsers(dest="bench_command", required=True)
    s.set_defaults(log_level="WARNING")
    if with_benches:
        for name in BENCH_MODULES:
            importlib.import_module(f"emostream.bench.{name}").register(bench_subparsers)
