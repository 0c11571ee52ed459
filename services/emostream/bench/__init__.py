"""Benchmarks (`emostream bench ...`): JSON out, a baseline measured in the same run."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_bench(
    subparsers, name: str, run: Callable[[argparse.Namespace], int], help: str, seed: bool = False
) -> argparse.ArgumentParser:
    """Add `bench <name>` with the options every benchmark has: ``--json`` (and ``--seed``).

    Each benchmark module's ``register`` calls this, then adds its own options.
    """
    b = subparsers.add_parser(name, help=help)
    b.add_argument("--json", action="store_true", help="compact JSON output")
    if seed:
        b.add_argument("--seed", type=int, default=0, help="random seed (same seed, same inputs)")
    b.set_defaults(func=run)
    return b
