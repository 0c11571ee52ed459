"""Capture times clamped to a small skew ahead of the clock (issue 33, 11): ingest's side and the
clamp itself; the aggregator's is ``tests/integration/test_capture_skew.py``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import cv2
import httpx
import numpy as np

from emostream.capture_clock import CLAMPED, clamp_capture_ms, clamp_captures
from emostream.config import IngestHttpOptions, IngestOptions
from emostream.frames import H_CAPTURED
from emostream.ingest.http_app import create_ingest_app
from emostream.ingest.http_publish import FramePublisher
from emostream.settings import KafkaOptions


class AckingProducer:
    def __init__(self) -> None:
        self.headers: list[dict] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic, value, key=None, headers=None):
        self.headers.append(dict(headers))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(SimpleNamespace(partition=0, offset=len(self.headers) - 1))
        return fut


def test_capture_times_past_the_skew_are_clamped_and_counted():
    before = CLAMPED.labels("test")._value.get()
    assert clamp_capture_ms(1_000, 5.0, "test", now_ms=1_000) == 1_000
    assert clamp_capture_ms(5_999, 5.0, "test", now_ms=1_000) == 5_999
    assert clamp_capture_ms(72_000_000, 5.0, "test", now_ms=1_000) == 6_000
    assert CLAMPED.labels("test")._value.get() == before + 1
    now = datetime.now(UTC)
    items = [
        SimpleNamespace(captured_at=now + timedelta(hours=20)),
        SimpleNamespace(captured_at=now),
    ]
    for item in items:
        item.model_copy = lambda update, item=item: SimpleNamespace(**(vars(item) | update))
    later, current = clamp_captures(items, 5.0, "test")
    assert current is items[1]
    assert now + timedelta(seconds=4) < later.captured_at <= now + timedelta(seconds=6)


async def test_ingest_clamps_client_capture_times():
    producer = AckingProducer()
    options = IngestOptions(http=IngestHttpOptions(port=1, max_capture_ahead_s=5.0))
    publisher = FramePublisher(
        KafkaOptions(), 8, producer=producer, max_capture_ahead_s=options.http.max_capture_ahead_s
    )
    jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 127, np.uint8))[1].tobytes()
    app = create_ingest_app(publisher, options)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        now_ms = int(time.time() * 1000)
        ahead = now_ms + 20 * 3600 * 1000
        for captured in (ahead, now_ms - 1000):
            r = await client.post(
                "/v1/streams/cam/frames", content=jpeg, params={"captured_ms": captured}
            )
            assert r.status_code == 202, r.text
    sent = [int(h[H_CAPTURED]) for h in producer.headers]
    assert now_ms + 4_000 <= sent[0] <= now_ms + 7_000, sent
    assert sent[1] == now_ms - 1000
