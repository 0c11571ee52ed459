"""A stream's tracks and faces are bounded in size and age (issue 33 item 8).

Before, ``:tracks`` kept every track until the stream idled 7 days and ``:faces`` every face
index ever seen: 10,000 tracks made one read take 626 ms.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emostream.aggregator.state.store import EventStore
from emostream.config import RetentionOptions
from emostream.labels import EMOTIONS
from emostream.schemas import EmotionEventV1

STREAM = "busy"


def _event(seq: int, index: int, track: str, at: datetime) -> EmotionEventV1:
    probs = dict.fromkeys(EMOTIONS, 0.1) | {"happy": 0.4}
    return EmotionEventV1.model_validate(
        {
            "event_id": EmotionEventV1.make_id(STREAM, seq, index),
            "stream_id": STREAM,
            "frame_seq": seq,
            "captured_at": at,
            "processed_at": at,
            "face": {
                "index": index,
                "box": {"x": 1, "y": 1, "w": 40, "h": 40},
                "detector_score": 0.9,
                "track_id": track,
            },
            "emotion": {"label": "happy", "confidence": 0.4, "probabilities": probs},
            "model": {"name": "test", "version": "1", "trained": True},
        }
    )


async def _largest_hash(store: EventStore) -> tuple[str, int]:
    """The largest hash under the store's prefix that is not a per-time window bucket."""
    sizes = []
    async for key in store.redis.scan_iter(f"{store.key_prefix}:*", count=1000):
        if ":sec:" in key or ":min:" in key or await store.redis.type(key) != "hash":
            continue
        sizes.append((key, await store.redis.hlen(key)))
    return max(sizes, key=lambda kv: kv[1])


async def test_tracks_and_faces_stay_bounded_per_stream(redis_settings):
    retention = RetentionOptions(max_tracks_per_stream=50, track_idle_s=600, max_faces_per_stream=8)
    now = datetime.now(UTC)
    async with EventStore(redis_settings, retention) as store:
        stale = [_event(0, 0, "gone-long-ago", now - timedelta(hours=2))]
        crowd = [_event(1, i, f"crowd-{i}", now - timedelta(seconds=1)) for i in range(40)]
        await store.add_events(stale + crowd)  # one frame of 40 faces, a track idle for 2 h
        passers = [
            _event(2 + i, 0, f"passer-{i}", now + timedelta(milliseconds=i)) for i in range(300)
        ]
        for i in range(0, len(passers), 25):
            await store.add_events(passers[i : i + 25])
        now_ms = int((now + timedelta(seconds=1)).timestamp() * 1000)
        tracks = await store.tracks(STREAM, 10 * 24 * 3600, now_ms)
        assert len(tracks) == 50  # the 50 most recently seen
        assert {t["track_id"] for t in tracks} == {f"passer-{i}" for i in range(250, 300)}
        last = _event(999, 0, "crowd-x", now + timedelta(seconds=1))
        await store.add_events(
            [last] + [_event(999, i, f"crowd-{i}", last.captured_at) for i in range(1, 40)]
        )
        state = await store.stream_state(STREAM)
        assert state is not None and len(state["faces"]) == 8  # of the latest frame, capped
        assert [f["face"]["index"] for f in state["faces"]] == list(range(8))
        key, fields = await _largest_hash(store)
        assert fields <= 50 + 1, (key, fields)  # the tracks hash (or the state's few fields)


async def test_a_track_idle_past_track_idle_s_leaves(redis_settings):
    retention = RetentionOptions(track_idle_s=600)
    now = datetime.now(UTC)
    async with EventStore(redis_settings, retention) as store:
        old = _event(0, 0, "old", now - timedelta(hours=2))
        await store.add_events([old, _event(1, 0, "new", now)])
        tracks = await store.tracks(STREAM, 10 * 24 * 3600, int(now.timestamp() * 1000))
        assert [t["track_id"] for t in tracks] == ["new"]


async def test_every_key_of_a_stream_expires(redis_settings):
    """Keys created on a stream's first batch and later (sessions, tracks, feeds) all get a TTL."""
    from emostream.aggregator.feeds import FeedStore
    from tests.synthetic import make_event

    now = datetime.now(UTC)
    async with EventStore(redis_settings, RetentionOptions(session_gap_seconds=1)) as store:
        await store.add_events([make_event(-30, stream=STREAM, seq=0, track=None, base=now)])
        later = [
            make_event(
                t, stream=STREAM, seq=10 + t, smoothed={"label": "happy", "changed": True}, base=now
            )
            for t in range(3)
        ]
        fresh = await store.add_new_events(later)  # closes the first session, adds tracks
        await FeedStore(store.redis, store.key_prefix, store.retention).add_changes(fresh)
        keys = [k async for k in store.redis.scan_iter(f"{store.key_prefix}:stream:*", count=1000)]
        assert {k.rsplit(":", 1)[-1] for k in keys} >= {
            "sessions",
            "tracks",
            "tracks_at",
            "changes",
        }
        no_ttl = [k for k in keys if await store.redis.ttl(k) < 0]
        assert no_ttl == []
