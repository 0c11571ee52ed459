"""`emostream worker` with EMOSTREAM_WORKER__PATH=device on this CPU: frames from the real broker
become published emotion events through the batched device path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from aiokafka import AIOKafkaProducer

from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.ingest.sources import sample_frames
from emostream.kafka.clients import ensure_topics
from tests.integration.worker_run import collect

N_FRAMES = 10


def _worker(kafka, group: str, log_path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        {
            "EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "EMOSTREAM_KAFKA__FRAMES_TOPIC": kafka.frames_topic,
            "EMOSTREAM_KAFKA__EVENTS_TOPIC": kafka.events_topic,
            "EMOSTREAM_KAFKA__CHANGES_TOPIC": kafka.changes_topic,
            "EMOSTREAM_KAFKA__DLQ_TOPIC": kafka.dlq_topic,
            "EMOSTREAM_KAFKA__SESSION_TIMEOUT_MS": "6000",
            "EMOSTREAM_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
            "EMOSTREAM_WORKER__GROUP_ID": group,
            "EMOSTREAM_WORKER__PATH": "device",
            "EMOSTREAM_WORKER__METRICS_PORT": "0",
            "EMOSTREAM_WORKER__MAX_BATCH_FRAMES": "4",
            "EMOSTREAM_WORKER__TRACK_MIN_HITS": "1",
            "EMOSTREAM_MODEL__DEVICE": "cpu",
            "EMOSTREAM_MODEL__THREADS": "1",
            "EMOSTREAM_LOG__JSON_OUTPUT": "true",
            "EMOSTREAM_LOG__LEVEL": "INFO",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "emostream.cli.main", "worker"],
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )


async def test_worker_on_the_device_path_publishes_events(kafka_settings, group_id, tmp_path):
    await ensure_topics(kafka_settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for seq, image in enumerate(sample_frames(N_FRAMES)):
            meta = FrameMeta("dev-cam", seq, int(time.time() * 1000))
            await producer.send(
                kafka_settings.frames_topic,
                encode_frame(image),
                key=b"dev-cam",
                headers=frame_headers(meta),
            )
        await producer.flush()
    finally:
        await producer.stop()
    log_path = tmp_path / "worker.log"
    proc = _worker(kafka_settings, group_id("worker"), log_path)
    try:
        records = await collect(
            kafka_settings.bootstrap_servers, kafka_settings.events_topic, 6, 90
        )
        assert proc.poll() is None, log_path.read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    events = [json.loads(r.value) for r in records]
    assert {e["stream_id"] for e in events} == {"dev-cam"}
    assert len({e["frame_seq"] for e in events}) >= 6  # the astronaut found frame after frame
    lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
    config = next(x for x in lines if x.get("event") == "config")
    assert config["worker"]["path"] == "device"
    chosen = next(x for x in lines if x.get("event") == "processing path")
    assert chosen["path"] == "device" and chosen["device"] == "cpu"
