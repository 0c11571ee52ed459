"""`emostream migrate-store`: move a single node's data of the layout before hash tags
(``{p}:stream:{id}:state``, ``:emotions``, ``:faces``, ``:session``, ``:sec:{t}``, ``{p}:streams``,
``{p}:rule:{id}:deliveries``) into the current one (``emostream.aggregator.state.store``).

Run it once after the upgrade, with the aggregators stopped (a clean stop commits their
offsets): counters are added to what a newer aggregator already stored, lists and feeds are
merged, so a second run finds nothing left to move. Dedup markers of events still in a stream's
recent-events list move with it; older markers expire within the hour anyway.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

from emostream.aggregator.state.keys import deliveries_key, index_key, partition, stream_key
from emostream.aggregator.state.write_script import DEDUPE_TTL_S, MAX_WINDOW_S
from emostream.config import RetentionOptions

PARTS = ("state", "emotions", "faces", "session", "events", "tracks", "sessions")
FEEDS = ("changes", "alerts", "stable")
_SEC = re.compile(r"^(?P<sid>.+):sec:(?P<t>\d+)$")


def _old_streams(prefix: str, keys: list[str]) -> dict[str, set[str]]:
    """Stream id -> its old-layout key suffixes (``state``, ``sec:123``...)."""
    out: dict[str, set[str]] = {}
    head = f"{prefix}:stream:"
    for key in keys:
        rest = key[len(head) :]
        if "{" in rest:
            continue  # already the new layout
        sec = _SEC.match(rest)
        if sec:
            out.setdefault(sec["sid"], set()).add(f"sec:{sec['t']}")
            continue
        sid, _, part = rest.rpartition(":")
        if sid and part in PARTS + FEEDS:
            out.setdefault(sid, set()).add(part)
    return out


async def migrate_store(redis: Any, prefix: str, retention: RetentionOptions) -> dict[str, int]:
    """Move every old-layout key under ``prefix``; counts of what moved."""
    keys = [k async for k in redis.scan_iter(match=f"{prefix}:stream:*", count=1000)]
    streams = _old_streams(prefix, keys)
    for sid, parts in streams.items():
        await _move_stream(redis, prefix, sid, parts, retention)
    moved_index = 0
    if await redis.exists(f"{prefix}:streams"):
        for sid, score in await redis.zrange(f"{prefix}:streams", 0, -1, withscores=True):
            await redis.zadd(index_key(prefix, partition(sid)), {sid: score}, gt=True)
            moved_index += 1
        await redis.delete(f"{prefix}:streams")
    logs = 0
    async for key in redis.scan_iter(match=f"{prefix}:rule:*:deliveries", count=1000):
        rule_id = key[len(f"{prefix}:rule:") : -len(":deliveries")]
        docs = await redis.lrange(key, 0, -1)
        if docs:
            await redis.rpush(deliveries_key(prefix, rule_id), *docs)
            await redis.expire(deliveries_key(prefix, rule_id), retention.stream_ttl_s)
        await redis.delete(key)
        logs += 1
    return {"streams": len(streams), "index_entries": moved_index, "delivery_logs": logs}


async def _move_stream(
    redis: Any, prefix: str, sid: str, parts: set[str], retention: RetentionOptions
) -> None:
    def old(part: str) -> str:
        return f"{prefix}:stream:{sid}:{part}"

    def new(part: str) -> str:
        return stream_key(prefix, sid, part)

    await _move_state(redis, old, new(""), retention, parts)
    for part in ("events", "sessions"):  # older than anything stored since: appended
        docs = await redis.lrange(old(part), 0, -1) if part in parts else []
        if docs:
            await redis.rpush(new(part), *docs)
    await _move_markers(redis, prefix, old("events"), new("seen"))
    keep = retention.max_tracks_per_stream
    await _move_tracks(redis, old("tracks"), new("tracks"), new("tracks_at"), keep)
    for part in ("changes", "alerts"):
        rows = await redis.zrange(old(part), 0, -1, withscores=True)
        if rows:
            await redis.zadd(new(part), dict(rows))
    stable = await redis.hgetall(old("stable"))
    for field, value in stable.items():
        await redis.hsetnx(new("stable"), field, value)
    for part in sorted(p for p in parts if p.startswith("sec:")):
        await _move_second(redis, old(part), new, int(part[4:]))
    for part in ("events", "tracks", "tracks_at", "sessions", "changes", "alerts", "stable"):
        await redis.expire(new(part), retention.stream_ttl_s)
    await redis.ltrim(new("events"), 0, retention.max_events_per_stream - 1)
    await redis.ltrim(new("sessions"), 0, retention.max_sessions_per_stream - 1)
    await redis.delete(*(old(p) for p in parts))


async def _move_state(
    redis: Any, old: Any, new_prefix: str, retention: RetentionOptions, parts: set[str]
) -> None:
    """``:state``, ``:emotions``, ``:faces`` and ``:session`` into the one state hash."""
    state = await redis.hgetall(old("state"))
    emotions = await redis.hgetall(old("emotions"))
    target = f"{new_prefix}state"
    for label, count in emotions.items():
        await redis.hincrby(target, f"e:{label}", int(count))
    await redis.hincrby(target, "events_total", int(state.get("events_total", 0)))
    if await redis.hexists(target, "last_frame_seq"):  # a newer aggregator wrote it already
        await redis.expire(target, retention.stream_ttl_s)
        return
    fields = {k: v for k, v in state.items() if k != "events_total"}
    last = state.get("last_frame_seq")
    faces = [
        doc
        for _, doc in sorted((await redis.hgetall(old("faces"))).items(), key=lambda kv: int(kv[0]))
        if str(json.loads(doc).get("frame_seq")) == last
    ][: retention.max_faces_per_stream]
    fields |= {"faces": ",".join(faces), "faces_n": len(faces)}
    session = await redis.get(old("session")) if "session" in parts else None
    if session:
        fields["session"] = session
    if fields:
        await redis.hset(target, mapping=fields)
    await redis.expire(target, retention.stream_ttl_s)


async def _move_markers(redis: Any, prefix: str, events_key: str, seen_key: str) -> None:
    """Markers of the events still listed: their replay stays a duplicate."""
    ids = [json.loads(d).get("event_id") for d in await redis.lrange(events_key, 0, -1)]
    ids = [i for i in ids if isinstance(i, str)]
    if not ids:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for event_id in ids:
            pipe.pttl(f"{prefix}:seen:{event_id}")
        ttls = await pipe.execute()
    live = {i: t for i, t in zip(ids, ttls) if t and t > 0}
    if live:
        stored_ms = {i: _stored_ms(t) for i, t in live.items()}
        await redis.zadd(seen_key, stored_ms)
        await redis.expire(seen_key, DEDUPE_TTL_S + 120)


def _stored_ms(pttl: int) -> int:
    """When a marker with ``pttl`` ms left was set (markers lived DEDUPE_TTL_S)."""
    return int(time.time() * 1000) - (DEDUPE_TTL_S * 1000 - pttl)


async def _move_tracks(redis: Any, old_key: str, tracks: str, tracks_at: str, keep: int) -> None:
    """The tracks, then only the ``keep`` most recently seen of them."""
    for tid, doc in (await redis.hgetall(old_key)).items():
        try:
            ms = int(_iso_ms(json.loads(doc)["captured_at"]))
        except (ValueError, KeyError, TypeError, OverflowError):
            continue
        if await redis.hsetnx(tracks, tid, doc):
            await redis.zadd(tracks_at, {tid: ms})
    extra = await redis.zcard(tracks_at) - keep
    if extra > 0:
        gone = await redis.zrange(tracks_at, 0, extra - 1)
        await redis.zrem(tracks_at, *gone)
        await redis.hdel(tracks, *gone)


def _iso_ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


async def _move_second(redis: Any, old_key: str, new: Any, t: int) -> None:
    bucket = await redis.hgetall(old_key)
    if not bucket:
        return
    target = new(f"min:{t // 60}")
    for field, value in bucket.items():
        await redis.hincrbyfloat(target, f"{t}:{field}", float(value))
    await redis.hset(target, "x", 1)
    ttl = await redis.ttl(old_key)
    await redis.expire(target, ttl if ttl > 0 else MAX_WINDOW_S + 180)
