"""Dedup markers and event data are one atomic step: a failure between them loses nothing."""

from __future__ import annotations

import pytest

from emostream.aggregator.state.keys import index_key, partition
from emostream.aggregator.state.store import EventStore
from emostream.schemas import EmotionEventV1
from tests.integration.test_aggregator_faults import event


async def test_a_failure_before_the_data_is_written_leaves_no_markers(redis_settings, monkeypatch):
    events = [
        EmotionEventV1.model_validate_json(event(sid, seq))
        for sid in ("a", "b")
        for seq in range(8)
    ]
    async with EventStore(redis_settings) as store:
        real = store._advance_sessions

        async def crash_once(fresh):
            monkeypatch.setattr(store, "_advance_sessions", real)
            raise RuntimeError("killed between the dedup step and the data")

        monkeypatch.setattr(store, "_advance_sessions", crash_once)
        with pytest.raises(RuntimeError):
            await store.add_new_events(events)
        assert len(await store.add_new_events(events)) == 16  # the replay stores everything
        assert await store.add_new_events(events) == []  # and a second replay nothing
        for sid in ("a", "b"):
            stored = await store.recent_events(sid, 100)
            assert sorted(e["frame_seq"] for e in stored) == list(range(8))


async def test_repeats_within_one_batch_are_stored_once(redis_settings):
    ev = EmotionEventV1.model_validate_json(event("c", 1))
    async with EventStore(redis_settings) as store:
        assert len(await store.add_new_events([ev, ev, ev])) == 1
        assert len(await store.recent_events("c", 10)) == 1


async def test_a_deleted_rules_delivery_log_stays_deleted(redis_settings):
    from pydantic import TypeAdapter

    from emostream.aggregator.rules.model import RuleSpec, new_rule
    from emostream.aggregator.rules.store import RuleStore

    SPEC = TypeAdapter(RuleSpec)

    async with EventStore(redis_settings) as store:
        rules = RuleStore(store.redis, store.key_prefix, store.retention)
        rule = new_rule(SPEC.validate_python({"kind": "stable_change", "name": "x"}))
        await rules.create(rule)
        assert await rules.record_delivery(rule.id, {"alert_id": "a"})
        assert await rules.delete(rule.id)
        assert not await rules.record_delivery(rule.id, {"alert_id": "b"})  # a late sender
        assert await rules.deliveries(rule.id, 10) == [] and not await rules.exists(rule.id)


async def test_no_stored_value_makes_a_read_endpoint_fail(redis_settings):
    """Values written before the schema bounded capture times (year 9999) or simply corrupt."""
    import json as jsonlib

    import httpx

    from emostream.aggregator import create_app

    async with EventStore(redis_settings) as store:
        await store.add_events([EmotionEventV1.model_validate_json(event("y", 1))])
        p = f"{redis_settings.key_prefix}:stream:{{y}}"
        session = jsonlib.loads(await store.redis.hget(f"{p}:state", "session"))
        far = dict(session, last_ms=253_402_300_800_000 * 10, started_ms=253_402_300_800_000 * 10)
        await store.redis.hset(f"{p}:state", "session", jsonlib.dumps(far))
        await store.redis.lpush(f"{p}:sessions", "{not json", jsonlib.dumps(far))
        await store.redis.hset(
            f"{p}:tracks",
            mapping={"t1": jsonlib.dumps({"captured_at": "99999-01-01T00:00:00"}), "t2": "{oops"},
        )
        await store.redis.lpush(f"{p}:events", "{oops")
        app = create_app(store)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as api:
            for path in ("sessions", "tracks", "events", "state", "windows"):
                r = await api.get(f"/v1/streams/y/{path}")
                assert r.status_code == 200, (path, r.text)


async def test_streams_are_listed_a_page_at_a_time_and_idle_ones_expire(redis_settings):
    import httpx

    from emostream.aggregator import create_app

    async with EventStore(redis_settings) as store:
        await store.add_events(
            [EmotionEventV1.model_validate_json(event(f"page-{i:03d}", 1)) for i in range(250)]
        )
        ancient = index_key(redis_settings.key_prefix, partition("ancient"))
        await store.redis.zadd(ancient, {"ancient": 1})  # idle for decades
        app = create_app(store)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as api:
            seen, cursor, pages = [], None, 0
            while True:
                params = {"limit": 40} | ({"cursor": cursor} if cursor else {})
                body = (await api.get("/v1/streams", params=params)).json()
                seen += [s["stream_id"] for s in body["streams"]]
                pages += 1
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            assert sorted(seen) == [f"page-{i:03d}" for i in range(250)] and pages == 7
            assert (await api.get("/v1/streams", params={"limit": 1001})).status_code == 422
    async with EventStore(redis_settings) as store:  # a new writer trims on its first write
        await store.add_events([EmotionEventV1.model_validate_json(event("later", 1))])
        assert await store.redis.zscore(ancient, "ancient") is None


async def test_events_stored_by_a_call_that_failed_are_new_to_its_retry(
    redis_settings, monkeypatch
):
    """Streams stored before a later step failed (a replica's WAIT, another node): the retry of
    the batch stores nothing twice, yet returns those events as new, so rules and feeds see them."""
    events = [
        EmotionEventV1.model_validate_json(event(sid, seq))
        for sid in ("m", "n")
        for seq in range(4)
    ]
    async with EventStore(redis_settings) as store:
        real = store._run_scripts

        async def stored_then_failed(calls):
            monkeypatch.setattr(store, "_run_scripts", real)
            await real(calls)
            raise OSError("the connection dropped after the scripts ran")

        monkeypatch.setattr(store, "_run_scripts", stored_then_failed)
        with pytest.raises(OSError):
            await store.add_new_events(events)
        assert len(await store.add_new_events(events)) == 8
        assert await store.add_new_events(events) == []
        for sid in ("m", "n"):
            assert (await store.stream_state(sid))["events_total"] == 4
