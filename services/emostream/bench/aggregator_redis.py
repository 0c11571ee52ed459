"""The Redis `emostream bench aggregator` reads its figures from: one node, or every master of a
Redis Cluster (``--redis-url`` at any node; cluster mode is read from the server, as the
aggregator does), the figures summed over the masters and the commands also given per master."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis

from emostream.bench.aggregator_measure import (
    command_delta,
    commandstats,
    cpu_seconds,
    memory_by_kind,
    used_memory,
)


def master_addresses(nodes: object) -> list[tuple[str, int]]:
    """(host, port) of each master in a ``CLUSTER NODES`` reply (text, or redis-py's dict)."""
    if isinstance(nodes, bytes):
        nodes = nodes.decode()
    if isinstance(nodes, dict):
        entries = [(addr, str(info.get("flags", ""))) for addr, info in nodes.items()]
    else:
        entries = [(f[1], f[2]) for f in (line.split() for line in str(nodes).splitlines()) if f]
    out = []
    for addr, flags in entries:
        if "master" in flags.split(",") and "fail" not in flags:
            host, _, port = addr.split("@")[0].split(",")[0].rpartition(":")
            out.append((host, int(port)))
    return sorted(out)


def _node_url(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class RedisNodes:
    """One client per master (a single node: that node)."""

    def __init__(self, url: str) -> None:
        first = redis.Redis.from_url(url)
        self.cluster = bool(int(first.info("cluster").get("cluster_enabled", 0)))
        if not self.cluster:
            self.nodes = [first]
            return
        try:
            masters = master_addresses(first.execute_command("CLUSTER NODES"))
        finally:
            first.close()
        self.nodes = [redis.Redis.from_url(_node_url(url, h, p)) for h, p in masters]

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def commandstats_each(self) -> list[dict[str, int]]:
        return [commandstats(node) for node in self.nodes]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(node) for node in self.nodes)

    def used_memory(self) -> int:
        return sum(used_memory(node) for node in self.nodes)

    def memory_by_kind(self, prefix: str, sids: list[str]) -> dict[str, dict[str, int]]:
        merged: dict[str, dict[str, int]] = {}
        for node in self.nodes:
            for kind, entry in memory_by_kind(node, prefix, sids).items():
                into = merged.setdefault(kind, {"keys": 0, "bytes": 0})
                into["keys"] += entry["keys"]
                into["bytes"] += entry.get("bytes", 0)
        return dict(sorted(merged.items(), key=lambda kv: -kv[1]["bytes"]))


def delta_all(before: list[dict[str, int]], after: list[dict[str, int]]) -> dict[str, int]:
    """Calls per command over every node between two readings, most called first."""
    total: dict[str, int] = {}
    for b, a in zip(before, after):
        for name, n in command_delta(b, a).items():
            total[name] = total.get(name, 0) + n
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))
