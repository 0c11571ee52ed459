"""Redis-backed aggregate state: per-stream counters, latest faces and a bounded recent-events list.

Keys (``{p}`` is the configured prefix; ``{id}`` the stream id, also the hash tag, so that one
stream's keys share a slot on Redis Cluster; see ``emostream.aggregator.state.keys``):
  {p}:streams:{i}              ZSET stream id -> last event capture ms, i = crc32(id) % 16
  {p}:stream:{id}:state        HASH counters and last-seen fields, ``e:{label}`` counts, the
                               latest frame's faces (``faces``, at most max_faces_per_stream)
                               and the current activity session (``session``, JSON)
  {p}:stream:{id}:events       LIST newest-first event JSON, trimmed to max_events_per_stream
  {p}:stream:{id}:seen         ZSET event id -> stored-at ms: the dedup markers (at-least-once
                               delivery may repeat events), kept an hour
  {p}:stream:{id}:min:{m}      HASH per capture minute m: ``{t}:n``, ``{t}:n:{label}``,
                               ``{t}:p:{label}`` (sum of probs) per second t
  {p}:stream:{id}:tracks       HASH track id -> latest event JSON (current smoothed state)
  {p}:stream:{id}:tracks_at    ZSET track id -> last capture ms; at most max_tracks_per_stream,
                               none idle past track_idle_s (both hashes trimmed with it)
  {p}:stream:{id}:sessions     LIST newest-first ended sessions (JSON), max_sessions_per_stream
  {p}:live / {p}:live:{i}      pub/sub channel (one node) / shard channels (cluster) of newly
                               stored events, changes and alerts (``live.wire``)

Writes are here (one Lua script per stream and batch, ``state.write_script``); reads in
``emostream.aggregator.state.queries``. Rules, their per-track state and webhook delivery logs
are in ``emostream.aggregator.rules.store``.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

import structlog
from redis.exceptions import NoScriptError, RedisError

from emostream.aggregator.live.wire import queue_publish
from emostream.aggregator.state.connect import AnyRedis, connect
from emostream.aggregator.state.keys import index_key, index_keys, partition, stream_key
from emostream.aggregator.state.queries import StoreQueries
from emostream.aggregator.state.replicas import ReplicaSync
from emostream.aggregator.state.sessions import Session, apply_events
from emostream.aggregator.state.write_script import (
    DEDUPE_TTL_S,
    MAX_SCRIPT_EVENTS,
    MAX_WINDOW_S,
    STORE_STREAM,
    plan,
)
from emostream.config import RetentionOptions
from emostream.runtime.component import Component
from emostream.schemas import EmotionEventV1
from emostream.settings import RedisOptions

log = structlog.get_logger(__name__)
__all__ = ["DEDUPE_TTL_S", "MAX_WINDOW_S", "EventStore"]
MAX_TRANSACTION_ATTEMPTS = 5  # a stream whose markers or session keep changing: retry later
INDEX_TRIM_S = 60.0  # idle streams leave the index at most this often (and on the first write)
SESSION_CACHE = 10_000  # streams whose current session this process remembers
Pending = dict[str, list[tuple[EmotionEventV1, str]]]  # stream id -> (event, JSON), in order
Plans = dict[str, tuple[str, list[Session], Session]]  # stream id -> stored, closed, current


class EventStore(Component, StoreQueries):
    """Async Redis store for emotion events; ``start``/``stop`` or ``async with``.

    ``settings`` is the connection (one node or any node of a Redis Cluster, detected);
    ``retention`` bounds what is kept (default: the defaults).
    """

    def __init__(self, settings: RedisOptions, retention: RetentionOptions | None = None) -> None:
        self.settings = settings
        self.retention = retention if retention is not None else RetentionOptions()
        self.key_prefix = settings.key_prefix
        self.cluster = False
        self._redis: AnyRedis | None = None
        self._replicas: ReplicaSync | None = None
        self._sha = hashlib.sha1(STORE_STREAM.encode()).hexdigest()
        self._sessions: OrderedDict[str, str] = OrderedDict()  # stream -> stored session JSON
        self._trimmed_at = -INDEX_TRIM_S
        # Events of calls that raised (a replica's WAIT, a node lost mid-pipeline), maybe stored
        # already: the retry finds those duplicate, with a marker set since the first such call,
        # and returns them as new all the same (rules, feeds and live push see them once).
        self._unreturned: dict[str, tuple[EmotionEventV1, str]] = {}
        self._unreturned_since = 0

    async def _start(self) -> None:
        url = self.settings.url.get_secret_value()
        self._redis, self.cluster = await connect(url, decode_responses=True, socket_timeout=10)
        self._replicas = ReplicaSync(self._redis, self.key_prefix) if self.cluster else None

    async def _stop(self) -> None:
        replicas, self._replicas = self._replicas, None
        if replicas is not None:
            await replicas.aclose()
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    @property
    def redis(self) -> Any:
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

        Each stream's part is one script on the stream's slot: it writes the dedup markers and
        the data together, or nothing when a marker is already there or the stream's session
        moved since it was read (another replica during a rebalance). A crash before the
        script leaves neither, so the replay stores the events; after it, both, so the replay
        drops them. Counters, windows, tracks and sessions are in the same script, so the
        windows and sessions endpoints count the same events, each once.
        """
        unique = list({ev.event_id: ev for ev in events}.values())  # first of each id, in order
        if len(unique) > MAX_SCRIPT_EVENTS:
            out = []
            for i in range(0, len(unique), MAX_SCRIPT_EVENTS):
                out += await self.add_new_events(unique[i : i + MAX_SCRIPT_EVENTS])
            return out
        if not unique:
            return []
        pending: Pending = {}
        for ev in unique:
            pending.setdefault(ev.stream_id, []).append((ev, ev.model_dump_json()))
        await self._index(unique)  # first and idempotent: a replay of the batch repairs it
        carried, since = self._unreturned, self._unreturned_since
        if len(carried) > 4 * MAX_SCRIPT_EVENTS:  # never retried: another batch by now
            carried = {}
        self._unreturned = carried | {p[0].event_id: p for ps in pending.values() for p in ps}
        self._unreturned_since = since if carried else _now_ms()
        stored = await self._store_streams(pending, carried, since)
        if self._replicas is not None:  # before the caller commits offsets: see ``replicas``
            await self._replicas.wait(list(pending))
        await self._publish([(ev.stream_id, doc) for ev, doc in stored])
        self._unreturned, self._unreturned_since = {}, 0
        ids = {ev.event_id for ev, _ in stored}
        return [ev for ev in unique if ev.event_id in ids]

    async def _store_streams(
        self, pending: Pending, carried: dict[str, tuple[EmotionEventV1, str]], since: int
    ) -> list[tuple[EmotionEventV1, str]]:
        """Run each stream's script; drop what turned out duplicate and retry what raced.
        ``carried``: events of failed calls, new if their marker was set at ``since`` or later."""
        stored: list[tuple[EmotionEventV1, str]] = []
        for _ in range(MAX_TRANSACTION_ATTEMPTS):
            sessions = await self._advance_sessions(pending)
            sids = list(pending)
            now_ms = _now_ms()
            calls = [
                plan(self.key_prefix, s, pending[s], sessions[s], self.retention, now_ms)
                for s in sids
            ]
            results = await self._run_scripts([call[:2] for call in calls])
            retry: Pending = {}
            for sid, call, result in zip(sids, calls, results):
                if result == 1:
                    stored += pending[sid]
                    self._remember(sid, call[2])
                    continue
                duplicates, current = set(result[0]), result[1]
                for event_id, at in zip(result[0], result[2]):
                    if event_id in carried and float(at) >= since:
                        stored.append(carried[event_id])
                self._remember(sid, current)
                left = [e for e in pending[sid] if e[0].event_id not in duplicates]
                if left:
                    retry[sid] = left
            pending = retry
            if not pending:
                return stored
        raise RedisError(
            f"event batch not stored: dedup markers or sessions of {len(pending)} streams "
            f"kept changing ({MAX_TRANSACTION_ATTEMPTS} attempts)"
        )

    async def _run_scripts(self, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """One EVALSHA per stream in one pipeline (per node on a cluster); EVAL where a node
        does not have the script yet (a new or promoted node)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self._sha, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
        for i, result in enumerate(results):
            if isinstance(result, NoScriptError):
                keys, args = calls[i]
                results[i] = await self.redis.eval(STORE_STREAM, len(keys), *keys, *args)
            elif isinstance(result, Exception):
                raise result
        return results

    def _remember(self, sid: str, session: str) -> None:
        self._sessions[sid] = session
        self._sessions.move_to_end(sid)
        if len(self._sessions) > SESSION_CACHE:
            self._sessions.popitem(last=False)

    async def _advance_sessions(self, pending: Pending) -> Plans:
        """Per stream, the stored session (as read), the sessions the new events close and the
        updated current one. The script stores the result only if the stored session is still
        the one read, so replicas racing during a rebalance cannot count an event twice."""
        unknown = [sid for sid in pending if sid not in self._sessions]
        if unknown:
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in unknown:
                    pipe.hget(stream_key(self.key_prefix, sid, "state"), "session")
                for sid, doc in zip(unknown, await pipe.execute()):
                    self._remember(sid, doc or "")
        out: Plans = {}
        for sid, evs in pending.items():
            stored = self._sessions[sid]
            closed, current = apply_events(
                Session.loads(stored), [ev for ev, _ in evs], self.retention.session_gap_seconds
            )
            assert current is not None  # evs is never empty
            out[sid] = (stored, closed, current)
        return out

    async def _index(self, events: list[EmotionEventV1]) -> None:
        """The stream index: each stream's newest capture time; idle streams leave it."""
        newest: dict[int, dict[str, int]] = {}
        for ev in events:
            part = newest.setdefault(partition(ev.stream_id), {})
            part[ev.stream_id] = max(part.get(ev.stream_id, 0), ev.captured_ms)
        async with self.redis.pipeline(transaction=False) as pipe:
            for part, members in newest.items():
                pipe.zadd(index_key(self.key_prefix, part), members, gt=True)
            if time.monotonic() - self._trimmed_at > INDEX_TRIM_S:
                self._trimmed_at = time.monotonic()
                idle_before_ms = _now_ms() - self.retention.stream_ttl_s * 1000
                for key in index_keys(self.key_prefix):
                    pipe.zremrangebyscore(key, "-inf", f"({idle_before_ms}")
            await pipe.execute()

    async def _publish(self, docs: list[tuple[str, str]]) -> None:
        """Live push of newly stored events (best effort: the data is stored already)."""
        if not docs:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                queue_publish(
                    pipe, self.key_prefix, self.cluster, [("event", s, d) for s, d in docs]
                )
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("live push of a batch skipped", error=str(exc), events=len(docs))


def _now_ms() -> int:
    return int(time.time() * 1000)
