"""One Redis pub/sub subscription per aggregator, fanned out in-process to live clients.

Before, each WebSocket/SSE client opened its own pub/sub connection from the store's pool:
about a hundred viewers exhausted the pool, and event storage, ``/v1/*`` and ``/healthz`` failed
while Redis was fine. Now the hub holds one connection of its own, outside every pool, while at
least one client listens; each client gets a bounded queue that drops its oldest event when the
client reads too slowly (counted), and at most ``max_clients`` clients are admitted.
"""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from emostream.runtime.component import Component
from emostream.settings import RedisSettings

log = structlog.get_logger(__name__)


class LiveClient:
    """One viewer's bounded queue of event JSON documents (drop-oldest)."""

    def __init__(self, streams: set[str] | None, max_queue: int) -> None:
        self.streams = streams
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=max_queue)
        self.dropped = 0

    def offer(self, doc: str, stream_id: str | None) -> None:
        if self.streams is not None and stream_id not in self.streams:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(doc)

    async def next(self, timeout_s: float) -> str | None:
        """The next event, or None after ``timeout_s`` without one (for heartbeats)."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None


class LiveHub(Component):
    """Fans the ``{prefix}:live`` channel out to at most ``max_clients`` live clients.

    Subscribes on the first ``join`` (which starts the hub); ``stop()`` ends every client.
    """

    def __init__(
        self, settings: RedisSettings, max_clients: int = 200, max_queue: int = 1000
    ) -> None:
        self.settings = settings
        self.channel = f"{settings.key_prefix}:live"
        self.max_clients = max_clients
        self.max_queue = max_queue
        self._clients: set[LiveClient] = set()
        self._lock = asyncio.Lock()
        self._redis: aioredis.Redis | None = None
        self._pubsub = None
        self._pump_task: asyncio.Task | None = None
        self.refused = 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def join(self, streams: set[str] | None) -> LiveClient | None:
        """A new client subscribed (and the channel with it), or None when the hub is full."""
        async with self._lock:
            if len(self._clients) >= self.max_clients:
                self.refused += 1
                return None
            if not self.started:
                await self.start()  # so that a later stop() closes what this join opens
            if self._pump_task is None:
                await self._subscribe()
                self._pump_task = asyncio.create_task(self._pump(), name="live-hub")
            client = LiveClient(streams, self.max_queue)
            self._clients.add(client)
            return client

    async def leave(self, client: LiveClient) -> None:
        """Idempotent; the last client to leave closes the subscription."""
        async with self._lock:
            self._clients.discard(client)
            if not self._clients:
                await self._close()

    async def _stop(self) -> None:
        async with self._lock:
            self._clients.clear()
            await self._close()

    async def _subscribe(self) -> None:
        if self._redis is None:  # its own single connection: no pool is shared with viewers
            self._redis = aioredis.from_url(
                self.settings.url.get_secret_value(), decode_responses=True, max_connections=1
            )
        self._pubsub = self._redis.pubsub()
        await self._pubsub.subscribe(self.channel)

    async def _close(self) -> None:
        task, self._pump_task = self._pump_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        pubsub, self._pubsub = self._pubsub, None
        client, self._redis = self._redis, None
        for closing in (pubsub, client):
            if closing is not None:
                try:
                    await closing.aclose()
                except (RedisError, OSError):
                    pass

    async def _pump(self) -> None:
        delay = 0.2
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("live subscription lost, resubscribing", error=str(exc), retry_s=delay)
                pubsub, self._pubsub = self._pubsub, None
                if pubsub is not None:
                    await asyncio.gather(pubsub.aclose(), return_exceptions=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            if msg is not None:
                self._fan_out(msg["data"])

    def _fan_out(self, doc: str) -> None:
        try:
            stream_id = json.loads(doc).get("stream_id")
        except (ValueError, AttributeError):
            return
        for client in list(self._clients):
            client.offer(doc, stream_id)
