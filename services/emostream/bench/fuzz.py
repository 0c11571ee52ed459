"""`emostream bench fuzz-frames`: mutated, truncated and random payloads and headers through the
frame decoder (``decode_frame``, ``parse_headers``), seeded; counts every outcome.

Raising ``InvalidFrame`` is the contract for bad input (the worker dead-letters the frame); any
other exception, or a decoded image of the wrong type or size, is a crash.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import numpy as np

from emostream.bench import add_bench
from emostream.bench.fuzz_inputs import MUTATIONS, Rng, fuzz_headers, seed_payloads
from emostream.errors import InvalidFrame
from emostream.frames import MAX_SIDE_PX, FrameMeta, decode_frame, parse_headers

__all__ = ["MUTATIONS", "Rng", "fuzz_frames", "fuzz_headers", "seed_payloads"]


HELP = (
    "mutated/random payloads and headers through the frame decoder; counts outcomes "
    "(crashes must be 0)"
)


def register(subparsers) -> None:
    """Add `bench fuzz-frames`."""
    b = add_bench(subparsers, "fuzz-frames", run_bench_fuzz, HELP, seed=True)
    b.add_argument("--cases", type=int, default=10_000)


MAX_CRASH_EXAMPLES = 10


def _check_image(image: object) -> None:
    if not (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and 0 < max(image.shape[:2]) <= MAX_SIDE_PX
    ):
        shape = getattr(image, "shape", None)
        raise AssertionError(f"decoded to {type(image).__name__} {shape}")


def _check_meta(meta: FrameMeta) -> None:
    """What the worker does with parsed headers must not raise either (event time, ids)."""
    datetime.fromtimestamp(meta.captured_ms / 1000, UTC)
    if not (0 <= meta.seq < 2**63 and 0 <= meta.captured_ms):
        raise AssertionError(f"out of range: {meta}")


def _crash(case: int, target: str, exc: Exception, **detail: str) -> dict:
    error = f"{type(exc).__name__}: {exc}"[:300]
    return {"case": case, "target": target, **detail, "error": error}


def _decode_outcome(payload: bytes | None) -> tuple[str, Exception | None]:
    try:
        _check_image(decode_frame(payload))
        return "decoded", None
    except InvalidFrame as exc:
        return f"invalid:{exc.reason}", None
    except Exception as exc:  # noqa: BLE001 - counting crashes is the point
        return "crash", exc


def _headers_outcome(header_list: list[tuple[str, bytes | None]]) -> tuple[str, Exception | None]:
    try:
        _check_meta(parse_headers(header_list))
        return "parsed", None
    except InvalidFrame as exc:
        return f"invalid:{exc.reason}", None
    except Exception as exc:  # noqa: BLE001
        return "crash", exc


def fuzz_frames(cases: int, seed: int = 0) -> dict:
    """Run ``cases`` payloads through ``decode_frame`` and as many header lists through
    ``parse_headers``; returns outcome counts (crashes must be 0)."""
    rng = np.random.default_rng(seed)
    seeds = seed_payloads()
    names = list(MUTATIONS)
    weights = np.array([MUTATIONS[n][1] for n in names], dtype=float)
    weights /= weights.sum()
    decode, headers = Counter(), Counter()
    by_mutation: dict[str, Counter] = {n: Counter() for n in names}
    crashes: list[dict] = []
    t0 = time.perf_counter()
    for case in range(cases):
        name = names[rng.choice(len(names), p=weights)]
        outcome, exc = _decode_outcome(MUTATIONS[name][0](rng, seeds))
        if exc is not None and len(crashes) < MAX_CRASH_EXAMPLES:
            crashes.append(_crash(case, "decode_frame", exc, mutation=name))
        decode[outcome] += 1
        by_mutation[name][outcome] += 1
        header_list = fuzz_headers(rng)
        outcome, exc = _headers_outcome(header_list)
        if exc is not None and len(crashes) < MAX_CRASH_EXAMPLES:
            crashes.append(_crash(case, "parse_headers", exc, headers=repr(header_list)[:300]))
        headers[outcome] += 1
    seconds = time.perf_counter() - t0
    return {
        "benchmark": "fuzz-frames",
        "seed": seed,
        "cases": cases,
        "seed_payloads": len(seeds),
        "decode_frame": _summary(decode, "decoded"),
        "parse_headers": _summary(headers, "parsed"),
        "crashes": decode["crash"] + headers["crash"],
        "by_mutation": {n: dict(sorted(c.items())) for n, c in by_mutation.items() if c},
        "crash_examples": crashes,
        "seconds": round(seconds, 2),
        "cases_per_s": round(cases / seconds, 1) if seconds else None,
    }


def _summary(counts: Counter, ok: str) -> dict:
    invalid = {k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("invalid:")}
    return {
        ok: counts[ok],
        "invalid": invalid,
        "invalid_total": sum(invalid.values()),
        "crashes": counts["crash"],
    }


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """libjpeg and libpng print a warning per corrupt input straight to fd 2: thousands here."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run_bench_fuzz(args) -> int:
    with _quiet_native_stderr():
        result = fuzz_frames(args.cases, args.seed)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 1 if result["crashes"] else 0
