"""One Redis pub/sub subscription per aggregator, fanned out in-process to live clients.

On one node it subscribes to ``{p}:live``; on a Redis Cluster (detected) to the shard channels
``{p}:live:{i}`` with SSUBSCRIBE, each on the master that owns it (``live.wire``).

Before, each WebSocket/SSE client opened its own pub/sub connection from the store's pool:
about a hundred viewers exhausted the pool, and event storage, ``/v1/*`` and ``/healthz`` failed
while Redis was fine. Now the hub holds one connection of its own, outside every pool, while at
least one client listens; each client gets a bounded queue that drops its oldest event when the
client reads too slowly (counted), and at most ``max_clients`` clients are admitted.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from emostream.aggregator.live.replay import ReplayLog
from emostream.aggregator.live.wire import decode
from emostream.aggregator.state.connect import AnyRedis, connect
from emostream.aggregator.state.keys import INDEX_PARTS, live_channel
from emostream.errors import DependencyUnavailable
from emostream.runtime.component import Component
from emostream.settings import RedisOptions

log = structlog.get_logger(__name__)


KINDS = ("event", "change", "alert")  # the live message types


class LiveClient:
    """One viewer's bounded queue of live messages (drop-oldest).

    ``kinds``: the message types it asked for. A client that asked for none gets events only,
    each as the bare event document (the original format); one that named kinds gets every
    message as ``{"type", "stream_id", "data"}``.
    """

    def __init__(
        self, streams: set[str] | None, max_queue: int, kinds: set[str] | None = None
    ) -> None:
        self.streams = streams
        self.kinds = kinds or {"event"}
        self.typed = kinds is not None
        self._queue: asyncio.Queue[tuple[str, str, str, str]] = asyncio.Queue(maxsize=max_queue)
        self.dropped = 0
        self.gap = False  # its Last-Event-ID could not be resumed from (``live.replay``)

    def offer(
        self, doc: str, stream_id: str | None, kind: str = "event", event_id: str = ""
    ) -> None:
        """Queue ``doc`` (the event, change or alert JSON) if this client wants it."""
        if self.streams is not None and stream_id not in self.streams:
            return
        if kind not in self.kinds:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait((kind, stream_id or "", doc, event_id))

    async def next_item(self, timeout_s: float) -> tuple[str, str] | None:
        """The next ``(kind, document)``, or None after ``timeout_s`` without one."""
        try:
            kind, _, doc, _ = await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None
        return kind, doc

    async def next_message(self, timeout_s: float) -> tuple[str, str, str] | None:
        """The next ``(event id, kind, text)``: ``text`` is the WebSocket message, which SSE
        sends as its ``data`` (one shape for both); None after ``timeout_s`` without one."""
        try:
            kind, stream_id, doc, event_id = await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None
        return event_id, kind, self.text(kind, stream_id, doc)

    async def next(self, timeout_s: float) -> str | None:
        """The next WebSocket text (see the class), or None after ``timeout_s`` without one."""
        found = await self.next_message(timeout_s)
        return None if found is None else found[2]

    def text(self, kind: str, stream_id: str, doc: str) -> str:
        """The bare document, or with ``kind`` asked for the ``{"type", "stream_id", "data"}``."""
        if not self.typed:
            return doc
        return f'{{"type":{json.dumps(kind)},"stream_id":{json.dumps(stream_id)},"data":{doc}}}'


class LiveHub(Component):
    """Fans the ``{prefix}:live`` channel out to at most ``max_clients`` live clients.

    Subscribes on the first ``join`` (which starts the hub); ``stop()`` ends every client.
    """

    def __init__(
        self,
        settings: RedisOptions,
        max_clients: int = 200,
        max_queue: int = 1000,
        linger_s: float = 0.0,
    ) -> None:
        self.settings = settings
        self.prefix = settings.key_prefix
        self.cluster = False
        self.max_clients = max_clients
        self.max_queue = max_queue
        self._clients: set[LiveClient] = set()
        self._lock = asyncio.Lock()
        self._redis: AnyRedis | None = None
        self._pubsub: Any = None
        self._pump_task: asyncio.Task | None = None
        self.refused = 0
        self.replay = ReplayLog()  # for SSE resumes; see ``live.replay``
        self.linger_s = linger_s  # subscribed this long after the last client left
        self._linger: asyncio.Task | None = None

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def join(
        self,
        streams: set[str] | None,
        kinds: set[str] | None = None,
        last_event_id: str | None = None,
    ) -> LiveClient | None:
        """A new client subscribed (and the channel with it), or None when the hub is full.

        With ``last_event_id`` its queue starts with the kept messages after that one (or
        ``gap`` is set when they cannot all be given)."""
        async with self._lock:
            if len(self._clients) >= self.max_clients:
                self.refused += 1
                return None
            if not self.started:
                await self.start()  # so that a later stop() closes what this join opens
            if self._pump_task is None:
                await self._subscribe()
                self._pump_task = asyncio.create_task(self._pump(), name="live-hub")
            self._cancel_linger()
            client = LiveClient(streams, self.max_queue, kinds)
            if last_event_id is not None:
                missed = self.replay.since(last_event_id)
                client.gap = missed is None
                for seq, (kind, stream_id, doc) in missed or ():
                    client.offer(doc, stream_id, kind, self.replay.event_id(seq))
            self._clients.add(client)  # no await since the replay: nothing fanned out between
            return client

    async def leave(self, client: LiveClient) -> None:
        """Idempotent; the last client to leave closes the subscription."""
        async with self._lock:
            self._clients.discard(client)
            if not self._clients and self.linger_s > 0:
                self._cancel_linger()
                self._linger = asyncio.create_task(self._close_later(), name="live-hub-linger")
            elif not self._clients:
                await self._close()

    async def _close_later(self) -> None:
        await asyncio.sleep(self.linger_s)
        async with self._lock:
            if not self._clients:
                await self._close()

    def _cancel_linger(self) -> None:
        task, self._linger = self._linger, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _stop(self) -> None:
        self._cancel_linger()
        async with self._lock:
            self._clients.clear()
            await self._close()

    async def _subscribe(self) -> None:
        if self._redis is None:  # its own connections: no pool is shared with viewers
            try:
                self._redis, self.cluster = await connect(
                    self.settings.url.get_secret_value(), decode_responses=True, max_connections=2
                )
            except DependencyUnavailable as exc:  # the API answers 503 to a RedisError
                raise RedisConnectionError(str(exc)) from exc
        self._pubsub = self._redis.pubsub()
        if self.cluster:
            channels = [live_channel(self.prefix, i) for i in range(INDEX_PARTS)]
            await self._pubsub.ssubscribe(*channels)
        else:
            await self._pubsub.subscribe(live_channel(self.prefix, None))

    async def _next_message(self) -> Any:
        if self.cluster:
            return await self._pubsub.get_sharded_message(
                ignore_subscribe_messages=True, timeout=1.0
            )
        return await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)

    async def _close(self) -> None:
        self.replay.reset()  # unsubscribed: messages go by unseen
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
                msg = await self._next_message()
            except (RedisError, RedisClusterException, OSError) as exc:
                log.warning("live subscription lost, resubscribing", error=str(exc), retry_s=delay)
                self.replay.reset()
                pubsub, self._pubsub = self._pubsub, None
                client, self._redis = self._redis, None  # a cluster may have moved: reconnect
                for closing in (pubsub, client):
                    if closing is not None:
                        await asyncio.gather(closing.aclose(), return_exceptions=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            if msg is not None and isinstance(msg.get("data"), str):
                self._fan_out(msg["data"])

    def _fan_out(self, message: str) -> None:
        """Each item of a message (``live.wire``) to the clients that want it."""
        clients = list(self._clients)
        for item in decode(message):
            kind, stream_id, doc = item
            event_id = self.replay.event_id(self.replay.append(item))
            for client in clients:
                client.offer(doc, stream_id, kind, event_id)
