"""Frame size limits that agree end to end (issue 33, item 5): a real ingest process on the real
broker takes a frame as large as one Kafka record holds, over POST and WebSocket, and refuses a
larger one before reading it: 413 over HTTP, close code 1009 (and a log line) over WebSocket."""

from __future__ import annotations

import cv2
import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from emostream.ingest.http_frames import RECORD_OVERHEAD_BYTES
from emostream.kafka.clients import ensure_topics
from tests.integration.ingest_process import ingest_process, read_topic

pytestmark = pytest.mark.slow


def padded_jpeg(size: int) -> bytes:
    """A decodable JPEG of exactly ``size`` bytes (zeros after its end marker)."""
    data = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()
    return data + bytes(size - len(data))


async def test_frames_up_to_one_kafka_record_pass_larger_are_refused(kafka_settings, tmp_path):
    await ensure_topics(kafka_settings)
    limit = kafka_settings.max_message_bytes - RECORD_OVERHEAD_BYTES
    at_limit, over = padded_jpeg(limit), padded_jpeg(1_760_000)  # a 1.76 MB frame got 500
    with ingest_process(kafka_settings, tmp_path) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            path = "/v1/streams/big-cam/frames"
            refused = await client.post(path, content=over)
            assert refused.status_code == 413, refused.text
            assert str(limit) in refused.json()["detail"]

            async def chunks():
                for i in range(0, len(over), 65536):
                    yield over[i : i + 65536]

            assert (await client.post(path, content=chunks())).status_code == 413
            assert (await client.post(path, content=at_limit)).status_code == 202
        ws_url = url.replace("http://", "ws://") + "/v1/streams/big-cam/ingest"
        async with connect(ws_url, max_size=None) as ws:
            await ws.send(at_limit)
            on_topic = await read_topic(
                kafka_settings.bootstrap_servers, kafka_settings.frames_topic, 2
            )
            assert [len(r.value) for r in on_topic] == [limit, limit]
        async with connect(ws_url, max_size=None) as ws:
            await ws.send(over)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    log = (tmp_path / "ingest.log").read_text()
    assert "websocket frame too big" in log
