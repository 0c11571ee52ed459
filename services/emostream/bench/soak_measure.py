"""What `emostream bench soak` measures: resident memory, its growth, and Prometheus counters."""

from __future__ import annotations

import httpx

MB = 1_000_000
JUDGED = ("worker", "aggregator")


def rss_bytes(pid: int | None) -> int | None:
    """Resident set size of a live process (``VmRSS``), None if it is gone."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def growth_mb_per_min(samples: list[tuple[float, int]]) -> float | None:
    """Least-squares slope of RSS over the second half of the run (by time), in MB per minute.

    The first half is warm-up (model load, caches, allocator arenas). None with fewer than two
    samples in the second half.
    """
    if len(samples) < 2:
        return None
    mid = (samples[0][0] + samples[-1][0]) / 2
    half = [(t, r) for t, r in samples if t >= mid]
    if len(half) < 2:
        return None
    n = len(half)
    mean_t = sum(t for t, _ in half) / n
    mean_r = sum(r for _, r in half) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in half)
    if var_t == 0:
        return None
    slope_b_per_s = sum((t - mean_t) * (r - mean_r) for t, r in half) / var_t
    return slope_b_per_s * 60 / MB


def steady(growth: dict[str, float | None], max_growth_mb_per_min: float, exits: list) -> bool:
    """Steady: no process exited and every judged service grew less than the limit."""
    return not exits and all(
        growth.get(name) is not None and growth[name] < max_growth_mb_per_min for name in JUDGED
    )


def scrape(url: str) -> dict[str, float]:
    """Prometheus text format -> {'name{labels}': value}; {} if the endpoint does not answer."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def _metric(metrics: dict[str, float], name: str, **labels: str) -> int:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return int(
        sum(
            v
            for k, v in metrics.items()
            if (k == name or k.startswith(name + "{")) and all(w in k for w in want)
        )
    )
