"""Ingest through a broker outage: it keeps running, reports itself live, and publishes again
once the broker is back, without manual action."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from emostream.local.servers import ServiceProcess, TansuBroker, free_port, settings_env
from emostream.local.topics import run_topics
from emostream.settings import KafkaOptions
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


async def frames_on_broker(bootstrap: str, topic: str, enough: int) -> int:
    """Messages in ``topic``, counted by reading it (Tansu's ListOffsets "latest" is unreliable),
    up to ``enough`` or for at most 5 s."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            return 0
        consumer.assign([TopicPartition(topic, p) for p in parts])
        n, deadline = 0, time.monotonic() + 5
        while n < enough and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            n += sum(len(records) for records in batch.values())
        return n
    finally:
        await consumer.stop()


async def test_ingest_survives_a_broker_restart(tmp_path):
    tag = uuid.uuid4().hex[:8]
    broker = TansuBroker().start(free_port())
    kafka = KafkaOptions(
        bootstrap_servers=broker.bootstrap,
        **run_topics(tag),
        topic_partitions=2,
        request_timeout_ms=5000,
    )
    port = free_port()
    ingest = ServiceProcess(
        "ingest",
        settings_env("kafka", kafka)
        | {
            "EMOSTREAM_LOG__JSON_OUTPUT": "true",
            "EMOSTREAM_INGEST__SOURCE": "sample",
            "EMOSTREAM_INGEST__LOOP": "true",
            "EMOSTREAM_INGEST__FPS": "10",
            "EMOSTREAM_INGEST__METRICS_PORT": str(port),
        },
        tmp_path / "ingest.log",
    )
    health = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5)

    async def on_broker(at_least: int):
        n = await frames_on_broker(broker.bootstrap, kafka.frames_topic, at_least)
        return n if n >= at_least else None

    try:
        ingest.start(port)
        assert (await health.get("/readyz")).status_code == 200
        await wait_until(lambda: on_broker(10), 30, "frames before the outage")

        broker_port = broker.port
        broker.stop()
        await asyncio.sleep(8)  # longer than the producer's request timeout
        assert ingest.running, "a missing broker must not stop ingest"
        assert (await health.get("/livez")).status_code == 200  # the camera is still read

        broker = TansuBroker().start(broker_port)  # empty: the topic is gone too
        await wait_until(lambda: on_broker(10), 60, "frames after the restart")
        assert ingest.running
        metrics = (await health.get("/metrics")).text
        assert "emostream_frames_sent_total" in metrics
    except BaseException:
        if ingest.log_path.exists():
            lines = ingest.log_path.read_text(errors="replace").splitlines()
            print(
                "\n".join(
                    [ln for ln in lines if "Unable" not in ln and "NodeNotReady" not in ln][-40:]
                )
            )
        raise
    finally:
        await health.aclose()
        ingest.stop()
        broker.stop()
