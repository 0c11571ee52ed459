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

Rules, their per-track state and webhook delivery logs are in ``emostream.aggregator.rules.store``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError

from emostream.aggregator.state.sessions import Session, apply_events, is_ended
from emostream.errors import DependencyUnavailable
from emostream.labels import EMOTIONS
from emostream.schemas import EmotionEventV1
from emostream.settings import RedisSettings

log = structlog.get_logger(__name__)
DEDUPE_TTL_S = 3600
MAX_WINDOW_S = 3600  # per-second buckets kept this long
STREAM_PAGE_SLACK = 50  # extra ids read per page, for ties with the cursor's score
# Reads each listed stream's state key too (keys not passed in KEYS: fine on one Redis node,
# not on Redis Cluster).
_LIST_STREAMS = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[2]))
local out = {}
for i = 1, #ids, 2 do
  local st = redis.call('HMGET', ARGV[3] .. ids[i] .. ':state',
                        'events_total', 'last_event_at', 'last_frame_seq')
  table.insert(out, ids[i]); table.insert(out, ids[i + 1])
  table.insert(out, st[1]); table.insert(out, st[2]); table.insert(out, st[3])
end
return out
"""
MAX_TRANSACTION_ATTEMPTS = (
    5  # a batch whose markers another writer keeps setting: give up, retry later
)


class EventStore:
    """Async Redis store for emotion events; ``start``/``stop`` or ``async with``."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.p = settings.key_prefix
        self._redis: aioredis.Redis | None = None

    async def start(self) -> EventStore:
        if self._redis is None:
            self._redis = aioredis.from_url(
                self.settings.url.get_secret_value(), decode_responses=True, socket_timeout=10
            )
            try:
                await self._redis.ping()
            except (RedisConnectionError, OSError) as exc:
                await self._redis.aclose()
                self._redis = None
                raise DependencyUnavailable(f"Redis not reachable: {exc}") from exc
        return self

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def __aenter__(self) -> EventStore:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("EventStore not started")
        return self._redis

    def _k(self, stream_id: str, part: str) -> str:
        return f"{self.p}:stream:{stream_id}:{part}"

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
        ttl = self.settings.stream_ttl_s
        keep = self.settings.max_events_per_stream
        for ev in fresh:
            sid = ev.stream_id
            doc = ev.model_dump_json()
            ts_ms = int(ev.captured_at.timestamp() * 1000)
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
            pipe.ltrim(self._k(sid, "sessions"), 0, self.settings.max_sessions_per_stream - 1)
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
                Session.loads(doc), by_stream[sid], self.settings.session_gap_seconds
            )
            out[sid] = (closed, current)
        return out

    async def list_streams(self) -> list[dict[str, Any]]:
        """Every known stream, page by page (benchmarks and tests; the API pages)."""
        out, cursor = [], None
        while True:
            page, cursor = await self.streams_page(1000, cursor)
            out.extend(page)
            if cursor is None:
                return out

    async def streams_page(
        self,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of streams, most recently active first, and the cursor of the next page
        (None on the last). One round trip: a script reads the ids and their states."""
        max_score, after = "+inf", None
        if cursor:
            max_score, _, after = cursor.partition(":")
        rows = await self.redis.eval(
            _LIST_STREAMS,
            1,
            f"{self.p}:streams",
            max_score,
            limit + STREAM_PAGE_SLACK,
            f"{self.p}:stream:",
        )
        out: list[dict[str, Any]] = []
        last: tuple[str, str] | None = None
        for i in range(0, len(rows), 5):
            sid, score, total, last_at, last_seq = rows[i : i + 5]
            if after is not None and score == max_score and sid >= after:
                continue  # ties with the cursor's score come in descending id order
            if len(out) == limit:
                return out, f"{last[1]}:{last[0]}"
            last = (sid, score)
            if total is None:
                continue  # expired state: the id is removed on the next write
            out.append(
                {
                    "stream_id": sid,
                    "events_total": int(total),
                    "last_event_at": last_at,
                    "last_frame_seq": int(last_seq or 0),
                }
            )
        full = len(rows) // 5 == limit + STREAM_PAGE_SLACK
        return out, (f"{last[1]}:{last[0]}" if full and last else None)

    async def stream_state(self, stream_id: str) -> dict[str, Any] | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._k(stream_id, "state"))
            pipe.hgetall(self._k(stream_id, "emotions"))
            pipe.hgetall(self._k(stream_id, "faces"))
            state, emotions, faces = await pipe.execute()
        if not state:
            return None
        last_seq = int(state.get("last_frame_seq", 0))
        latest = [json.loads(doc) for _, doc in sorted(faces.items(), key=lambda kv: int(kv[0]))]
        return {
            "stream_id": stream_id,
            "events_total": int(state.get("events_total", 0)),
            "last_event_at": state.get("last_event_at"),
            "last_processed_at": state.get("last_processed_at"),
            "last_frame_seq": last_seq,
            "emotion_counts": {k: int(v) for k, v in emotions.items()},
            "faces": [f for f in latest if f["frame_seq"] == last_seq],
            "model": json.loads(state["model"]) if "model" in state else None,
        }

    async def windows(
        self, stream_id: str, windows_s: list[int], now_ms: int
    ) -> list[dict[str, Any]]:
        """Counts and mean probabilities over the last W seconds of capture time, per W."""
        longest = max(windows_s)
        now_s = now_ms // 1000
        seconds = list(range(now_s - longest + 1, now_s + 1))
        async with self.redis.pipeline(transaction=False) as pipe:
            for t in seconds:
                pipe.hgetall(self._k(stream_id, f"sec:{t}"))
            buckets = await pipe.execute()
        out = []
        for w in sorted(windows_s):
            n, counts, sums = 0, {}, {}
            for t, b in zip(seconds, buckets):
                if t <= now_s - w or not b:
                    continue
                n += int(b.get("n", 0))
                for key, value in b.items():
                    if key.startswith("n:"):
                        counts[key[2:]] = counts.get(key[2:], 0) + int(value)
                    elif key.startswith("p:"):
                        sums[key[2:]] = sums.get(key[2:], 0.0) + float(value)
            out.append(
                {
                    "window_s": w,
                    "events": n,
                    "counts": {e: counts.get(e, 0) for e in EMOTIONS},
                    "mean_probabilities": {
                        e: round(sums.get(e, 0.0) / n, 6) if n else 0.0 for e in EMOTIONS
                    },
                    "dominant": max(EMOTIONS, key=lambda e: sums.get(e, 0.0)) if n else None,
                }
            )
        return out

    async def tracks(
        self, stream_id: str, active_within_s: float, now_ms: int
    ) -> list[dict[str, Any]]:
        """Latest event of each track seen within ``active_within_s`` (its current smoothed state)."""
        docs = await self.redis.hgetall(self._k(stream_id, "tracks"))
        out = []
        for tid, doc in docs.items():
            ev = _readable(json.loads, doc, "track")
            seen_ms = _readable(_captured_ms, ev, "track") if ev is not None else None
            if seen_ms is not None and now_ms - seen_ms <= active_within_s * 1000:
                out.append(
                    {
                        "track_id": tid,
                        "last_seen_at": ev["captured_at"],
                        "box": ev["face"]["box"],
                        "emotion": ev["emotion"],
                        "smoothed": ev.get("smoothed"),
                    }
                )
        return sorted(out, key=lambda t: t["track_id"])

    async def recent_events(self, stream_id: str, limit: int) -> list[dict[str, Any]]:
        docs = await self.redis.lrange(self._k(stream_id, "events"), 0, limit - 1)
        return [ev for ev in (_readable(json.loads, d, "event") for d in docs) if ev is not None]

    async def sessions(self, stream_id: str, limit: int, now_ms: int) -> list[dict[str, Any]]:
        """Newest-first sessions: the current one (active or, after the gap, ended) first."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self._k(stream_id, "session"))
            pipe.lrange(self._k(stream_id, "sessions"), 0, max(limit - 1, 0))
            current_doc, ended_docs = await pipe.execute()
        gap = self.settings.session_gap_seconds
        out = []
        current = _readable(Session.loads, current_doc, "session")
        if current is not None:
            view = _readable(lambda s: s.view(ended=is_ended(s, now_ms, gap)), current, "session")
            if view is not None:
                out.append(view)
        for doc in ended_docs:
            view = _readable(lambda d: Session.loads(d).view(ended=True), doc, "session")
            if view is not None:
                out.append(view)
        return out[:limit]

    async def session(self, stream_id: str, session_id: str, now_ms: int) -> dict[str, Any] | None:
        everything = self.settings.max_sessions_per_stream + 1
        for found in await self.sessions(stream_id, everything, now_ms):
            if found["session_id"] == session_id:
                return found
        return None


def _captured_ms(ev: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(ev["captured_at"]).timestamp() * 1000)


def _readable(parse: Callable[[Any], Any], doc: Any, what: str) -> Any:
    """``parse(doc)``, or None (logged) when a stored value cannot be read: one bad value, e.g.
    a capture time in year 9999 written before the schema bounded it, must not fail a read."""
    if doc is None:
        return None
    try:
        return parse(doc)
    except (ValueError, TypeError, KeyError, OverflowError, AttributeError) as exc:
        log.warning("unreadable stored value skipped", what=what, error=str(exc)[:200])
        return None
