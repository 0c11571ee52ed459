"""Per-camera status in Redis: written by the ingest running the camera, read by the API.

One JSON string per camera (``{prefix}:camera:{stream_id}:status``) with a TTL a few times the
write interval. Redis rather than a status topic: the API wants the current value of a few
keys, not a history; an expired key is the answer "no ingest runs this camera now" (a SIGKILLed
ingest cannot say so itself), which a topic could only give after a reader keeps its own
clocks; and Redis is already the aggregator's store (one node or a cluster).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from redis.exceptions import RedisError

from emostream.fleet_options import FleetOptions
from emostream.runtime.component import Component
from emostream.settings import RedisOptions

log = structlog.get_logger(__name__)


def status_key(prefix: str, stream_id: str) -> str:
    return f"{prefix}:camera:{stream_id}:status"


async def read_statuses(redis: Any, prefix: str, stream_ids: list[str]) -> dict[str, dict | None]:
    """Stream id -> its last status (None: no ingest reported it within the TTL)."""
    from emostream.aggregator.state.connect import get_many  # its package imports the API

    values = await get_many(redis, [status_key(prefix, s) for s in stream_ids])
    found: dict[str, dict | None] = {}
    for stream_id, value in zip(stream_ids, values, strict=True):
        try:
            found[stream_id] = json.loads(value) if value else None
        except ValueError:
            found[stream_id] = None
    return found


class StatusWriter(Component):
    """Writes the status of a fleet ingest's cameras; Redis being away only costs status."""

    def __init__(self, redis: RedisOptions, fleet: FleetOptions) -> None:
        self.options = redis
        self.fleet = fleet
        self._redis: Any = None

    async def _start(self) -> None:
        from emostream.aggregator.state.connect import connect  # one node or a cluster

        url = self.options.url.get_secret_value()
        self._redis, _ = await connect(url, decode_responses=True, socket_timeout=5)

    async def _stop(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    async def write(self, docs: list[dict]) -> None:
        if self._redis is None or not docs:
            return
        ttl_ms = int(self.fleet.status_ttl_s * 1000)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for doc in docs:
                    key = status_key(self.options.key_prefix, doc["stream_id"])
                    pipe.set(key, json.dumps(doc), px=ttl_ms)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("camera status not written", error=str(exc), cameras=len(docs))

    async def forget(self, stream_id: str) -> None:
        """A deleted camera's status goes at once (not after its TTL)."""
        if self._redis is None:
            return
        try:
            await self._redis.delete(status_key(self.options.key_prefix, stream_id))
        except (RedisError, OSError) as exc:
            log.warning("camera status not deleted", error=str(exc), stream_id=stream_id)
