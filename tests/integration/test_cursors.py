"""Cursors (issue 36, 5) in real Redis: ``after=`` pages events, changes and alerts forward,
each item once, across ties and items added between pages; unknown query parameters are 422
(``?afer=`` used to return page one as if nothing was wrong)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emostream.aggregator import create_app
from emostream.aggregator.event_pages import cursor_of
from emostream.aggregator.feeds import FeedStore
from emostream.aggregator.state.store import EventStore
from tests.integration.test_stream_feeds import STREAM, alert, changed
from tests.synthetic import make_event

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


@pytest.fixture
async def api(redis_settings):
    async with EventStore(redis_settings) as store:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(store)), base_url="http://127.0.0.1"
        ) as http:
            yield store, http


async def forward(http: httpx.AsyncClient, path: str, key: str, after: str, limit: int):
    """Every page from ``after`` on: the items in order, the pages' count, the last cursor."""
    items: list[dict] = []
    pages = 0
    while True:
        resp = await http.get(path, params={"after": after, "limit": limit})
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        items += doc[key]
        pages += 1
        assert pages < 50
        if doc["next_cursor"] is None:
            return items, pages
        after = doc["next_cursor"]


async def test_changes_and_alerts_page_forward_each_item_once(api):
    store, http = api
    feeds = FeedStore(store.redis, store.key_prefix, store.retention)
    # Ties: three changes and two alerts share a capture (fire) time.
    events = [changed(t, "happy" if i % 2 else "sad", track=f"t{i}", seq=i, face=i)
              for i, t in enumerate([0, 1, 1, 1, 2, 3, 4])]  # fmt: skip
    await store.add_events(events)
    await feeds.add_changes(events)
    alerts = [alert(f"{i:032x}", t) for i, t in enumerate([0, 2, 2, 5])]
    await feeds.add_alerts(alerts)

    changes, pages = await forward(http, f"/v1/streams/{STREAM}/changes", "changes", "0:", 2)
    assert [c["event_id"] for c in changes] == [e.event_id for e in sorted(
        events, key=lambda e: (e.captured_at, e.event_id))]  # fmt: skip
    assert pages == 4
    got, _ = await forward(http, f"/v1/streams/{STREAM}/alerts", "alerts", "0:", 1)
    assert sorted(a["alert_id"] for a in got) == sorted(a.alert_id for a in alerts)
    assert len(got) == len(alerts)
    assert [a["fired_at"] for a in got] == sorted(a["fired_at"] for a in got)

    # Caught up: a poller keeps the last item's <ms>:<id>; only newer items come next.
    last = got[-1]
    ms = int(datetime.fromisoformat(last["fired_at"]).timestamp() * 1000)
    newer = alert("f" * 32, 6)
    await feeds.add_alerts([newer])
    more, _ = await forward(
        http, f"/v1/streams/{STREAM}/alerts", "alerts", f"{ms}:{last['alert_id']}", 5
    )
    assert [a["alert_id"] for a in more] == [newer.alert_id]


async def test_events_page_forward_each_event_once(api):
    store, http = api
    events = [make_event(i * 0.1, stream=STREAM, seq=i, base=BASE) for i in range(11)]
    await store.add_events(events[:7])
    path = f"/v1/streams/{STREAM}/events"
    first, pages = await forward(http, path, "events", "0:", 3)
    assert [e["frame_seq"] for e in first] == list(range(7)) and pages == 3
    await store.add_events(events[7:])
    rest, _ = await forward(http, path, "events", cursor_of(first[-1]), 3)
    assert [e["frame_seq"] for e in rest] == [7, 8, 9, 10]
    newest = (await http.get(path, params={"limit": 2})).json()
    assert [e["frame_seq"] for e in newest["events"]] == [10, 9]  # without after: as before
    assert newest["next_cursor"] is None


async def test_unknown_query_parameters_are_422(api):
    store, http = api
    await store.add_events([make_event(0, stream=STREAM, base=BASE)])
    for path in (
        f"/v1/streams/{STREAM}/events",
        f"/v1/streams/{STREAM}/changes",
        f"/v1/streams/{STREAM}/alerts",
        f"/v1/streams/{STREAM}/sessions",
        "/v1/streams",
        "/v1/rules",
    ):
        resp = await http.get(path, params={"afer": "0:"})
        assert resp.status_code == 422, (path, resp.status_code)
        assert resp.json()["detail"][0]["loc"] == ["query", "afer"], path
        known = {} if path == "/v1/rules" else {"limit": 1}
        assert (await http.get(path, params=known)).status_code == 200, path
    both = await http.get(f"/v1/streams/{STREAM}/changes", params={"after": "0:", "before": "9:"})
    assert both.status_code == 422
