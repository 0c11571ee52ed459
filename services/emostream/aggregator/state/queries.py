"""The aggregator's reads: stream pages, per-stream state, windows, tracks, events, sessions.

A mixin of ``EventStore`` (``emostream.aggregator.state.store``, which documents the keys): it
reads through the store's ``redis``, ``p`` (key prefix) and ``retention``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from emostream.aggregator.state.keys import index_keys, stream_key
from emostream.aggregator.state.sessions import Session, emotion_summary, is_ended

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from emostream.config import RetentionOptions

log = structlog.get_logger(__name__)
MAX_WINDOW_S = 3600  # per-second buckets kept this long
STREAM_PAGE_SLACK = 50  # extra ids read per page, for ties with the cursor's score


class StoreQueries:
    """Read queries over the keys ``EventStore`` writes."""

    key_prefix: str
    retention: RetentionOptions
    redis: aioredis.Redis  # the store's started client (a property there)

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
        (None on the last). Two round trips: the index partitions, then the listed states."""
        max_score, after = "+inf", None
        if cursor:
            max_score, _, after = cursor.partition(":")
        want = limit + STREAM_PAGE_SLACK
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in index_keys(self.key_prefix):
                pipe.zrevrangebyscore(key, max_score, "-inf", start=0, num=want, withscores=True)
            parts = await pipe.execute()
        # Ties on the score in descending id order, as one sorted set would list them.
        ids = sorted((row for part in parts for row in part), key=lambda r: (r[1], r[0]))
        ids = ids[::-1][:want]
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid, _ in ids:
                pipe.hmget(
                    stream_key(self.key_prefix, sid, "state"),
                    "events_total",
                    "last_event_at",
                    "last_frame_seq",
                )
            states = await pipe.execute()
        out: list[dict[str, Any]] = []
        last: tuple[str, str] | None = None
        for (sid, raw_score), (total, last_at, last_seq) in zip(ids, states):
            score = _score(raw_score)
            if after is not None and score == max_score and sid >= after:
                continue  # ties with the cursor's score come in descending id order
            if len(out) == limit:
                return out, f"{last[1]}:{last[0]}"
            last = (sid, score)
            if total is None:
                continue  # expired state: the id is removed on a later write
            out.append(
                {
                    "stream_id": sid,
                    "events_total": int(total),
                    "last_event_at": last_at,
                    "last_frame_seq": int(last_seq or 0),
                }
            )
        full = len(ids) == want
        return out, (f"{last[1]}:{last[0]}" if full and last else None)

    async def stream_state(self, stream_id: str) -> dict[str, Any] | None:
        state = await self.redis.hgetall(stream_key(self.key_prefix, stream_id, "state"))
        if not state or "events_total" not in state:
            return None
        last_seq = int(state.get("last_frame_seq", 0))
        faces = _readable(json.loads, f"[{state.get('faces', '')}]", "faces") or []
        latest = sorted(
            (f for f in faces if f.get("frame_seq") == last_seq),
            key=lambda f: f["face"]["index"],
        )
        return {
            "stream_id": stream_id,
            "events_total": int(state.get("events_total", 0)),
            "last_event_at": state.get("last_event_at"),
            "last_processed_at": state.get("last_processed_at"),
            "last_frame_seq": last_seq,
            "emotion_counts": {k[2:]: int(v) for k, v in state.items() if k.startswith("e:")},
            "faces": latest,
            "model": json.loads(state["model"]) if "model" in state else None,
        }

    async def windows(
        self, stream_id: str, windows_s: list[int], now_ms: int
    ) -> list[dict[str, Any]]:
        """Counts and mean probabilities over the last W seconds of capture time, per W."""
        longest = max(windows_s)
        now_s = now_ms // 1000
        first = now_s - longest + 1
        minutes = list(range(first // 60, now_s // 60 + 1))
        async with self.redis.pipeline(transaction=False) as pipe:
            for minute in minutes:
                pipe.hgetall(stream_key(self.key_prefix, stream_id, f"min:{minute}"))
            buckets = await pipe.execute()
        per_second: dict[int, dict[str, str]] = {}
        for bucket in buckets:
            for field, value in bucket.items():
                t, _, name = field.partition(":")
                if name and t.isdigit() and first <= int(t) <= now_s:
                    per_second.setdefault(int(t), {})[name] = value
        out = []
        for w in sorted(windows_s):
            n, counts, sums = 0, {}, {}
            for t, b in per_second.items():
                if t <= now_s - w:
                    continue
                n += int(float(b.get("n", 0)))
                for key, value in b.items():
                    if key.startswith("n:"):
                        counts[key[2:]] = counts.get(key[2:], 0) + int(float(value))
                    elif key.startswith("p:"):
                        sums[key[2:]] = sums.get(key[2:], 0.0) + float(value)
            out.append({"window_s": w, "events": n, **emotion_summary(n, counts, sums)})
        return out

    async def tracks(
        self, stream_id: str, active_within_s: float, now_ms: int
    ) -> list[dict[str, Any]]:
        """Latest event (current smoothed state) of each track seen within ``active_within_s``."""
        docs = await self.redis.hgetall(stream_key(self.key_prefix, stream_id, "tracks"))
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
        docs = await self.redis.lrange(
            stream_key(self.key_prefix, stream_id, "events"), 0, limit - 1
        )
        return [ev for ev in (_readable(json.loads, d, "event") for d in docs) if ev is not None]

    async def sessions(self, stream_id: str, limit: int, now_ms: int) -> list[dict[str, Any]]:
        """Newest-first sessions: the current one (active or, after the gap, ended) first."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(stream_key(self.key_prefix, stream_id, "state"), "session")
            pipe.lrange(stream_key(self.key_prefix, stream_id, "sessions"), 0, max(limit - 1, 0))
            current_doc, ended_docs = await pipe.execute()
        gap = self.retention.session_gap_seconds
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
        everything = self.retention.max_sessions_per_stream + 1
        for found in await self.sessions(stream_id, everything, now_ms):
            if found["session_id"] == session_id:
                return found
        return None


def _score(raw: float | str) -> str:
    """A sorted-set score as Redis writes it (capture ms: an integer)."""
    value = float(raw)
    return str(int(value)) if value.is_integer() else repr(value)


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
