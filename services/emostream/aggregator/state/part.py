"""A part of the aggregator's Redis data kept beside ``EventStore``: rules, feeds.

Each part shares the store's client, key prefix and retention, so it is built from a started
store (``RuleStore(store.redis, store.key_prefix, store.retention)``) and has no lifecycle of
its own.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from emostream.config import RetentionOptions


class StorePart:
    """``redis``, ``key_prefix`` and ``retention`` (default: the defaults) of a store part."""

    def __init__(
        self, redis: Any, key_prefix: str, retention: RetentionOptions | None = None
    ) -> None:
        self.redis = redis
        self.key_prefix = key_prefix
        self.retention = retention if retention is not None else RetentionOptions()
        self.cluster = isinstance(redis, RedisCluster)
