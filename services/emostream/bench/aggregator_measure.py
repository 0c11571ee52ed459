"""What `emostream bench aggregator` reads: Redis's INFO (commandstats, memory) and the
aggregators' Prometheus metrics (stored events, the batch store-time histogram)."""

from __future__ import annotations

import math
import os
import re
import subprocess
from pathlib import Path

import redis

from emostream.bench.soak_measure import _metric, scrape

STORED = "emostream_events_stored_total"
DUPLICATE = "emostream_events_duplicate_total"
STORE_SECONDS = "emostream_aggregator_store_seconds"
OWN_COMMANDS = {"info", "ping"}  # the benchmark's own probes


def commandstats(r: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started (``INFO commandstats``)."""
    stats = r.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def command_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls per command between two ``commandstats`` readings, the benchmark's own left out."""
    out = {}
    for name, calls in after.items():
        n = calls - before.get(name, 0)
        if n > 0 and name.split("|")[0] not in OWN_COMMANDS:
            out[name] = n
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def cpu_seconds(r: redis.Redis) -> float:
    """The Redis server's CPU time so far (user + system, all its threads)."""
    cpu = r.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def process_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a live process has used; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def metrics_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/metrics/"


def stored_total(readings: list[dict[str, float]]) -> int:
    """New events stored, summed over the replicas' latest scrapes."""
    return sum(_metric(m, STORED) for m in readings)


def read_all(ports: list[int], last: list[dict[str, float]]) -> list[dict[str, float]]:
    """Scrape every replica; one that does not answer keeps its previous reading."""
    out = []
    for i, port in enumerate(ports):
        m = scrape(metrics_url(port))
        out.append(m if m else (last[i] if i < len(last) else {}))
    return out


def histogram(readings: list[dict[str, float]], name: str) -> tuple[list[tuple[float, float]], int]:
    """Cumulative (upper bound, count) buckets of one histogram summed over replicas, and its
    observation count."""
    buckets: dict[float, float] = {}
    for m in readings:
        for key, value in m.items():
            if key.startswith(f"{name}_bucket{{"):
                le = key.split('le="', 1)[1].split('"', 1)[0]
                bound = math.inf if le == "+Inf" else float(le)
                buckets[bound] = buckets.get(bound, 0.0) + value
    count = int(sum(v for m in readings for k, v in m.items() if k == f"{name}_count"))
    return sorted(buckets.items()), count


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """``histogram_quantile``: linear inside the bucket holding the q-th observation."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # above the largest finite bound: that bound is all one can say
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


def store_ms(readings: list[dict[str, float]]) -> dict[str, float | int | None]:
    """p50/p99 of one batch's Redis write (the aggregators' histogram), in ms."""
    buckets, count = histogram(readings, STORE_SECONDS)

    def ms(q: float) -> float | None:
        v = quantile(buckets, q)
        return round(v * 1000, 2) if v is not None else None

    return {"p50": ms(0.5), "p99": ms(0.99), "batches": count}


def code_commit() -> dict[str, str | list[str]]:
    """The commit of the code the aggregators run (where ``emostream.aggregator`` is imported
    from: PYTHONPATH can point at another checkout) and whether it has uncommitted changes."""
    import emostream.aggregator as agg

    where = Path(agg.__file__).resolve().parent
    env = os.environ | {"GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=where, capture_output=True, text=True, timeout=10, env=env
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.rstrip()  # porcelain lines start with a status column: keep it

    root = git("rev-parse", "--show-toplevel").strip()
    dirty = git("status", "--porcelain", "--", f"{root}/shared", f"{root}/services/emostream")
    changed = sorted(line[3:] for line in dirty.splitlines() if line[3:].endswith(".py"))
    return {"commit": git("rev-parse", "HEAD").strip() or "unknown", "uncommitted": changed[:30]}


def key_kind(key: str, sids: list[str]) -> str:
    """A key with its stream id, event id and numbers replaced: ``p:stream:<sid>:sec:<n>``."""
    for sid in sids:
        key = key.replace(sid, "<sid>")
    key = re.sub(r"\b[0-9a-f]{32}\b", "<id>", key)
    return re.sub(r"\d+", "<n>", key)


def memory_by_kind(r: redis.Redis, prefix: str, sids: list[str]) -> dict[str, dict[str, int]]:
    """Keys and bytes (``MEMORY USAGE``) per kind of key under ``prefix``, largest first."""
    kinds: dict[str, dict[str, int]] = {}
    keys = [k.decode() for k in r.scan_iter(match=f"*{prefix}*", count=1000)]
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        pipe = r.pipeline(transaction=False)
        for key in chunk:
            pipe.memory_usage(key)
        for key, size in zip(chunk, pipe.execute()):
            kind = key_kind(key.replace(prefix, "<p>"), sids)
            entry = kinds.setdefault(kind, {"keys": 0})
            entry["keys"] += 1
            entry["bytes"] = entry.get("bytes", 0) + int(size or 0)
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]["bytes"]))
