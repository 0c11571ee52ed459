"""A stream's change and alert feeds in real Redis: what they store, how they page (newest first,
``before`` cursor, ties), their bounds, the API routes, and the typed live push."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emostream.aggregator import create_app
from emostream.aggregator.feeds import FeedStore
from emostream.aggregator.live.hub import LiveHub
from emostream.aggregator.live.wire import encode
from emostream.aggregator.rules.model import ProbabilityAboveSpec, new_rule
from emostream.aggregator.rules.store import RuleStore
from emostream.aggregator.state.store import EventStore
from emostream.config import RetentionOptions
from emostream.schemas import AlertSummary, AlertV1, LiveMessageV1, json_schemas
from tests.synthetic import make_event, probs_with

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
STREAM = "hall"


def changed(t_s: float, label: str, track: str = "t1", seq: int | None = None, face: int = 0):
    return make_event(
        t_s,
        stream=STREAM,
        seq=seq,
        track=track,
        label=label,
        smoothed={"label": label, "changed": True},
        face_index=face,
        base=BASE,
    )


def alert(rule_id: str, t_s: float, track: str = "t1") -> AlertV1:
    at = BASE + timedelta(seconds=t_s)
    return AlertV1(
        alert_id=AlertV1.make_id(rule_id, STREAM, track, int(at.timestamp() * 1000)),
        rule_id=rule_id,
        rule_name="sad",
        kind="probability_above",
        stream_id=STREAM,
        track_id=track,
        episode_started_at=at,
        fired_at=at,
        event_id="e" * 32,
        frame_seq=1,
        summary=AlertSummary(
            source="smoothed", label="sad", confidence=0.7, probabilities=probs_with("sad", 0.7)
        ),
    )


@pytest.fixture
async def store(redis_settings):
    async with EventStore(redis_settings, RetentionOptions(max_changes_per_stream=5)) as s:
        yield s


async def test_changes_know_what_they_changed_from_and_page_newest_first(store):
    feeds = FeedStore(store.redis, store.key_prefix, store.retention)
    events = [
        changed(0, "happy"),
        make_event(1, stream=STREAM, track="t1", label="happy", base=BASE),  # no change
        changed(2, "sad"),
        changed(2, "fear", track="t2", face=1, seq=20),  # a tie on capture time
        changed(4, "angry"),
    ]
    await store.add_events(events)
    out = await feeds.add_changes(events)
    assert [(c.track_id, c.from_label, c.to_label) for c in out] == [
        ("t1", None, "happy"),
        ("t1", "happy", "sad"),
        ("t2", None, "fear"),
        ("t1", "sad", "angry"),
    ]
    assert out[1].previous_held_s == 2.0 and out[3].previous_held_s == 2.0
    # A later batch continues from the stored stable label.
    [later] = await feeds.add_changes([changed(10, "neutral", seq=100)])
    assert later.from_label == "angry" and later.previous_held_s == 6.0

    first, cursor = await feeds.page(STREAM, "changes", 2)
    second, cursor2 = await feeds.page(STREAM, "changes", 2, cursor)
    third, end = await feeds.page(STREAM, "changes", 2, cursor2)
    got = [c["to_label"] for c in first + second + third]
    assert got[:2] == ["neutral", "angry"] and sorted(got[2:4]) == ["fear", "sad"]
    assert got[4:] == ["happy"] and end is None
    assert len({c["event_id"] for c in first + second + third}) == 5  # no repeat across the tie

    await feeds.add_changes([changed(20 + i, "happy", seq=200 + i * 10) for i in range(3)])
    kept, _ = await feeds.page(STREAM, "changes", 50)
    assert len(kept) == 5  # max_changes_per_stream, the newest kept
    assert await store.redis.ttl(f"{store.key_prefix}:stream:{{{STREAM}}}:changes") > 0


async def test_the_api_pages_changes_and_alerts_with_their_delivery(store):
    feeds = FeedStore(store.redis, store.key_prefix, store.retention)
    rules = RuleStore(store.redis, store.key_prefix, store.retention)
    spec = ProbabilityAboveSpec(
        kind="probability_above", name="sad", emotions=["sad"], threshold=0.5, for_seconds=1.0
    )
    rule = new_rule(spec)
    await rules.create(rule)
    events = [changed(0, "happy"), changed(3, "sad")]
    await store.add_events(events)
    await feeds.add_changes(events)
    sent, quiet = alert(rule.id, 3), alert(rule.id, 5)
    await feeds.add_alerts([sent, quiet])
    await rules.record_delivery(
        rule.id,
        {"alert_id": sent.alert_id, "attempts": 2, "status_code": 200, "delivered": True,
         "delivered_at": BASE.isoformat(), "url": "http://127.0.0.1:9/x", "error": None},
    )  # fmt: skip
    app = create_app(store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as http:
        changes = (await http.get(f"/v1/streams/{STREAM}/changes", params={"limit": 1})).json()
        rest = await http.get(
            f"/v1/streams/{STREAM}/changes", params={"before": changes["next_cursor"]}
        )
        alerts = (await http.get(f"/v1/streams/{STREAM}/alerts")).json()
        unknown = await http.get("/v1/streams/nope/alerts")
        bad = await http.get(f"/v1/streams/{STREAM}/changes", params={"before": "x"})
        schema = (await http.get("/openapi.json")).json()
    assert changes["count"] == 1 and changes["changes"][0]["to_label"] == "sad"
    assert [c["to_label"] for c in rest.json()["changes"]] == ["happy"]
    assert rest.json()["next_cursor"] is None
    assert [a["alert_id"] for a in alerts["alerts"]] == [quiet.alert_id, sent.alert_id]
    assert alerts["alerts"][1]["delivery"] == {
        "state": "delivered", "attempts": 2, "status_code": 200, "delivered_at": BASE.isoformat()
    }  # fmt: skip
    assert alerts["alerts"][0]["delivery"]["state"] == "none"  # the rule has no webhook
    assert unknown.status_code == 404 and bad.status_code == 422
    paths = schema["paths"]
    assert "/v1/streams/{stream_id}/changes" in paths and "/v1/streams/{stream_id}/alerts" in paths
    assert {"ChangesPage", "AlertsPage", "EmotionChangeV1"} <= set(schema["components"]["schemas"])


async def test_live_clients_get_typed_changes_and_alerts_only_when_they_ask(store):
    feeds = FeedStore(store.redis, store.key_prefix, store.retention)
    hub = LiveHub(store.settings)
    typed = await hub.join({STREAM}, {"event", "change", "alert"})
    plain = await hub.join(None)
    alerts_only = await hub.join(None, {"alert"})
    try:
        ev = changed(0, "happy")
        await store.add_events([ev])
        await feeds.add_changes([ev])
        await feeds.add_alerts([alert("0" * 32, 1)])
        got = [json.loads(await typed.next(2)) for _ in range(3)]
        plain_first = json.loads(await plain.next(2))
        plain_more = await plain.next(0.5)
        only = json.loads(await alerts_only.next(2))
        sse_kind, sse_doc = await _sse_item(hub, store)
    finally:
        await hub.stop()
    assert [m["type"] for m in got] == ["event", "change", "alert"]
    assert all(LiveMessageV1.model_validate(m).type == m["type"] for m in got)
    assert "LiveMessageV1" in json_schemas()  # emostream schema
    assert all(m["stream_id"] == STREAM for m in got)
    assert got[0]["data"]["event_id"] == ev.event_id and got[1]["data"]["to_label"] == "happy"
    assert plain_first["event_id"] == ev.event_id and plain_more is None  # the original format
    assert only["type"] == "alert" and only["data"]["rule_name"] == "sad"
    assert sse_kind == "change" and json.loads(sse_doc)["kind"] == "stable_change"


async def _sse_item(hub: LiveHub, store: EventStore) -> tuple[str, str]:
    """What an SSE client asking for changes reads (``next_item``: its kind and document)."""
    client = await hub.join(None, {"change"})
    try:
        doc = json.dumps({"kind": "stable_change"})
        await store.redis.publish(f"{store.key_prefix}:live", encode([("change", STREAM, doc)]))
        item = await client.next_item(2)
        assert item is not None
        return item
    finally:
        await hub.leave(client)
