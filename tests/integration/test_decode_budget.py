"""Over-budget images on the frames topic (issue 33, item 7): a worker on the real broker
dead-letters them from their header, without decoding, and goes on with another stream."""

from __future__ import annotations

import time

import cv2
import numpy as np
from aiokafka import AIOKafkaProducer

from emostream.frames import FrameMeta, encode_frame, frame_headers, now_ms
from emostream.kafka.clients import ensure_topics
from emostream.kafka.dead_letters import H_REASON
from tests.integration.worker_run import collect, running_worker

BOMBS = 16  # the 16 PNGs of 8000x5000, 16-bit: 1.3 s and 272 MB each to decode before


async def test_over_budget_frames_are_dead_lettered_and_other_streams_go_on(
    kafka_settings, astronaut_bgr, group_id
):
    await ensure_topics(kafka_settings)
    # A real one (240 KB): uniform, so it fits a Kafka record; decoding it fills 240 MB.
    big = cv2.imencode(".png", np.zeros((5000, 8000, 3), np.uint16))[1].tobytes()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    topic = kafka_settings.frames_topic
    try:
        for seq in range(BOMBS):
            meta = FrameMeta("big-cam", seq, now_ms(), live=False)
            await producer.send_and_wait(topic, big, key=b"big-cam", headers=frame_headers(meta))
        meta = FrameMeta("door-cam", 0, now_ms(), live=False)
        await producer.send_and_wait(
            topic, encode_frame(astronaut_bgr), key=b"door-cam", headers=frame_headers(meta)
        )
    finally:
        await producer.stop()
    t0 = time.monotonic()
    async with running_worker(kafka_settings, group_id("worker")):
        dead = await collect(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, BOMBS)
        events = await collect(kafka_settings.bootstrap_servers, kafka_settings.events_topic, 1)
        took = time.monotonic() - t0
    assert {dict(r.headers)[H_REASON] for r in dead} == {b"too_large"}
    assert len(dead) == BOMBS and all(r.key == b"big-cam" for r in dead)
    assert events and all(r.key == b"door-cam" for r in events)
    print(f"{BOMBS} over-budget frames dead-lettered and the other stream served in {took:.1f} s")
