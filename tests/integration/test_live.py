"""Live push over WebSocket and SSE from a real uvicorn server and Redis pub/sub."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets
from pydantic import SecretStr

from emostream.aggregator import create_app
from emostream.aggregator.state.store import EventStore
from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.schemas import EmotionEventV1
from tests.integration.test_aggregator_faults import event


async def test_websocket_and_sse_push(redis_settings):
    port = free_port()
    async with EventStore(redis_settings) as store:
        app = create_app(store, read_keys=[SecretStr("rk")])
        async with ApiServer(app, "127.0.0.1", port):
            base = f"ws://127.0.0.1:{port}/v1/live"
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                async with websockets.connect(f"{base}?api_key=wrong") as ws:
                    await ws.recv()
            assert info.value.rcvd.code == 4401

            async with (
                websockets.connect(
                    f"{base}?stream_id=lobby", additional_headers={"X-API-Key": "rk"}
                ) as ws,
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": "rk"}
                ) as http,
            ):
                async with http.stream("GET", "/v1/live/sse", params={"stream_id": "lobby"}) as sse:
                    lines = sse.aiter_lines()
                    assert (await anext(lines)).startswith(": connected")
                    await asyncio.sleep(0.3)  # subscriptions established
                    await store.add_events([EmotionEventV1.model_validate_json(event("other", 1))])
                    t0 = time.monotonic()
                    await store.add_events([EmotionEventV1.model_validate_json(event("lobby", 7))])
                    msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=1.0))
                    ws_latency = time.monotonic() - t0
                    data = None
                    async with asyncio.timeout(2):
                        async for line in lines:
                            if line.startswith("data: "):
                                data = json.loads(line[6:])
                                break
        await app.state.live_hub.stop()  # it lingers for resumes (live.replay)
    assert msg["stream_id"] == "lobby" and msg["frame_seq"] == 7  # the 'other' stream filtered out
    assert ws_latency < 1.0
    assert data["stream_id"] == "lobby" and data["frame_seq"] == 7
