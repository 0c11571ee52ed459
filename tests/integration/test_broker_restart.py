"""The broker stops and comes back empty (Tansu keeps nothing on disk). The worker and the
aggregator, each its own process, reconnect by themselves, recreate the topics, log the loss,
and turn frames published after the restart into events."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.local.servers import TansuBroker, free_port
from emostream.local.stack import log_tails, services_env, worker_and_aggregator
from emostream.local.topics import run_topics
from emostream.settings import KafkaOptions
from tests.waiting import wait_until

TANSU_AUTO_CREATE_PARTITIONS = 4
pytestmark = pytest.mark.slow
STREAM = "door-cam"
BEFORE = range(0, 6)
AFTER = range(10, 16)
PARTITIONS = 2


async def publish(bootstrap: str, topic: str, payload: bytes, seqs: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for seq in seqs:
            meta = FrameMeta(STREAM, seq, int(time.time() * 1000))
            await producer.send_and_wait(
                topic, payload, key=STREAM.encode(), headers=frame_headers(meta)
            )
    finally:
        await producer.stop()


async def topic_partitions(bootstrap: str, topic: str) -> int:
    """Partitions of ``topic``, 0 while it is missing. Never creates it (list, then describe)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return 0
        (desc,) = await admin.describe_topics([topic])
        return len(desc["partitions"])
    finally:
        await admin.close()


def log_events(path: Path, event: str) -> list[dict]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            out.append(entry)
    return out


async def test_broker_restart_recovers_and_logs_the_loss(redis_settings, astronaut_bgr, tmp_path):
    tag = uuid.uuid4().hex[:8]
    broker = TansuBroker().start(free_port())
    kafka = KafkaOptions(
        bootstrap_servers=broker.bootstrap,
        **run_topics(tag),
        topic_partitions=PARTITIONS,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    env = services_env(kafka, redis_settings, f"restart-{tag}") | {
        "EMOSTREAM_MODEL__THREADS": "1",
        "EMOSTREAM_WORKER__MAX_BATCH_FRAMES": "4",
        "EMOSTREAM_WORKER__TRACK_MIN_HITS": "1",  # every frame's face is an event, from seq 0
    }
    worker, aggregator, metrics_port, api_port = worker_and_aggregator(env, tmp_path)
    payload = encode_frame(astronaut_bgr)
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=5)

    async def stored_seqs() -> set[int]:
        r = await api.get(f"/v1/streams/{STREAM}/events", params={"limit": 100})
        return {e["frame_seq"] for e in r.json()["events"]} if r.status_code == 200 else set()

    try:
        worker.start(metrics_port)
        aggregator.start(api_port)
        await publish(broker.bootstrap, kafka.frames_topic, payload, BEFORE)
        await wait_until(lambda: _has(stored_seqs, set(BEFORE)), 60, "events before the restart")

        port = broker.port
        broker.stop()  # SIGTERM; memory storage: topics, offsets and groups are gone
        await asyncio.sleep(3)  # deliberately: the services live on with no broker for a while
        assert worker.running and aggregator.running, "a missing broker must not stop a service"
        broker = TansuBroker().start(port)

        # The services notice their topics are gone and recreate them with the configured
        # partition count. Tansu also auto-creates a topic (with its own count, 4) when a
        # client's metadata request names it, and that can win the race: then the services
        # must pick up the broker's partitions (metadata refresh) and still process everything.
        parts = await wait_until(
            lambda: topic_partitions(broker.bootstrap, kafka.frames_topic),
            30,
            "frames topic recreated",
        )
        assert parts in (PARTITIONS, TANSU_AUTO_CREATE_PARTITIONS)
        await publish(broker.bootstrap, kafka.frames_topic, payload, AFTER)
        seqs = await wait_until(
            lambda: _has(stored_seqs, set(AFTER)), 75, "events after the restart"
        )
        assert set(AFTER) <= seqs

        for proc, topic in ((worker, kafka.frames_topic), (aggregator, kafka.events_topic)):
            losses = await wait_until(
                lambda p=proc: log_events(p.log_path, "broker data loss detected"),
                10,
                f"{proc.name}: data-loss warning",
            )
            assert {e["topic"] for e in losses} == {topic}
            assert all(e["committed_offset"] > 0 for e in losses)
            assert all(
                e["highwater"] is not None or e["fetched_offset"] is not None for e in losses
            )
        if parts == PARTITIONS:  # recreated by the services, not auto-created by the broker
            assert log_events(worker.log_path, "topic missing on the broker") or log_events(
                aggregator.log_path, "topic missing on the broker"
            )
        assert worker.running and aggregator.running, "no service may exit"
    except BaseException:
        print(log_tails((worker, aggregator)))  # the services' own account, with the failure
        raise
    finally:
        await api.aclose()
        for proc in (worker, aggregator):
            proc.stop()
        broker.stop()


async def _has(fn, wanted: set[int]) -> set[int] | None:
    seqs = await fn()
    return seqs if wanted <= seqs else None
