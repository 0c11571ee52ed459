"""Frames over HTTP at unit level: the app with a fake (or stalled) producer, no broker."""

from __future__ import annotations

import asyncio
import json
import socket
from contextlib import AsyncExitStack
from types import SimpleNamespace

import cv2
import httpx
import numpy as np
import pytest
from pydantic import SecretStr
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from emostream.config import IngestHttpOptions, IngestOptions
from emostream.errors import ConfigError
from emostream.frames import H_CONTENT, H_LIVE, H_RUN, H_SEQ, H_STREAM
from emostream.ingest.http_app import create_ingest_app
from emostream.ingest.http_publish import FramePublisher
from emostream.runtime.api_keys import check_bind, key_allowed, key_matches
from emostream.runtime.lifecycle import ApiServer
from emostream.runtime.origin_check import BrowserChecks
from emostream.settings import KafkaOptions

KEY = "ingest-key-0123456789"


class FakeProducer:
    """Acknowledges every send at once, or (``stalled``) never."""

    def __init__(self, stalled: bool = False) -> None:
        self.stalled = stalled
        self.sent: list[SimpleNamespace] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic, value, key=None, headers=None):
        fut = asyncio.get_running_loop().create_future()
        self.sent.append(SimpleNamespace(topic=topic, value=value, key=key, headers=dict(headers)))
        if not self.stalled:
            fut.set_result(SimpleNamespace(partition=0, offset=len(self.sent) - 1))
        return fut


def jpeg(w: int = 64, h: int = 48) -> bytes:
    return cv2.imencode(".jpg", np.full((h, w, 3), 127, np.uint8))[1].tobytes()


def png() -> bytes:
    return cv2.imencode(".png", np.zeros((20, 30, 3), np.uint8))[1].tobytes()


def options(**http) -> IngestOptions:
    keys = http.pop("keys", [])
    return IngestOptions(http=IngestHttpOptions(port=8001, **http), api_keys=keys)


def make(stalled: bool = False, **http):
    producer = FakeProducer(stalled)
    opts = options(**http)
    publisher = FramePublisher(
        KafkaOptions(), opts.http.max_in_flight_frames, opts.http.retry_after_s, producer
    )
    return producer, publisher, create_ingest_app(publisher, opts)


@pytest.fixture
async def http():
    async def build(stalled: bool = False, **opts):
        producer, publisher, app = make(stalled, **opts)
        await publisher.start()
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")
        clients.append(client)
        return producer, publisher, client

    clients: list[httpx.AsyncClient] = []
    yield build
    for c in clients:
        await c.aclose()


async def test_post_publishes_like_any_source(http):
    producer, publisher, client = await http()
    r = await client.post(
        "/v1/streams/cam-1/frames",
        content=jpeg(),
        headers={"X-Emostream-Seq": "7", "X-Emostream-Captured-Ms": "1700000000000"},
    )
    assert r.status_code == 202, r.text
    assert r.json() == {
        "stream_id": "cam-1",
        "seq": 7,
        "captured_ms": 1700000000000,
        "partition": 0,
        "offset": 0,
    }
    (sent,) = producer.sent
    assert sent.key == b"cam-1" and sent.value == jpeg()
    assert sent.headers[H_STREAM] == b"cam-1" and sent.headers[H_SEQ] == b"7"
    assert sent.headers[H_CONTENT] == b"image/jpeg" and sent.headers[H_LIVE] == b"1"
    # the stream's own run within the publisher's: a forgotten counter never repeats an id
    assert sent.headers[H_RUN].startswith(publisher.run_id.encode() + b"-")


async def test_png_query_params_and_default_seq(http):
    producer, _, client = await http()
    r = await client.post("/v1/streams/cam-1/frames?live=false&captured_ms=5", content=png())
    assert r.status_code == 202 and r.json()["seq"] == 0
    r = await client.post("/v1/streams/cam-1/frames", content=png())
    assert r.json()["seq"] == 1
    assert producer.sent[0].headers[H_CONTENT] == b"image/png"
    assert producer.sent[0].headers[H_LIVE] == b"0"


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"x" * 5000, {}, 413, "exceeds"),
        (b"hello, not an image", {}, 415, "not JPEG or PNG"),
        (b"", {}, 422, "empty"),
        (jpeg()[:200] + b"\x00" * 50, {}, 422, "decodable"),
        (b"\xff\xd8\xff\xc0\x00\x11\x08\x40\x00\x40\x00" + b"\x00" * 30, {}, 413, "limits"),
        (jpeg(), {"X-Emostream-Seq": "-1"}, 422, "seq"),
        (jpeg(), {"X-Emostream-Captured-Ms": "soon"}, 422, "captured_ms"),
        (jpeg(), {"X-Emostream-Run": "no spaces"}, 422, "run"),
    ],
)
async def test_refused_at_the_door(http, body, headers, status, words):
    producer, _, client = await http(max_frame_bytes=4096)
    r = await client.post("/v1/streams/cam-1/frames", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert producer.sent == []
    ok = await client.post("/v1/streams/cam-1/frames", content=jpeg())  # nothing else is lost
    assert ok.status_code == 202 and len(producer.sent) == 1


async def test_bad_stream_id_is_422(http):
    _, _, client = await http()
    r = await client.post("/v1/streams/bad%20id/frames", content=jpeg())
    assert r.status_code == 422


async def test_write_keys(http):
    producer, _, client = await http(keys=[SecretStr(KEY)])
    path = "/v1/streams/cam-1/frames"
    assert (await client.post(path, content=jpeg())).status_code == 401
    r = await client.post(path, content=jpeg(), headers={"X-API-Key": "wrong-key-0123456"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "ApiKey"
    assert producer.sent == []
    r = await client.post(path, content=jpeg(), headers={"X-API-Key": KEY})
    assert r.status_code == 202


async def test_stalled_producer_answers_429_and_stays_bounded(http):
    producer, publisher, client = await http(
        stalled=True, max_in_flight_frames=3, ack_timeout_s=0.05, retry_after_s=2
    )
    path = "/v1/streams/cam-1/frames"
    statuses = [(await client.post(path, content=jpeg())).status_code for _ in range(3)]
    assert statuses == [504, 504, 504]  # taken, never acknowledged
    for _ in range(20):
        r = await client.post(path, content=jpeg())
        assert r.status_code == 429
        assert r.headers["retry-after"] == "2"
    assert len(producer.sent) == 3 and publisher.in_flight == 3
    metrics = (await client.get("/metrics/")).text
    assert 'emostream_ingest_http_frames_total{outcome="busy"}' in metrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served():
    """A real server on loopback for WebSocket tests: ``(producer, publisher, ws_url)``."""
    stack = AsyncExitStack()

    async def build(stalled: bool = False, **opts):
        producer, publisher, app = make(stalled, **opts)
        await stack.enter_async_context(publisher)
        port = free_port()
        await stack.enter_async_context(ApiServer(app, "127.0.0.1", port))
        return producer, publisher, f"ws://127.0.0.1:{port}/v1/streams/cam-1/ingest"

    async with stack:
        yield build


async def test_websocket_drops_oldest_and_reports(served, monkeypatch):
    monkeypatch.setattr("emostream.ingest.http_ws.REPORT_EVERY_S", 0.05)
    producer, publisher, url = await served(stalled=True, max_in_flight_frames=2, ws_queue_frames=4)
    async with connect(url) as ws:
        for _ in range(30):
            await ws.send(jpeg())
        total = counted = 0
        # 2 in flight and at most 4 queued (fewer when the reader ran ahead of the publisher):
        # every other frame is dropped, oldest first, and reported.
        while total < 24:
            doc = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert doc["type"] == "dropped"
            counted += doc["count"]
            total = doc["total"]
        assert counted == total and 24 <= total <= 26
    # The drop reports can outrun the second hand-over to the stalled producer on a busy CPU.
    for _ in range(100):
        if len(producer.sent) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(producer.sent) == 2 and publisher.in_flight == 2


async def test_websocket_frames_and_refusals(served):
    producer, publisher, url = await served()
    async with connect(url) as ws:
        await ws.send('{"seq": 41, "captured_ms": 1700000000000}')
        await ws.send(jpeg())
        await ws.send(b"GIF89a not allowed")
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {
            "type": "refused",
            "seq": 42,
            "status": 415,
            "detail": "payload starting b'GIF89a n' is not JPEG or PNG",
        }
        await ws.send("[1]")
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["status"] == 422
    assert [s.headers[H_SEQ] for s in producer.sent] == [b"41"]
    run = producer.sent[0].headers[H_RUN]
    assert run != publisher.run_id.encode()  # per connection: seq restarts, ids must not collide


async def test_websocket_needs_a_write_key(served):
    producer, _, url = await served(keys=[SecretStr(KEY)])
    async with connect(url) as ws:
        await ws.send('{"api_key": "wrong-key-0123456"}')
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd.code == 4401
    async with connect(url, additional_headers={"X-API-Key": KEY}) as ws:
        await ws.send(jpeg())
        await ws.send("[]")  # answered: so the key was accepted and the session runs
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "refused"
        for _ in range(100):  # the frame is decoded (checked) off the event loop
            if producer.sent:
                break
            await asyncio.sleep(0.05)
    assert len(producer.sent) == 1


async def test_cross_site_websocket_refused(served):
    _, _, url = await served()
    with pytest.raises(InvalidStatus):
        async with connect(url, origin="http://evil.example"):
            pass


async def test_capture_page_policy(http):
    _, _, client = await http(aggregator_url="http://127.0.0.1:8000")
    page = await client.get("/capture")
    assert page.status_code == 200 and '<script src="/capture.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp
    assert "connect-src 'self' http://127.0.0.1:8000 ws://127.0.0.1:8000" in csp
    script = await client.get("/capture.js")
    assert script.status_code == 200 and "textContent" in script.text
    assert "innerHTML" not in script.text and "http://" not in script.text
    assert (await client.get("/capture/config.json")).json() == {
        "aggregator_url": "http://127.0.0.1:8000"
    }


def test_key_matching_and_bind_rule():
    keys = [SecretStr(KEY)]
    assert key_matches(KEY, keys) and not key_matches("", [SecretStr("")])
    assert not key_matches(None, keys) and not key_matches(KEY + "x", keys)
    assert key_allowed(None, []) and not key_allowed(None, keys)
    check_bind("127.0.0.1", [], "ingest HTTP", "EMOSTREAM_INGEST__API_KEYS")
    check_bind("0.0.0.0", keys, "ingest HTTP", "EMOSTREAM_INGEST__API_KEYS")
    with pytest.raises(ConfigError, match="EMOSTREAM_INGEST__API_KEYS"):
        check_bind("0.0.0.0", [], "ingest HTTP", "EMOSTREAM_INGEST__API_KEYS")


async def test_aggregator_allows_listed_browser_origins():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    checks = BrowserChecks(app, False, allowed_origins=["http://127.0.0.1:8001/"])

    async def run(origin: str) -> list:
        sent: list = []
        headers = [(b"host", b"127.0.0.1:8000"), (b"origin", origin.encode())]

        async def send(msg):
            sent.append(msg)

        await checks({"type": "websocket", "headers": headers}, None, send)
        return sent

    assert await run("http://127.0.0.1:8001") == [] and seen == ["websocket"]
    assert (await run("http://127.0.0.1:8002"))[0]["code"] == 1008
