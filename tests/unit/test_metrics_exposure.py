"""What ``/metrics`` shows and where (issue 33, 10): no stream ids by default, bounded per-stream
labels when enabled (idle streams leave), and the aggregator's endpoint on the API port, behind a
key, or on a port of its own."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import cv2
import httpx
import numpy as np
from prometheus_client import CollectorRegistry, Counter, generate_latest
from pydantic import SecretStr

from emostream import metrics
from emostream.aggregator import create_app
from emostream.aggregator.api.metrics_endpoint import metrics_server
from emostream.aggregator.state.store import EventStore
from emostream.config import IngestHttpOptions, IngestOptions
from emostream.ingest.http_app import create_ingest_app
from emostream.ingest.http_publish import FramePublisher
from emostream.local.servers import free_port
from emostream.metrics import StreamLabels
from emostream.metrics_options import ApiMetricsOptions
from emostream.settings import KafkaOptions, RedisOptions

KEY = "metrics-read-key-0123"


class AckingProducer:
    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic, value, key=None, headers=None):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(SimpleNamespace(partition=0, offset=0))
        return fut


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


async def test_ingested_streams_do_not_appear_in_the_apis_metrics():
    publisher = FramePublisher(KafkaOptions(), 64, producer=AckingProducer())
    ingest = create_ingest_app(publisher, IngestOptions(http=IngestHttpOptions(port=1)))
    jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 127, np.uint8))[1].tobytes()
    async with client(ingest) as c:
        for i in range(50):
            r = await c.post(f"/v1/streams/secret-cam-{i}/frames", content=jpeg)
            assert r.status_code == 202, r.text
        await asyncio.sleep(0)  # acknowledgement callbacks
    for i in range(10_000):  # as many streams again through the counters' own path
        metrics.count_frame_sent(f"other-cam-{i}")
    async with client(create_app(EventStore(RedisOptions()))) as api:
        scrape = await api.get("/metrics/")
    assert scrape.status_code == 200
    assert "secret-cam" not in scrape.text and "other-cam" not in scrape.text
    assert 'emostream_frames_sent_total{stream_id="all"}' in scrape.text
    assert len(scrape.content) < 100_000, len(scrape.content)


def test_per_stream_labels_when_enabled_are_bounded_and_idle_streams_leave():
    registry, now = CollectorRegistry(), [0.0]
    sent = Counter("t_sent_total", "t", ["stream_id"], registry=registry)
    dropped = Counter("t_dropped_total", "t", ["stream_id", "reason"], registry=registry)
    labels = StreamLabels(clock=lambda: now[0])
    labels.configure(max_streams=3, idle_s=60)
    for i in range(10_000):
        labels.inc(sent, f"cam-{i}")
    labels.inc(dropped, "cam-1", "behind")
    text = generate_latest(registry).decode()
    assert {f'stream_id="cam-{i}"' in text for i in range(3)} == {True}
    assert 'stream_id="cam-3"' not in text
    assert 't_sent_total{stream_id="other"} 9997.0' in text
    now[0] = 30.0
    labels.inc(sent, "cam-0")  # cam-0 stays active
    now[0] = 70.0
    labels.inc(sent, "cam-9")  # cam-1 and cam-2 went idle: their sets leave, cam-9 gets one
    text = generate_latest(registry).decode()
    assert 'stream_id="cam-0"' in text and 'stream_id="cam-9"' in text
    assert 'stream_id="cam-1"' not in text and 'stream_id="cam-2"' not in text
    assert len(generate_latest(registry)) < 5_000


async def test_metrics_on_the_api_port_behind_a_key_or_apart():
    keys = [SecretStr(KEY)]
    keyed = create_app(
        EventStore(RedisOptions()), read_keys=keys, metrics=ApiMetricsOptions(needs_key=True)
    )
    async with client(keyed) as c:
        assert (await c.get("/metrics/")).status_code == 401
        assert (
            await c.get("/metrics/", headers={"X-API-Key": "wrong-key-0123"})
        ).status_code == 401
        assert (await c.get("/metrics/", headers={"X-API-Key": KEY})).status_code == 200
        bearer = await c.get("/metrics/", headers={"Authorization": f"Bearer {KEY}"})
        assert bearer.status_code == 200 and "emostream_" in bearer.text
    open_by_default = create_app(EventStore(RedisOptions()), read_keys=keys)
    async with client(open_by_default) as c:
        assert (await c.get("/metrics/")).status_code == 200
    port = free_port()
    apart = ApiMetricsOptions(port=port)
    async with client(create_app(EventStore(RedisOptions()), metrics=apart)) as c:
        assert (await c.get("/metrics/")).status_code == 404
    consumer = SimpleNamespace(redis_ok=True, assigned=True)
    async with (
        metrics_server(apart, consumer),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as own,
    ):
        r = await own.get("/metrics")
        assert r.status_code == 200 and "emostream_" in r.text
        assert (await own.get("/readyz")).status_code == 200
