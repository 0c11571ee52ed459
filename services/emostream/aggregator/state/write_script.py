"""One stream's part of a batch, stored by one Lua script on the stream's slot.

The script checks the dedup markers (and that the stream's current session is the one the plan
was computed from), then writes everything or nothing: markers, events, counters, faces, tracks,
sessions and per-minute window buckets. Counters and buckets are coalesced in Python, so the
script does one read and one write per key, whatever the number of events. TTLs are refreshed
at most every ``REFRESH_MS`` per stream (and whenever a key is created), not on every write.

Returns 1 when stored; ``{duplicate ids, current session, their markers' stored-at ms}`` when
nothing was written (the caller drops the duplicates, recomputes the session from the current
one and retries).
"""

from __future__ import annotations

import json
from typing import Any

from emostream.aggregator.state.keys import stream_key
from emostream.aggregator.state.sessions import Session
from emostream.config import RetentionOptions
from emostream.labels import EMOTIONS
from emostream.schemas import EmotionEventV1

DEDUPE_TTL_S = 3600  # an event id stays a duplicate this long after it was stored
MAX_WINDOW_S = 3600  # per-second buckets kept this long
REFRESH_MS = 60_000  # TTLs refreshed, old markers and tracks dropped, at most this often
MAX_SCRIPT_EVENTS = 1000  # events per script call (a stream's larger share is split)
STREAM_PARTS = ("seen", "state", "events", "tracks", "tracks_at", "sessions", "stable")

STORE_STREAM = """
local m = cjson.decode(ARGV[1])
local seen, state, events, tracks, tracks_at, sessions, stable =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local marks = redis.call('ZMSCORE', seen, unpack(m.ids))
local dups, scores = {}, {}
for i = 1, #m.ids do
  if marks[i] then dups[#dups + 1] = m.ids[i]; scores[#scores + 1] = marks[i] end
end
local st = redis.call('HMGET', state, 'session', 'events_total', 'last_frame_seq', 'faces',
                      'faces_n', 'ttl_at', unpack(m.elabels))
if #dups > 0 or (st[1] or '') ~= m.expect then return {dups, st[1] or '', scores} end
local now = m.now
local first = not st[6]  -- a new (or expired) stream: none of its keys exist yet
local refresh = first or (now - tonumber(st[6]) > m.refresh_ms)
if refresh and not first then
  redis.call('ZREMRANGEBYSCORE', seen, '-inf', '(' .. m.seen_cutoff)
end
local z = {}
for i = 1, #m.ids do z[#z + 1] = now; z[#z + 1] = m.ids[i] end
redis.call('ZADD', seen, unpack(z))
local len = redis.call('LPUSH', events, unpack(ARGV, 2, #ARGV))
if len > m.keep then redis.call('LTRIM', events, 0, m.keep - 1) end
if len == m.n and not refresh then redis.call('EXPIRE', events, m.ttl) end
local h = {'stream_id', m.sid, 'events_total', tonumber(st[2] or 0) + m.n,
           'last_frame_seq', m.last_seq, 'last_event_at', m.last_at,
           'last_processed_at', m.last_proc, 'model', m.model, 'session', m.session}
for i, f in ipairs(m.elabels) do
  h[#h + 1] = f; h[#h + 1] = tonumber(st[6 + i] or 0) + m.ecounts[i]
end
local faces, n_faces = {}, 0
if st[3] and tonumber(st[3]) == m.last_seq and st[4] and st[4] ~= '' then
  faces[1] = st[4]; n_faces = tonumber(st[5] or 0)
end
for _, i in ipairs(m.faces) do
  if n_faces < m.max_faces then faces[#faces + 1] = ARGV[i]; n_faces = n_faces + 1 end
end
h[#h + 1] = 'faces'; h[#h + 1] = table.concat(faces, ',')
h[#h + 1] = 'faces_n'; h[#h + 1] = n_faces
if refresh then h[#h + 1] = 'ttl_at'; h[#h + 1] = now end
redis.call('HSET', state, unpack(h))
if #m.tracks > 0 then
  local th, tz = {}, {}
  for _, t in ipairs(m.tracks) do
    th[#th + 1] = t[1]; th[#th + 1] = ARGV[t[2]]; tz[#tz + 1] = t[3]; tz[#tz + 1] = t[1]
  end
  redis.call('HSET', tracks, unpack(th))
  local added = redis.call('ZADD', tracks_at, 'GT', unpack(tz))
  local drop = {}
  if refresh then
    drop = redis.call('ZRANGEBYSCORE', tracks_at, '-inf', '(' .. m.track_cutoff, 'LIMIT', 0, 1000)
  end
  if added > 0 then
    local count = redis.call('ZCARD', tracks_at)
    if count > m.max_tracks then
      for _, t in ipairs(redis.call('ZRANGE', tracks_at, 0, count - m.max_tracks - 1)) do
        drop[#drop + 1] = t
      end
    end
    if count == added and not refresh then
      redis.call('EXPIRE', tracks, m.ttl); redis.call('EXPIRE', tracks_at, m.ttl)
    end
  end
  if #drop > 0 then
    redis.call('ZREM', tracks_at, unpack(drop)); redis.call('HDEL', tracks, unpack(drop))
    redis.call('HDEL', stable, unpack(drop))
  end
end
if #m.closed > 0 then
  local n = redis.call('LPUSH', sessions, unpack(m.closed))
  if n > m.max_sessions then redis.call('LTRIM', sessions, 0, m.max_sessions - 1) end
  if n == #m.closed then redis.call('EXPIRE', sessions, m.ttl) end
end
for j, inc in ipairs(m.mins) do
  local key = KEYS[#STREAM_PARTS + j]
  local cur = redis.call('HMGET', key, 'x', unpack(inc[1]))
  local out = {'x', 1}
  for i, f in ipairs(inc[1]) do
    out[#out + 1] = f
    out[#out + 1] = string.format('%.17g', tonumber(cur[i + 1] or 0) + inc[2][i])
  end
  redis.call('HSET', key, unpack(out))
  if not cur[1] then redis.call('EXPIRE', key, m.win_ttl) end
end
if refresh then  -- the stable hash: its writer (feeds) sets its TTL on every write
  local parts = {state, events}
  if not first or #m.tracks > 0 then parts[#parts + 1] = tracks; parts[#parts + 1] = tracks_at end
  if not first or #m.closed > 0 then parts[#parts + 1] = sessions end
  for _, k in ipairs(parts) do redis.call('EXPIRE', k, m.ttl) end
  redis.call('EXPIRE', seen, m.seen_ttl)
end
return 1
""".replace("#STREAM_PARTS", str(len(STREAM_PARTS)))


def window_key(prefix: str, stream_id: str, minute: int) -> str:
    """HASH of one capture minute: ``{t}:n``, ``{t}:n:{label}``, ``{t}:p:{label}`` per second t."""
    return stream_key(prefix, stream_id, f"min:{minute}")


def plan(
    prefix: str,
    sid: str,
    events: list[tuple[EmotionEventV1, str]],
    sessions: tuple[str, list[Session], Session],
    retention: RetentionOptions,
    now_ms: int,
) -> tuple[list[str], list[Any], str]:
    """KEYS and ARGV of the script for one stream's fresh ``(event, JSON)`` pairs (in order),
    and the session it stores; ``sessions``: the stored current session (JSON, "" for none),
    the closed and the new one."""
    expect, closed, current = sessions
    last = max(events, key=lambda e: (e[0].frame_seq, e[0].face.index))[0]
    emotions, tracks, faces, mins, newest_ms = _coalesce(events, last.frame_seq)
    session = current.dumps()
    meta = {
        "sid": sid,
        "ids": [ev.event_id for ev, _ in events],
        "n": len(events),
        "expect": expect,
        "session": session,
        "closed": [s.dumps() for s in closed],
        "now": now_ms,
        "refresh_ms": REFRESH_MS,
        "seen_cutoff": now_ms - DEDUPE_TTL_S * 1000,
        "seen_ttl": DEDUPE_TTL_S + 2 * REFRESH_MS // 1000,
        "ttl": retention.stream_ttl_s,
        "keep": retention.max_events_per_stream,
        "max_sessions": retention.max_sessions_per_stream,
        "elabels": list(emotions),
        "ecounts": list(emotions.values()),
        "last_seq": last.frame_seq,
        "last_at": last.captured_at.isoformat(),
        "last_proc": last.processed_at.isoformat(),
        "model": last.model.model_dump_json(),
        "faces": faces,
        "max_faces": retention.max_faces_per_stream,
        "tracks": list(tracks.values()),
        "max_tracks": retention.max_tracks_per_stream,
        "track_cutoff": newest_ms - retention.track_idle_s * 1000,
        "mins": [[list(b), list(b.values())] for b in mins.values()],
        "win_ttl": MAX_WINDOW_S + 180,
    }
    keys = [stream_key(prefix, sid, part) for part in STREAM_PARTS]
    keys += [window_key(prefix, sid, minute) for minute in mins]
    return keys, [json.dumps(meta, separators=(",", ":")), *(doc for _, doc in events)], session


def _coalesce(
    events: list[tuple[EmotionEventV1, str]], last_seq: int
) -> tuple[dict[str, int], dict[str, list[Any]], list[int], dict[int, dict[str, float]], int]:
    """Per batch: emotion counts (``e:{label}``), each track's latest event ``[id, ARGV
    index, capture ms]``, the ARGV indices of the last frame's faces (by face index), the
    per-minute bucket increments and the newest capture ms."""
    emotions: dict[str, int] = {}
    tracks: dict[str, list[Any]] = {}
    faces = []
    seconds: dict[int, tuple[dict[str, int], list[float]]] = {}  # t -> label counts, prob sums
    newest = 0
    for i, (ev, _) in enumerate(events):
        ms = ev.captured_ms
        newest = max(newest, ms)
        label = ev.emotion.label
        emotions[label] = emotions.get(label, 0) + 1
        if ev.face.track_id:
            tracks[ev.face.track_id] = [ev.face.track_id, i + 2, ms]
        if ev.frame_seq == last_seq:
            faces.append((ev.face.index, i + 2))
        counts, sums = seconds.setdefault(ms // 1000, ({}, [0.0] * len(EMOTIONS)))
        counts[label] = counts.get(label, 0) + 1
        for j, p in enumerate(ev.emotion.probabilities.values()):  # in EMOTIONS order
            sums[j] += p
    mins: dict[int, dict[str, float]] = {}
    for t, (counts, sums) in seconds.items():
        bucket = mins.setdefault(t // 60, {})
        bucket[f"{t}:n"] = sum(counts.values())
        bucket |= {f"{t}:n:{label}": n for label, n in counts.items()}
        bucket |= {f"{t}:p:{label}": p for label, p in zip(EMOTIONS, sums)}
    labels = {f"e:{label}": n for label, n in emotions.items()}
    return labels, tracks, [i for _, i in sorted(faces)], mins, newest
