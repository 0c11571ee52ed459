"""Many live viewers against a real aggregator: storage, the API and health are unaffected.

Before, each WebSocket/SSE client held a pub/sub connection from the one Redis pool (100) that
also stored events: about a hundred viewers stopped storage and turned /v1/* and /healthz 503.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from aiokafka import AIOKafkaProducer

from emostream.aggregator import create_app
from emostream.aggregator.state.store import EventStore
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.schemas import EmotionEventV1
from tests.integration.aggregator_process import aggregator_process
from tests.integration.test_aggregator_faults import event

pytestmark = pytest.mark.slow
VIEWERS = 150  # over the 100 connections of a default redis-py pool


async def first_event(lines) -> dict:
    async for line in lines:
        if line.startswith("data: "):
            return json.loads(line[6:])
    raise AssertionError("stream ended")


@pytest.mark.timeout(240)
async def test_many_viewers_do_not_stop_storage_or_the_api(
    kafka_settings, redis_settings, tmp_path
):
    await ensure_topics(kafka_settings)
    port = free_port()
    proc = aggregator_process(
        kafka_settings,
        redis_settings,
        port,
        tmp_path,
        EMOSTREAM_API__MAX_LIVE_CLIENTS=str(VIEWERS + 10),
    ).start(port)
    limits = httpx.Limits(max_connections=VIEWERS + 20)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
        ) as http:
            streams = [http.stream("GET", "/v1/live/sse") for _ in range(VIEWERS)]
            responses = [await s.__aenter__() for s in streams]
            try:
                assert {r.status_code for r in responses} == {200}
                lines = [r.aiter_lines() for r in responses]
                for it in lines:
                    assert (await anext(it)).startswith(": connected")
                producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
                await producer.start()
                try:
                    await producer.send_and_wait(
                        kafka_settings.events_topic, event("crowd", 1), key=b"crowd"
                    )
                finally:
                    await producer.stop()
                got = await asyncio.wait_for(asyncio.gather(*(first_event(it) for it in lines)), 60)
                assert {e["frame_seq"] for e in got} == {1} and len(got) == VIEWERS
                health = await http.get("/healthz")
                listed = await http.get("/v1/streams")
                assert health.status_code == 200 and listed.status_code == 200
                assert listed.json()["streams"][0]["events_total"] == 1
            finally:
                for s in streams:
                    await s.__aexit__(None, None, None)
        assert proc.running
    finally:
        proc.stop()


async def test_live_clients_over_the_cap_are_refused_clearly(redis_settings):
    port = free_port()
    async with EventStore(redis_settings) as store:
        app = create_app(store, max_live_clients=2)
        async with ApiServer(app, "127.0.0.1", port):
            base = f"ws://127.0.0.1:{port}/v1/live"
            async with websockets.connect(base) as one, websockets.connect(base):
                with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                    async with websockets.connect(base) as third:
                        await third.recv()
                assert info.value.rcvd.code == 1013 and "at most 2" in info.value.rcvd.reason
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    sse = await http.get("/v1/live/sse")
                assert sse.status_code == 503 and "at most 2" in sse.json()["detail"]
                await one.close()
                for _ in range(50):
                    if app.state.live_hub.clients < 2:
                        break
                    await asyncio.sleep(0.05)
                async with websockets.connect(base) as again:  # a freed place is taken again
                    await asyncio.sleep(0.2)
                    await store.add_events([EmotionEventV1.model_validate_json(event("x", 1))])
                    assert json.loads(await asyncio.wait_for(again.recv(), 5))["frame_seq"] == 1
        await app.state.live_hub.stop()
    assert app.state.live_hub.clients == 0


async def test_a_stalled_sse_reader_costs_a_bounded_queue(redis_settings):
    """A reader that never reads: the hub keeps at most max_queue of its events, dropping oldest."""
    from emostream.aggregator.live.hub import LiveHub

    async with EventStore(redis_settings) as store:
        hub = LiveHub(store.settings, max_clients=5, max_queue=10)
        client = await hub.join(None)
        try:
            await store.add_events(
                [EmotionEventV1.model_validate_json(event("slow", i)) for i in range(50)]
            )
            for _ in range(100):
                if client.dropped >= 40:
                    break
                await asyncio.sleep(0.05)
            assert client._queue.qsize() == 10 and client.dropped == 40
            assert json.loads(await client.next(1))["frame_seq"] == 40  # the oldest went first
        finally:
            await hub.leave(client)
        assert hub.clients == 0 and hub._redis is None


async def test_stalled_sse_readers_make_redis_buffer_nothing(redis_settings):
    """Three SSE clients that never read, against a real server, while 3,000 events are stored:
    Redis's output buffers stay empty (before: ~13 MB per stalled client)."""
    import socket

    port = free_port()
    async with EventStore(redis_settings) as store:
        app = create_app(store)
        async with ApiServer(app, "127.0.0.1", port):
            stalled = []
            for _ in range(3):
                s = socket.create_connection(("127.0.0.1", port))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(b"GET /v1/live/sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                stalled.append(s)  # and never read from again
            for _ in range(50):
                if app.state.live_hub.clients == 3:
                    break
                await asyncio.sleep(0.05)
            padding = "x" * 2000  # big events fill socket buffers quickly
            for batch in range(30):
                await store.add_events(
                    [
                        EmotionEventV1.model_validate_json(
                            event("stall", batch * 100 + i).replace(
                                b'"version":"1"', f'"version":"{padding}"'.encode()
                            )
                        )
                        for i in range(100)
                    ]
                )
            await asyncio.sleep(1.0)
            pubsub = [c for c in await store.redis.client_list(_type="pubsub")]
            hub_clients = list(app.state.live_hub._clients)
            for s in stalled:
                s.close()
        await app.state.live_hub.stop()
    assert len(pubsub) <= 1  # one subscription for the whole aggregator
    assert all(int(c["omem"]) < 1024 * 1024 for c in pubsub), pubsub
    assert len(hub_clients) == 3
    assert all(c._queue.qsize() <= 1000 for c in hub_clients)
    assert any(c.dropped > 0 for c in hub_clients)  # the oldest went, in the aggregator


async def test_the_live_subscription_survives_a_redis_restart():
    from pydantic import SecretStr

    from emostream.aggregator.live.hub import LiveHub
    from emostream.local.servers import RedisServer
    from emostream.settings import RedisOptions

    port = free_port()
    server = RedisServer().start(port)
    settings = RedisOptions(url=SecretStr(server.url), key_prefix="hub")
    try:
        hub = LiveHub(settings, max_clients=2)
        client = await hub.join(None)
        server.stop()
        await asyncio.sleep(1.5)  # the pump notices and retries with backoff
        server.start(port)
        async with EventStore(settings) as store:
            for _ in range(40):  # until the hub has resubscribed
                await store.add_events([EmotionEventV1.model_validate_json(event("back", 1))])
                doc = await client.next(0.25)
                if doc is not None:
                    break
                seen = "hub:stream:{back}:seen"  # the dedup markers: store it again
                await store.redis.zrem(seen, EmotionEventV1.make_id("back", 1, 0))
        assert doc is not None and json.loads(doc)["stream_id"] == "back"
        await hub.leave(client)
    finally:
        server.stop()


async def test_joining_while_redis_is_away_is_a_redis_error():
    """The API answers a RedisError with 503: a live client joining while Redis is down too."""
    from pydantic import SecretStr
    from redis.exceptions import RedisError

    from emostream.aggregator.live.hub import LiveHub
    from emostream.local.servers import free_port
    from emostream.settings import RedisOptions

    away = RedisOptions(url=SecretStr(f"redis://127.0.0.1:{free_port()}/0"), key_prefix="away")
    hub = LiveHub(away)
    try:
        with pytest.raises(RedisError):
            await hub.join(None)
    finally:
        await hub.stop()
