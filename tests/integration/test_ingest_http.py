"""Frames over HTTP through the real broker, worker and Redis: POST and WebSocket become events.

Also: a bad key is 401, refused bodies lose nothing else, and with a stalled producer the
server answers 429 / drops the oldest while its memory stays bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from contextlib import AsyncExitStack

import cv2
import httpx
from pydantic import SecretStr
from websockets.asyncio.client import connect

from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions, IngestHttpOptions, IngestOptions, WorkerOptions
from emostream.inference import EmotionEngine
from emostream.ingest.http_app import create_ingest_app
from emostream.ingest.http_publish import FramePublisher
from emostream.ingest.sources import sample_frames
from emostream.kafka.clients import ensure_topics, make_producer
from emostream.models import untrained_model
from emostream.runtime.lifecycle import ApiServer
from emostream.vision.detector import HaarDetector
from emostream.worker import FrameProcessor, Worker
from tests.waiting import wait_until

KEY = "ingest-key-0123456789"
N_FRAMES = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frames() -> list[bytes]:
    return [cv2.imencode(".jpg", f)[1].tobytes() for f in itertools.islice(sample_frames(60), 6)]


class StalledProducer:
    """A real producer (started, connected) whose sends are never acknowledged."""

    def __init__(self, kafka) -> None:
        self.real = make_producer(kafka, "stalled")
        self.sends = 0

    async def start(self) -> None:
        await self.real.start()

    async def stop(self) -> None:
        await self.real.stop()

    async def send(self, topic, value, key=None, headers=None):
        self.sends += 1
        return asyncio.get_running_loop().create_future()


async def serve(stack: AsyncExitStack, kafka, producer=None, **http) -> tuple[str, FramePublisher]:
    opts = IngestOptions(
        http=IngestHttpOptions(port=free_port(), **http), api_keys=[SecretStr(KEY)]
    )
    publisher = FramePublisher(kafka, opts.http.max_in_flight_frames, 1, producer)
    await stack.enter_async_context(publisher)
    app = create_ingest_app(publisher, opts)
    await stack.enter_async_context(ApiServer(app, "127.0.0.1", opts.http.port))
    return f"127.0.0.1:{opts.http.port}", publisher


async def test_http_and_websocket_frames_become_events(kafka_settings, redis_settings, group_id):
    await ensure_topics(kafka_settings)
    processor = FrameProcessor(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))
    jpegs = frames()
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(EventStore(redis_settings))
        consumer = await stack.enter_async_context(
            EventConsumer(kafka_settings, AggregatorOptions(group_id=group_id("agg")), store)
        )
        worker = await stack.enter_async_context(
            Worker(
                kafka_settings,
                WorkerOptions(group_id=group_id("worker"), max_batch_frames=4, track_min_hits=1),
                processor,
            )
        )
        tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(worker.run())]
        host, publisher = await serve(stack, kafka_settings, max_frame_bytes=200_000)
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as client:
            path = "/v1/streams/http-cam/frames"
            assert (await client.post(path, content=jpegs[0])).status_code == 401
            bad = await client.post(path, content=jpegs[0], headers={"X-API-Key": "x" * 20})
            assert bad.status_code == 401
            auth = {"X-API-Key": KEY}
            refused = [
                await client.post(path, content=b"\xff\xd8" + b"\x00" * 300_000, headers=auth),
                await client.post(path, content=jpegs[0][:300] + b"\x00" * 100, headers=auth),
                await client.post(path, content=b"<html>not a frame</html>", headers=auth),
            ]
            assert [r.status_code for r in refused] == [413, 422, 415]
            assert all(r.json()["detail"] for r in refused)
            for seq, body in enumerate(jpegs):
                r = await client.post(
                    path, content=body, headers={**auth, "X-Emostream-Seq": str(seq)}
                )
                assert r.status_code == 202, r.text
        async with connect(f"ws://{host}/v1/streams/ws-cam/ingest") as ws:
            await ws.send(json.dumps({"api_key": KEY}))
            for body in jpegs:
                await ws.send(body)
            await wait_until(lambda: publisher.sent >= 2 * N_FRAMES, 30, "ws frames acknowledged")

        api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(store, consumer=consumer)),
            base_url="http://api",
        )
        stack.push_async_callback(api.aclose)

        async def events(stream: str):
            r = await api.get(f"/v1/streams/{stream}/events", params={"limit": 100})
            found = r.json()["events"] if r.status_code == 200 else []
            seqs = {e["frame_seq"] for e in found}
            return found if seqs == set(range(N_FRAMES)) else None

        for stream in ("http-cam", "ws-cam"):
            stored = await wait_until(lambda s=stream: events(s), 90, f"events of {stream}")
            assert all(e["stream_id"] == stream for e in stored)
        assert publisher.failed == 0 and worker.dead_letters == 0
        for c in (consumer, worker):
            c.request_stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)


async def test_stalled_producer_429_and_bounded_drops(kafka_settings):
    max_in_flight = 4
    await ensure_topics(kafka_settings)
    jpeg = frames()[0]
    async with AsyncExitStack() as stack:
        producer = StalledProducer(kafka_settings)
        host, publisher = await serve(
            stack,
            kafka_settings,
            producer,
            max_in_flight_frames=max_in_flight,
            ws_queue_frames=3,
            ack_timeout_s=0.2,
        )
        auth = {"X-API-Key": KEY}
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as client:
            path = "/v1/streams/stalled/frames"
            first = [await client.post(path, content=jpeg, headers=auth) for _ in range(4)]
            assert [r.status_code for r in first] == [504] * 4
            for _ in range(50):
                r = await client.post(path, content=jpeg, headers=auth)
                assert r.status_code == 429 and r.headers["retry-after"] == "1"
            metrics = (await client.get("/metrics/")).text
        assert 'emostream_ingest_http_frames_total{outcome="busy"}' in metrics
        assert producer.sends == max_in_flight == publisher.in_flight
        async with connect(
            f"ws://{host}/v1/streams/stalled-ws/ingest", additional_headers=auth
        ) as ws:
            for _ in range(200):
                await ws.send(jpeg)
            total = 0
            while total < 200 - 3 - 1:  # queue of 3 (+1 in hand): every other frame dropped
                doc = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert doc["type"] == "dropped"
                total = doc["total"]
        # Memory stays bounded: nothing more was handed to the producer than its bound.
        assert producer.sends == max_in_flight == publisher.in_flight
