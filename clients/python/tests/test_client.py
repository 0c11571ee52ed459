"""The API client against a scripted server (httpx.MockTransport): pages, errors, rules, live."""

import json

import httpx
import pytest
from emostream_client import ApiError, EmostreamClient, parse_sse
from tests_support import ALERT_JSON, CHANGE_JSON, EVENT_JSON


def client(handler) -> EmostreamClient:
    return EmostreamClient("http://agg", "read-key", transport=httpx.MockTransport(handler))


def test_changes_are_iterated_across_pages_with_the_cursor():
    seen = []
    change = json.loads(CHANGE_JSON)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        assert request.headers["X-API-Key"] == "read-key"
        before = request.url.params.get("before")
        pages = {None: (["c1", "c2"], "cur-1"), "cur-1": (["c3"], None)}
        ids, cursor = pages[before]
        items = [change | {"event_id": i} for i in ids]
        return httpx.Response(200, json={"changes": items, "next_cursor": cursor})

    with client(handler) as c:
        assert [ch.event_id for ch in c.changes("cam-1", page_size=2)] == ["c1", "c2", "c3"]
    assert seen == [{"limit": "2"}, {"limit": "2", "before": "cur-1"}]


def test_streams_follow_next_cursor_and_alerts_are_typed():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/streams":
            cursor = request.url.params.get("cursor")
            if cursor is None:
                return httpx.Response(
                    200, json={"streams": [{"stream_id": "a"}], "next_cursor": "x"}
                )
            return httpx.Response(200, json={"streams": [{"stream_id": "b"}], "next_cursor": None})
        alert = json.loads(ALERT_JSON) | {"delivery": {"status": "delivered"}}
        return httpx.Response(200, json={"alerts": [alert], "next_cursor": None})

    with client(handler) as c:
        assert [s["stream_id"] for s in c.streams()] == ["a", "b"]
        (alert,) = list(c.alerts("cam-1"))
        assert alert.rule_name == "upset"


def test_errors_carry_status_and_detail():
    handler = lambda r: httpx.Response(401, json={"detail": "missing or invalid API key"})  # noqa: E731
    with client(handler) as c, pytest.raises(ApiError) as err:
        c.events("cam-1")
    assert err.value.status_code == 401 and "API key" in err.value.detail


def test_create_rule_sends_the_idempotency_key():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Idempotency-Key"] == "k-1"
        return httpx.Response(201, json=json.loads(request.content) | {"id": "r1"})

    with client(handler) as c:
        assert c.create_rule({"kind": "stable_change", "name": "x"}, "k-1")["id"] == "r1"


def test_live_yields_typed_messages_and_remembers_the_last_id():
    stream = (
        ": connected\n\n"
        f"id: 1\nevent: emotion\ndata: {EVENT_JSON}\n\n"
        ": ping\n\n"
        f'id: 2\nevent: change\ndata: {{"type": "change", "stream_id": "cam-1", '
        f'"data": {CHANGE_JSON}}}\n\n'
        'event: future-kind\ndata: {"x": 1}\n\n'
        f"id: 3\nevent: alert\ndata: {ALERT_JSON}\n\n"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/live/sse"
        assert request.url.params.get_list("kind") == ["event", "change", "alert"]
        assert request.headers.get("Last-Event-ID") == "0"
        return httpx.Response(200, text=stream, headers={"content-type": "text/event-stream"})

    with client(handler) as c:
        messages = list(c.live("cam-1", last_event_id="0"))
        assert [m.type for m in messages] == ["event", "change", "alert"]
        assert messages[1].data.to_label == "angry" and c.last_event_id == "3"


def test_parse_sse_joins_multiline_data():
    lines = ["event: x", "data: a", "data: b", "", ": c", "id: 9", "data: z", ""]
    assert list(parse_sse(lines)) == [(None, "x", "a\nb"), ("9", "message", "z")]
