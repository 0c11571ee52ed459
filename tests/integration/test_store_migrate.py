"""`emostream migrate-store` moves a single node's data of the layout before hash tags."""

from __future__ import annotations

import json

from emostream.aggregator.state.store import EventStore
from emostream.cli.main import main
from emostream.schemas import EmotionEventV1
from tests.integration.test_aggregator_faults import event


async def _write_old_layout(r, p: str, events: list[EmotionEventV1]) -> None:
    """What the aggregator before the hash-tag layout stored for ``events`` (one stream)."""
    for ev in events:
        doc, base, t = ev.model_dump_json(), f"{p}:stream:{ev.stream_id}", ev.captured_ms // 1000
        await r.set(f"{p}:seen:{ev.event_id}", 1, ex=3600)
        await r.lpush(f"{base}:events", doc)
        await r.hset(f"{base}:faces", str(ev.face.index), doc)
        await r.hincrby(f"{base}:emotions", ev.emotion.label, 1)
        await r.hincrby(f"{base}:state", "events_total", 1)
        await r.zadd(f"{p}:streams", {ev.stream_id: ev.captured_ms})
        await r.hincrby(f"{base}:sec:{t}", "n", 1)
        await r.hincrby(f"{base}:sec:{t}", f"n:{ev.emotion.label}", 1)
        for label, prob in ev.emotion.probabilities.items():
            await r.hincrbyfloat(f"{base}:sec:{t}", f"p:{label}", prob)
        await r.hset(f"{base}:tracks", "t-1", doc)
        last = ev
    await r.hset(
        f"{base}:state",
        mapping={
            "stream_id": last.stream_id,
            "last_frame_seq": last.frame_seq,
            "last_event_at": last.captured_at.isoformat(),
            "last_processed_at": last.processed_at.isoformat(),
            "model": last.model.model_dump_json(),
        },
    )
    session = {"session_id": "s1", "stream_id": last.stream_id, "started_ms": events[0].captured_ms}
    session |= {"last_ms": last.captured_ms, "events": len(events), "counts": {"happy": 3}}
    await r.set(f"{base}:session", json.dumps(session))
    await r.lpush(f"{p}:rule:r1:deliveries", json.dumps({"alert_id": "a"}))


async def test_migrate_store_moves_the_old_layout_once(redis_settings, monkeypatch, capsys):
    events = [EmotionEventV1.model_validate_json(event("old-cam:1", seq)) for seq in range(3)]
    monkeypatch.setenv("EMOSTREAM_REDIS__URL", redis_settings.url.get_secret_value())
    monkeypatch.setenv("EMOSTREAM_REDIS__KEY_PREFIX", redis_settings.key_prefix)
    async with EventStore(redis_settings) as store:
        await _write_old_layout(store.redis, store.key_prefix, events)
        assert await store.stream_state("old-cam:1") is None  # not readable before the move

        assert await main_async(["migrate-store"]) == 0
        moved = json.loads(capsys.readouterr().out)
        assert moved == {"streams": 1, "index_entries": 1, "delivery_logs": 1}

        state = await store.stream_state("old-cam:1")
        assert state["events_total"] == 3 and state["emotion_counts"] == {"happy": 3}
        assert [f["frame_seq"] for f in state["faces"]] == [2]
        assert [s["stream_id"] for s in await store.list_streams()] == ["old-cam:1"]
        assert len(await store.recent_events("old-cam:1", 10)) == 3
        [window] = await store.windows("old-cam:1", [60], events[-1].captured_ms + 1)
        assert window["events"] == 3
        assert len(await store.tracks("old-cam:1", 60, events[-1].captured_ms)) == 1
        [session] = await store.sessions("old-cam:1", 10, events[-1].captured_ms)
        assert session["events"] == 3
        assert await store.add_new_events(events) == []  # the markers moved too
        later = EmotionEventV1.model_validate_json(event("old-cam:1", 3))
        assert len(await store.add_new_events([later])) == 1
        assert (await store.stream_state("old-cam:1"))["events_total"] == 4
        assert [
            k async for k in store.redis.scan_iter(f"{store.key_prefix}:stream:old-cam:1:*")
        ] == []

        assert await main_async(["migrate-store"]) == 0  # a second run finds nothing to move
        assert json.loads(capsys.readouterr().out)["streams"] == 0


async def main_async(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv)
