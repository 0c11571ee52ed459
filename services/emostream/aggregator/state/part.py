"""A part of the aggregator's Redis data kept beside ``EventStore``: rules, feeds.

Each part shares the store's client, key prefix and retention, so it is built from a started
store (``RuleStore(store.redis, store.p, store.retention)``) and has no lifecycle of its own.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from emostream.aggregator.state.keys import stream_key
from emostream.config import RetentionOptions


class StorePart:
    """``redis``, key prefix ``p`` and ``retention`` (default: the defaults) of a store part."""

    def __init__(
        self, redis: Any, key_prefix: str, retention: RetentionOptions | None = None
    ) -> None:
        self.redis = redis
        self.p = key_prefix
        self.retention = retention if retention is not None else RetentionOptions()
        self.cluster = isinstance(redis, RedisCluster)

    def _k(self, stream_id: str, part: str) -> str:
        """A per-stream key, ``{p}:stream:{stream_id}:{part}`` (``EventStore``'s layout)."""
        return stream_key(self.p, stream_id, part)
