"""Redis-backed aggregate state: per-stream counters, latest faces and a bounded recent-events list.

Keys (``{p}`` is the configured prefix):
  {p}:streams                 ZSET stream_id -> last event time (ms)
  {p}:stream:{id}:state       HASH counters and last-seen fields
  {p}:stream:{id}:emotions    HASH label -> count
  {p}:stream:{id}:faces       HASH face index -> latest event JSON
  {p}:stream:{id}:events      LIST newest-first event JSON, trimmed to max_events_per_stream
  {p}:seen:{event_id}         dedupe marker (at-least-once delivery may repeat events), TTL-bound
  {p}:stream:{id}:sec:{t}      HASH per capture second t: n, n:{label}, p:{label} (sum of probs)
  {p}:stream:{id}:tracks      HASH track id -> latest event JSON (current smoothed state)
  {p}:stream:{id}:session     STRING the current activity session's running totals (JSON)
  {p}:stream:{id}:sessions    LIST newest-first ended sessions (JSON), max_sessions_per_stream
  {p}:live                    pub/sub channel: every newly stored event's JSON (live push,
                              fanned out by the aggregator's one LiveHub subscription)

Writes are here; reads in ``emostream.aggregator.state.queries``. Rules, their per-track state
and webhook delivery logs are in ``emostream.aggregator.rules.store``.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError

from emostream.aggregator.state.queries import MAX_WINDOW_S, StoreQueries
from emostream.aggregator.state.sessions import Session, apply_events
from emostream.config import RetentionOptions
from emostream.errors import DependencyUnavailable
from emostream.runtime.component import Component
from emostream.schemas import EmotionEventV1
from emostream.settings import RedisOptions

log = structlog.get_logger(__name__)
__all__ = ["MAX_WINDOW_S", "EventStore"]
DEDUPE_TTL_S = 3600
MAX_TRANSACTION_ATTEMPTS = (
    5  # a batch whose markers another writer keeps setting: give up, retry later
)


class EventStore(Component, StoreQueries):
    """Async Redis store for emotion events; ``start``/``stop`` or ``async with``.

    ``settings`` is the connection; ``retention`` bounds what is kept (default: the defaults).
    """

    def __init__(self, settings: RedisOptions, retention: RetentionOptions | None = None) -> None:
        self.settings = settings
        self.retention = retention if retention is not None else RetentionOptions()
        self.p = settings.key_prefix
        self._redis: aioredis.Redis | None = None

    async def _start(self) -> None:
        self._redis = aioredis.from_url(
            self.settings.url.get_secret_value(), decode_responses=True, socket_timeout=10
        )
        try:
            await self._redis.ping()
        except (RedisConnectionError, OSError) as exc:
            raise DependencyUnavailable(f"Redis not reachable: {exc}") from exc

    async def _stop(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("EventStore not started")
        return self._redis

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:  # noqa: BLE001 - health probe
            return False

    async def add_events(self, events: list[EmotionEventV1]) -> int:
        """Store events idempotently (by event_id); returns how many were new."""
        return len(await self.add_new_events(events))

    async def add_new_events(self, events: list[EmotionEventV1]) -> list[EmotionEventV1]:
        """Store events idempotently (by event_id); returns the new ones (rules run on those).

        Dedup markers and the data go in one MULTI/EXEC: a crash, a kill or an exception before
        EXEC leaves neither, so the replay stores the batch; after EXEC both are there, so the
        replay is dropped. The markers are WATCHed from the read to EXEC; if another writer (a
        replica during a rebalance) sets one meanwhile, EXEC aborts and the batch is redone.
        Counters, windows, tracks and sessions are in the same transaction, so the windows and
        sessions endpoints count the same events, each once.
        """
        unique = list({ev.event_id: ev for ev in events}.values())  # first of each id, in order
        if not unique:
            return []
        markers = [f"{self.p}:seen:{ev.event_id}" for ev in unique]
        for _ in range(MAX_TRANSACTION_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*markers)
                    seen = await pipe.mget(markers)
                    fresh = [ev for ev, mark in zip(unique, seen) if mark is None]
                    if not fresh:
                        return []
                    sessions = await self._advance_sessions(fresh)
                    pipe.multi()
                    for key, mark in zip(markers, seen):
                        if mark is None:
                            pipe.set(key, 1, ex=DEDUPE_TTL_S)
                    self._queue_writes(pipe, fresh, sessions)
                    await pipe.execute()
                    return fresh
                except WatchError:
                    continue
        raise RedisError(
            f"event batch not stored: its dedup markers kept changing "
            f"({MAX_TRANSACTION_ATTEMPTS} attempts)"
        )

    def _queue_writes(
        self,
        pipe: Any,
        fresh: list[EmotionEventV1],
        sessions: dict[str, tuple[list[Session], Session]],
    ) -> None:
        """The data writes for ``fresh`` events, queued on a MULTI pipeline."""
        ttl = self.retention.stream_ttl_s
        keep = self.retention.max_events_per_stream
        for ev in fresh:
            sid = ev.stream_id
            doc = ev.model_dump_json()
            ts_ms = ev.captured_ms
            pipe.lpush(self._k(sid, "events"), doc)
            pipe.publish(f"{self.p}:live", doc)
            pipe.hset(self._k(sid, "faces"), str(ev.face.index), doc)
            pipe.hincrby(self._k(sid, "emotions"), ev.emotion.label, 1)
            pipe.hincrby(self._k(sid, "state"), "events_total", 1)
            pipe.zadd(f"{self.p}:streams", {sid: ts_ms}, gt=True)
            bucket = self._k(sid, f"sec:{ts_ms // 1000}")
            pipe.hincrby(bucket, "n", 1)
            pipe.hincrby(bucket, f"n:{ev.emotion.label}", 1)
            for label, p in ev.emotion.probabilities.items():
                pipe.hincrbyfloat(bucket, f"p:{label}", p)
            pipe.expire(bucket, MAX_WINDOW_S + 60)
            if ev.face.track_id:
                pipe.hset(self._k(sid, "tracks"), ev.face.track_id, doc)
        # Streams idle past the retention leave the list (their keys expire on their own).
        idle_before_ms = int(time.time() * 1000) - ttl * 1000
        pipe.zremrangebyscore(f"{self.p}:streams", "-inf", f"({idle_before_ms}")
        for sid in {ev.stream_id for ev in fresh}:
            last = max(
                (e for e in fresh if e.stream_id == sid), key=lambda e: (e.frame_seq, e.face.index)
            )
            pipe.ltrim(self._k(sid, "events"), 0, keep - 1)
            pipe.hset(
                self._k(sid, "state"),
                mapping={
                    "stream_id": sid,
                    "last_frame_seq": last.frame_seq,
                    "last_event_at": last.captured_at.isoformat(),
                    "last_processed_at": last.processed_at.isoformat(),
                    "model": last.model.model_dump_json(),
                },
            )
            for part in ("events", "faces", "emotions", "state", "tracks"):
                pipe.expire(self._k(sid, part), ttl)
        for sid, (closed, current) in sessions.items():
            for done in closed:
                pipe.lpush(self._k(sid, "sessions"), done.dumps())
            pipe.ltrim(self._k(sid, "sessions"), 0, self.retention.max_sessions_per_stream - 1)
            pipe.set(self._k(sid, "session"), current.dumps(), ex=ttl)
            pipe.expire(self._k(sid, "sessions"), ttl)

    async def _advance_sessions(
        self, fresh: list[EmotionEventV1]
    ) -> dict[str, tuple[list[Session], Session]]:
        """Per stream, the sessions the new events close and the updated current one.

        Read-modify-write without a lock: a stream's events come from one partition, so one
        aggregator replica at a time writes its session (a rebalance can race once, harmlessly).
        """
        by_stream: dict[str, list[EmotionEventV1]] = {}
        for ev in fresh:
            by_stream.setdefault(ev.stream_id, []).append(ev)
        sids = list(by_stream)
        docs = await self.redis.mget([self._k(sid, "session") for sid in sids])
        out = {}
        for sid, doc in zip(sids, docs):
            closed, current = apply_events(
                Session.loads(doc), by_stream[sid], self.retention.session_gap_seconds
            )
            out[sid] = (closed, current)
        return out
