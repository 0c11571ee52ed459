"""On a Redis Cluster, a batch counts as stored only once each master's replica has it.

Replication is asynchronous: a master SIGKILLed right after a write loses it when its replica
takes over, and the aggregator, having committed the offsets, would never store those events.
So before the offsets are committed, each master the batch wrote to gets a small write and
``WAIT 1`` on one connection of its own: the write's replication offset is past every earlier
write on that master (by any client), so the reply says the replica holds the whole batch. A
master that dies first makes the WAIT fail, the batch is retried on the promoted replica, and
the dedup markers (replicated with the data, or lost with it) keep every event counted once.
A master without a replica that answers (a promoted one whose old master is gone) is not
waited for during ``LONELY_S`` after each timeout: nothing could keep its writes anyway.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from emostream.aggregator.state.keys import stream_key

log = structlog.get_logger(__name__)
WAIT_TIMEOUT_MS = 1000  # a replica slower than this (or none): logged, the batch still counts
LONELY_S = 10.0  # a master whose replica did not answer is not waited for this long


class ReplicaSync:
    """One single-connection client per master (host, port) of a ``RedisCluster``."""

    def __init__(self, cluster: Any, prefix: str) -> None:
        self.cluster = cluster
        self.prefix = prefix
        self._clients: dict[str, aioredis.Redis] = {}
        self._lonely_until: dict[str, float] = {}  # master -> monotonic time
        self.unacknowledged = 0

    async def wait(self, stream_ids: list[str]) -> None:
        """Until the replica of every master holding one of ``stream_ids`` has what it holds."""
        probes: dict[str, tuple[Any, str]] = {}
        for sid in stream_ids:
            key = stream_key(self.prefix, sid, "sync")
            node = self.cluster.get_node_from_key(key)
            probes.setdefault(node.name, (node, key))
        for name, (node, key) in probes.items():
            if time.monotonic() < self._lonely_until.get(name, 0.0):
                continue  # no replica to wait for (e.g. a promoted one, its master dead)
            client = self._client(name, node)
            try:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.set(key, 1, px=10_000)
                    pipe.execute_command("WAIT", 1, WAIT_TIMEOUT_MS)
                    _, acked = await pipe.execute()
            except (RedisError, OSError):
                self._clients.pop(name, None)
                await client.aclose()
                raise
            if int(acked) < 1:
                self.unacknowledged += 1
                self._lonely_until[name] = time.monotonic() + LONELY_S
                log.warning("no replica acknowledged a batch in time", master=name, skip_s=LONELY_S)

    def _client(self, name: str, node: Any) -> aioredis.Redis:
        client = self._clients.get(name)
        if client is None:  # the node's own connection settings (auth, TLS), one connection
            kwargs = dict(node.connection_kwargs, socket_timeout=WAIT_TIMEOUT_MS / 1000 + 5)
            pool = aioredis.ConnectionPool(
                connection_class=node.connection_class, max_connections=1, **kwargs
            )
            client = aioredis.Redis(connection_pool=pool)
            self._clients[name] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
