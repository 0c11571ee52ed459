"""Three `emostream aggregator` processes in one consumer group, one SIGKILLed while a backlog
drains: every event is stored exactly once, and live push goes on for the clients of the two
that survive, with the events every replica stores (not only their own partitions'). On one
Redis node and on a Redis Cluster (3 masters + 3 replicas)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from emostream.bench.aggregator_backlog import BacklogShape, backlog
from emostream.bench.aggregator_measure import read_all, stored_total
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port
from tests.integration.aggregator_process import aggregator_process
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
STREAMS = 24
PER_STREAM = 400  # 9,600 events: half before the kill, half after
SHAPE = BacklogShape(events=STREAMS * PER_STREAM, streams=STREAMS, seed=34)


async def produce(kafka, items: list[tuple[str, bytes]], pause_s: float = 0.0) -> None:
    """Send ``items``; with ``pause_s``, 200 at a time with that pause between (a flow, not a
    backlog that a fast store drains before the test can act)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all", linger_ms=20)
    await producer.start()
    try:
        for i, (sid, value) in enumerate(items):
            await producer.send(kafka.events_topic, value, key=sid.encode())
            if pause_s and i % 200 == 199:
                await producer.flush()
                await asyncio.sleep(pause_s)
        await producer.flush()
    finally:
        await producer.stop()


class LiveReader:
    """One SSE client of one replica: the (stream, event id) of every event it receives."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: list[tuple[str, str]] = []
        self.task: asyncio.Task | None = None
        self.connected = asyncio.Event()

    async def _read(self) -> None:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=None) as http,
            http.stream("GET", "/v1/live/sse") as response,
        ):
            assert response.status_code == 200
            self.connected.set()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    doc = json.loads(line[6:])
                    self.seen.append((doc["stream_id"], doc["event_id"]))

    async def start(self) -> None:
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.connected.wait(), 30)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def all_consuming(ports: list[int]) -> bool:
    async with httpx.AsyncClient(timeout=5) as http:
        for port in ports:
            try:
                r = await http.get(f"http://127.0.0.1:{port}/healthz")
            except httpx.HTTPError:
                return False
            if r.status_code != 200 or not r.json()["consuming"]:
                return False
    return True


async def check_exactly_once(port: int, sids: list[str]) -> None:
    """Per stream: the counter and the recent events (distinct ids) agree."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        for sid in sids:
            state = (await http.get(f"/v1/streams/{sid}/state")).json()
            assert state["events_total"] == PER_STREAM, (sid, state["events_total"])
            r = await http.get(f"/v1/streams/{sid}/events", params={"limit": PER_STREAM})
            ids = [e["event_id"] for e in r.json()["events"]]
            assert len(ids) == len(set(ids)) == PER_STREAM, (sid, len(ids), len(set(ids)))


def replicas(kafka, redis_settings, tmp_path) -> list:
    procs = []
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        port = free_port()
        proc = aggregator_process(
            kafka,
            redis_settings,
            port,
            tmp_path / name,
            EMOSTREAM_KAFKA__SESSION_TIMEOUT_MS="3000",
            EMOSTREAM_KAFKA__HEARTBEAT_INTERVAL_MS="500",
            EMOSTREAM_AGGREGATOR__MAX_BATCH_EVENTS="40",
        )
        procs.append((proc, port))
    return procs


@pytest.mark.timeout(420)
@pytest.mark.parametrize("redis_kind", ["node", "cluster"])
async def test_three_replicas_one_sigkilled_store_once_and_keep_live_push(
    kafka_settings, redis_settings, tmp_path, request, redis_kind
):
    if redis_kind == "cluster":  # 3 masters + 3 replicas: live push over sharded channels
        cluster = request.getfixturevalue("redis_cluster")
        redis_settings = redis_settings.model_copy(update={"url": SecretStr(cluster.url)})
    kafka = kafka_settings.model_copy(update={"topic_partitions": 6})
    await ensure_topics(kafka)
    items = list(backlog(SHAPE))
    sids = sorted({sid for sid, _ in items})
    procs = replicas(kafka, redis_settings, tmp_path)
    ports = [port for _, port in procs]
    readers = [LiveReader(ports[1]), LiveReader(ports[2])]  # clients of B and C
    try:
        await asyncio.gather(*(asyncio.to_thread(p.start, port) for p, port in procs))
        await wait_until(lambda: all_consuming(ports), 90, "all three replicas assigned", 0.5)
        await asyncio.sleep(2)  # the last join's rebalance settles
        assert await all_consuming(ports)
        for reader in readers:
            await reader.start()

        # The first half as a flow over about 6 s: A is killed while it still arrives.
        first_half = asyncio.create_task(produce(kafka, items[: len(items) // 2], pause_s=0.25))
        readings: list = []

        def a_stored() -> bool:
            readings[:] = read_all(ports, readings)
            return stored_total(readings[:1]) > 0

        await wait_until(a_stored, 60, "replica A storing", 0.02)
        os.kill(procs[0][0].pid, signal.SIGKILL)
        killed_at = stored_total(readings)
        assert killed_at < len(items) // 2, f"the first half drained before the kill: {killed_at}"
        procs[0][0].stop()  # reaps it
        seen_before_kill = [len(r.seen) for r in readers]
        await first_half

        await produce(kafka, items[len(items) // 2 :])

        async def drained() -> bool:
            async with httpx.AsyncClient(timeout=5) as http:
                r = await http.get(f"http://127.0.0.1:{ports[1]}/v1/streams", params={"limit": 100})
            return r.status_code == 200 and sum(
                s["events_total"] for s in r.json()["streams"]
            ) >= len(items)

        await wait_until(drained, 180, "the backlog drained by B and C", 0.5)
        await asyncio.sleep(3)  # anything replayed late would show up as an extra event
        await check_exactly_once(ports[1], sids)
        await check_exactly_once(ports[2], sids)

        survivors = read_all(ports[1:], [])
        for reader in readers:
            after = reader.seen[seen_before_kill[readers.index(reader)] :]
            # Fan-out: each client got events of every stream, though its replica stored only
            # some of them (its partitions); and it went on doing so after A was killed.
            assert {sid for sid, _ in reader.seen} == set(sids)
            assert {sid for sid, _ in after} == set(sids), "live push stopped after the kill"
            # A replayed batch is dropped as duplicates, so nothing is pushed twice.
            assert max(Counter(reader.seen).values()) == 1
        own = [stored_total([m]) for m in survivors]
        assert all(0 < n < len(items) for n in own), f"B and C each stored a part: {own}"
    finally:
        for reader in readers:
            await reader.stop()
        for proc, _ in procs:
            proc.stop()
