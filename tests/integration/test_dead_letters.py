"""Invalid frames go to the dead-letter topic with a reason; the worker still serves valid ones."""

from __future__ import annotations

import hashlib
import json

from aiokafka import AIOKafkaProducer

from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.kafka.clients import ensure_topics
from emostream.kafka.dead_letters import H_REASON
from tests.integration.worker_run import collect, running_worker


async def test_invalid_frames_dead_lettered(kafka_settings, astronaut_bgr, group_id):
    await ensure_topics(kafka_settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    topic = kafka_settings.frames_topic
    key = b"door-cam"
    try:
        await producer.send_and_wait(
            topic,
            b"\xff\xd8\xff\xe0corrupt",
            key=key,
            headers=frame_headers(FrameMeta("door-cam", 0, 1)),
        )
        await producer.send_and_wait(
            topic, b"", key=key, headers=frame_headers(FrameMeta("door-cam", 1, 1))
        )
        await producer.send_and_wait(topic, encode_frame(astronaut_bgr), key=key, headers=[])
        await producer.send_and_wait(
            topic,
            encode_frame(astronaut_bgr),
            key=key,
            headers=frame_headers(FrameMeta("door-cam", 3, 1)),
        )
    finally:
        await producer.stop()

    async with running_worker(
        kafka_settings, group_id("worker"), dead_letter_images=True
    ) as worker:
        dead = await collect(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 3)
        events = await collect(kafka_settings.bootstrap_servers, kafka_settings.events_topic, 1)

    reasons = sorted(dict(r.headers)[H_REASON].decode() for r in dead)
    assert reasons == ["corrupt_image", "empty_payload", "missing_headers"]
    for r in dead:
        record = json.loads(dict(r.headers)["emostream-dlq-record"])
        assert record["source_topic"] == kafka_settings.frames_topic
        assert record["detail"]
    corrupt = next(r for r in dead if dict(r.headers)[H_REASON] == b"corrupt_image")
    assert corrupt.value == b"\xff\xd8\xff\xe0corrupt"  # original bytes kept for replay
    assert json.loads(events[0].value)["frame_seq"] == 3
    assert worker.dead_letters == 3 and worker.events == 1


async def test_frame_dead_letters_hold_no_image_unless_kept(
    kafka_settings, astronaut_bgr, group_id
):
    """Issue 33, 14: dead letters (kept 7 days) held the original face images. By default they
    hold the reason, the offsets, the size and a SHA-256, not the bytes."""
    await ensure_topics(kafka_settings)
    face = encode_frame(astronaut_bgr)
    bad = face[: len(face) // 2]  # a truncated JPEG of a face: corrupt_image
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            kafka_settings.frames_topic, bad, key=b"c", headers=frame_headers(FrameMeta("c", 0, 1))
        )
    finally:
        await producer.stop()
    async with running_worker(kafka_settings, group_id("worker")):
        (dead,) = await collect(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 1)
    headers = dict(dead.headers)
    assert headers[H_REASON] == b"corrupt_image"
    assert dead.value in (b"", None)
    assert all(bad[:64] not in (v or b"") for v in headers.values())
    record = json.loads(headers["emostream-dlq-record"])
    assert record["value_kept"] is False
    assert record["value_bytes"] == len(bad)
    assert record["value_sha256"] == hashlib.sha256(bad).hexdigest()
    assert (record["source_topic"], record["source_offset"]) == (kafka_settings.frames_topic, 0)
