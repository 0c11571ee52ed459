"""Per-stream feeds of stable-emotion changes and alerts, paged newest first, pushed live.

Keys (``{p}`` is the configured prefix; the stream id is the hash tag, as in ``EventStore``'s):
  {p}:stream:{id}:changes   ZSET score capture ms, member ``{event_id} {EmotionChangeV1 JSON}``;
                            the newest ``max_changes_per_stream`` kept, TTL stream_ttl_s
  {p}:stream:{id}:alerts    ZSET score fired-at ms, member ``{alert_id} {AlertV1 JSON}``;
                            the newest ``max_alerts_per_stream`` kept, TTL stream_ttl_s
  {p}:stream:{id}:stable    HASH track id -> ``{label} {since ms}``: the last stable label, so
                            a change knows what it changed from and how long that was held

Written after a batch's events are stored (only new events, so a redelivery adds nothing) and
after its alerts fired; a crash in between can lose a batch's feed entries, never duplicate
them. Each entry is also pushed live (``emostream.aggregator.live.wire``); writes are coalesced
per stream (one read of ``stable``, one ZADD per feed and stream).
A member starts with its fixed-length id, so ties on the score page in id order
(``before=<ms>:<id>`` continues after that entry).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from emostream.aggregator.live.wire import Item, queue_publish
from emostream.aggregator.state.keys import stream_key
from emostream.aggregator.state.part import StorePart
from emostream.schemas import AlertV1, EmotionChangeV1, EmotionEventV1

FeedKind = Literal["changes", "alerts"]
PAGE_SLACK = 50  # extra entries read per page, for ties with the cursor's score


class FeedStore(StorePart):
    """Writes and pages the change and alert feeds on a Redis client (``EventStore.redis``)."""

    async def add_changes(self, events: list[EmotionEventV1]) -> list[EmotionChangeV1]:
        """The changes among newly stored ``events`` (``smoothed.changed``), stored and pushed."""
        changed = [e for e in events if e.smoothed and e.smoothed.changed and e.face.track_id]
        if not changed:
            return []
        tracks: dict[str, list[str]] = {}
        for ev in changed:
            tracks.setdefault(ev.stream_id, []).append(ev.face.track_id or "")
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid, ids in tracks.items():
                pipe.hmget(stream_key(self.key_prefix, sid, "stable"), ids)
            stored = dict(zip(tracks, await pipe.execute()))
        last: dict[tuple[str, str], str | None] = {
            (sid, tid): value for sid, ids in tracks.items() for tid, value in zip(ids, stored[sid])
        }
        out = []
        for ev in changed:
            key = (ev.stream_id, ev.face.track_id or "")
            prev = last.get(key)
            change = _change(ev, prev)
            last[key] = f"{change.to_label} {_ms(ev)}"
            out.append(change)
        await self._write("changes", [(c.stream_id, c.event_id, _ms_of(c), c) for c in out])
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid, ids in tracks.items():
                pipe.hset(
                    stream_key(self.key_prefix, sid, "stable"),
                    mapping={t: last[(sid, t)] or "" for t in ids},
                )
                pipe.expire(stream_key(self.key_prefix, sid, "stable"), self.retention.stream_ttl_s)
            await pipe.execute()
        return out

    async def add_alerts(self, alerts: list[AlertV1]) -> None:
        rows = [(a.stream_id, a.alert_id, int(a.fired_at.timestamp() * 1000), a) for a in alerts]
        await self._write("alerts", rows)

    async def _write(self, kind: FeedKind, rows: list[tuple[str, str, int, Any]]) -> None:
        if not rows:
            return
        keep = (
            self.retention.max_changes_per_stream
            if kind == "changes"
            else self.retention.max_alerts_per_stream
        )
        members: dict[str, dict[str, int]] = {}
        live: list[Item] = []
        for sid, item_id, score, model in rows:
            doc = model.model_dump_json()
            members.setdefault(sid, {})[f"{item_id} {doc}"] = score
            live.append((kind[:-1], sid, doc))
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid, mapping in members.items():
                pipe.zadd(stream_key(self.key_prefix, sid, kind), mapping)
            queue_publish(pipe, self.key_prefix, self.cluster, live)
            for sid in members:
                pipe.zremrangebyrank(stream_key(self.key_prefix, sid, kind), 0, -keep - 1)
                pipe.expire(stream_key(self.key_prefix, sid, kind), self.retention.stream_ttl_s)
            await pipe.execute()

    async def page(
        self, stream_id: str, kind: FeedKind, limit: int, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` entries older than ``before`` (``<ms>:<id>``), newest first, and the
        cursor of the next page (None on the last)."""
        max_score, after_id = "+inf", None
        if before:
            ms, _, after_id = before.partition(":")
            max_score = ms
        rows = await self.redis.zrevrangebyscore(
            stream_key(self.key_prefix, stream_id, kind),
            max_score,
            "-inf",
            start=0,
            num=limit + PAGE_SLACK,
            withscores=True,
        )
        return _walk(
            rows,
            limit,
            lambda ms, item_id: after_id is not None and ms == max_score and item_id >= after_id,
        )

    async def page_after(
        self, stream_id: str, kind: FeedKind, limit: int, after: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` entries newer than ``after`` (``<ms>:<id>``), oldest first, and the
        cursor of the next page (None once caught up: poll again with the last entry's
        ``<ms>:<id>``). ``0:`` starts at the oldest entry kept."""
        ms, _, after_id = after.partition(":")
        key = stream_key(self.key_prefix, stream_id, kind)
        rows = await self.redis.zrangebyscore(
            key, ms, "+inf", start=0, num=limit + PAGE_SLACK, withscores=True
        )
        return _walk(rows, limit, lambda score, item_id: score == ms and item_id <= after_id)


def _walk(
    rows: list, limit: int, seen: Callable[[str, str], bool]
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` documents of ``rows`` (``(member, score)``, ``limit + PAGE_SLACK`` asked
    for) past those ``seen(score, id)`` marks as already served, and the next page's cursor."""
    out: list[dict[str, Any]] = []
    cursor = None
    for member, score in rows:
        item_id, _, doc = member.partition(" ")
        if seen(str(int(score)), item_id):
            continue
        if len(out) == limit:
            return out, cursor
        out.append(json.loads(doc))
        cursor = f"{int(score)}:{item_id}"
    full = len(rows) == limit + PAGE_SLACK
    return out, (cursor if full else None)


def _ms(ev: EmotionEventV1) -> int:
    return int(ev.captured_at.timestamp() * 1000)


def _ms_of(change: EmotionChangeV1) -> int:
    return int(change.captured_at.timestamp() * 1000)


def _change(ev: EmotionEventV1, previous: str | None) -> EmotionChangeV1:
    """The change ``ev`` marks; ``previous`` is the track's last ``{label} {since ms}``."""
    sm, track = ev.smoothed, ev.face.track_id
    assert sm is not None and track is not None  # add_changes picks such events
    from_label, held_s = None, None
    if previous:
        label, _, since = previous.partition(" ")
        from_label = label if label != sm.label else None
        if from_label is not None and since.isdigit():
            held_s = max(_ms(ev) - int(since), 0) / 1000
    return EmotionChangeV1.model_validate(
        {
            "event_id": ev.event_id,
            "stream_id": ev.stream_id,
            "track_id": track,
            "frame_seq": ev.frame_seq,
            "captured_at": ev.captured_at,
            "from_label": from_label,
            "to_label": sm.label,
            "confidence": sm.confidence,
            "previous_held_s": held_s,
            "model": ev.model,
        }
    )
