"""Frame identity over HTTP never repeats within an ingest run, however many streams it sees
(issue 33, item 1): a real ingest process and the real broker, identities read off the topic."""

from __future__ import annotations

import asyncio

import cv2
import httpx
import numpy as np
import pytest

from emostream.frames import parse_headers
from emostream.kafka.clients import ensure_topics
from emostream.schemas import EmotionEventV1
from tests.integration.ingest_process import ingest_process, read_topic

pytestmark = pytest.mark.slow
STREAM = "kept-cam"
OTHERS = 10_001  # one past the counters' bound: today's server forgot every counter here


async def post_all(client: httpx.AsyncClient, paths: list[str], body: bytes) -> None:
    queue = list(reversed(paths))

    async def poster() -> None:
        while queue:
            path = queue.pop()
            r = await client.post(path, content=body)
            assert r.status_code == 202, r.text

    await asyncio.gather(*(poster() for _ in range(16)))


async def test_identities_stay_distinct_past_ten_thousand_streams(kafka_settings, tmp_path):
    await ensure_topics(kafka_settings)
    body = cv2.imencode(".jpg", np.full((8, 8, 3), 90, np.uint8))[1].tobytes()
    own = [f"/v1/streams/{STREAM}/frames"] * 40
    with ingest_process(kafka_settings, tmp_path) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for path in own:  # in order: seq 0..39
                assert (await client.post(path, content=body)).status_code == 202
            await post_all(client, [f"/v1/streams/other-{i}/frames" for i in range(OTHERS)], body)
            for path in own:
                assert (await client.post(path, content=body)).status_code == 202
    records = await read_topic(
        kafka_settings.bootstrap_servers, kafka_settings.frames_topic, 80 + OTHERS
    )
    metas = [parse_headers(r.headers) for r in records if r.key == STREAM.encode()]
    assert len(metas) == 80
    identities = {(m.run_id, m.seq) for m in metas}
    event_ids = {EmotionEventV1.make_id(m.stream_id, m.seq, 0, m.run_id) for m in metas}
    assert len(identities) == 80 and len(event_ids) == 80
