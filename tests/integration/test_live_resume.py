"""SSE resume (issue 36, 5) against a real uvicorn server and Redis: every record has an ``id:``,
a client reconnecting with ``Last-Event-ID`` first gets what it missed, an id the replica cannot
serve is an ``event: gap``; SSE ``data`` is exactly the WebSocket message."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets

from emostream.aggregator import create_app
from emostream.aggregator.state.store import EventStore
from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.schemas import EmotionEventV1
from tests.integration.test_aggregator_faults import event


async def records(response: httpx.Response):
    """SSE records as dicts of their fields (comments skipped)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def store_seqs(store: EventStore, stream: str, seqs) -> None:
    await store.add_events([EmotionEventV1.model_validate_json(event(stream, s)) for s in seqs])


async def read_n(response: httpx.Response, n: int) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    async with asyncio.timeout(5):
        async for rec in records(response):
            if "retry" in rec and "data" not in rec:
                continue
            out.append(rec)
            if len(out) == n:
                return out
    return out


async def test_an_sse_client_resumes_with_last_event_id_without_a_gap(redis_settings):
    port = free_port()
    async with EventStore(redis_settings) as store:
        app = create_app(store)
        async with (
            ApiServer(app, "127.0.0.1", port),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
        ):
            params = {"stream_id": "lobby"}
            async with http.stream("GET", "/v1/live/sse", params=params) as sse:
                await asyncio.sleep(0.3)  # subscribed
                await store_seqs(store, "lobby", [1, 2])
                first = await read_n(sse, 2)
            # Disconnected: what is stored now is missed, unless the client resumes.
            await store_seqs(store, "lobby", [3, 4, 5])
            await store_seqs(store, "other", [1])  # not this client's stream
            await asyncio.sleep(0.3)
            resume = {"Last-Event-ID": first[-1]["id"]}
            async with http.stream("GET", "/v1/live/sse", params=params, headers=resume) as sse:
                await asyncio.sleep(0.3)
                await store_seqs(store, "lobby", [6])
                again = await read_n(sse, 4)
            bogus = {"Last-Event-ID": "0000-1"}
            async with http.stream("GET", "/v1/live/sse", params=params, headers=bogus) as sse:
                (gap,) = await read_n(sse, 1)
        await app.state.live_hub.stop()
    assert [json.loads(r["data"])["frame_seq"] for r in first] == [1, 2]
    assert all(r["event"] == "emotion" and r["id"] for r in first + again)
    assert [json.loads(r["data"])["frame_seq"] for r in again] == [3, 4, 5, 6]  # none missed
    ids = [r["id"] for r in first + again]
    assert len(set(ids)) == len(ids)
    assert gap["event"] == "gap" and "replay window" in json.loads(gap["data"])["detail"]


async def test_sse_data_is_the_websocket_message(redis_settings):
    port = free_port()
    async with EventStore(redis_settings) as store:
        app = create_app(store)
        async with (
            ApiServer(app, "127.0.0.1", port),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
        ):
            query = "stream_id=hall&kind=event"
            async with (
                websockets.connect(f"ws://127.0.0.1:{port}/v1/live?{query}") as ws,
                http.stream("GET", f"/v1/live/sse?{query}") as sse,
            ):
                await asyncio.sleep(0.3)
                await store_seqs(store, "hall", [9])
                ws_text = await asyncio.wait_for(ws.recv(), 5)
                (rec,) = await read_n(sse, 1)
        await app.state.live_hub.stop()
    assert rec["data"] == ws_text
    assert json.loads(ws_text)["type"] == "event" and json.loads(ws_text)["data"]["frame_seq"] == 9
