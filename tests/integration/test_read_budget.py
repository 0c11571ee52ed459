"""A flood of expensive reads against a real aggregator process (issue 33, 9).

Eight clients asking for an hour's windows (an hour of per-second entries each) once pushed
storage lag to 4.5 s (6-10 s in this test without the budget). With the read budget they get
429 with Retry-After, while another key's cheap reads and event storage go on.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from emostream.aggregator.state.store import EventStore
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port
from emostream.schemas import EmotionEventV1
from tests.integration.aggregator_process import aggregator_process
from tests.integration.test_capture_skew import event
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
FLOOD, QUIET = "flood-key-0123456", "quiet-key-0123456"
FLOOD_S = 8.0


async def flood(base: str, stop: float) -> list[httpx.Response]:
    refused = []
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": FLOOD}, timeout=60) as c:
        while time.monotonic() < stop:
            r = await c.get("/v1/streams/cam/windows", params={"window_s": [3600, 600, 60]})
            if r.status_code == 429:
                refused.append(r)
            else:
                assert r.status_code == 200, r.text
    return refused


async def produce_and_probe(
    base: str, bootstrap: str, topic: str, stop: float
) -> tuple[list[float], list[int]]:
    """Send an event every 0.1 s; read the stream's total with the quiet key every 0.1 s.
    Returns each event's storage lag (send to first seen stored) and the probes' statuses."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    sent: list[float] = []
    lags: dict[int, float] = {}
    statuses: list[int] = []
    try:
        quiet = {"X-API-Key": QUIET}
        async with httpx.AsyncClient(base_url=base, headers=quiet, timeout=60) as c:
            seq = 1
            while time.monotonic() < stop or len(lags) < len(sent):
                if time.monotonic() < stop:
                    await producer.send(topic, event("cam", seq, datetime.now(UTC)), key=b"cam")
                    sent.append(time.monotonic())
                    seq += 1
                r = await c.get("/v1/streams/cam/state")
                statuses.append(r.status_code)
                if r.status_code == 200:
                    stored = r.json()["events_total"] - 3601  # those came before
                    for i in range(len(lags), min(stored, len(sent))):
                        lags[i] = time.monotonic() - sent[i]
                if time.monotonic() > stop + 30:
                    break
                await asyncio.sleep(0.1)
    finally:
        await producer.stop()
    return [lags.get(i, float("inf")) for i in range(len(sent))], statuses


async def test_a_flood_of_expensive_reads_is_refused_while_storage_and_cheap_reads_go_on(
    kafka_settings, redis_settings, tmp_path
):
    await ensure_topics(kafka_settings)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    async with EventStore(redis_settings) as store:  # an hour of per-second buckets to read
        past = [event("cam", 10**6 + s, hour_ago + timedelta(seconds=s)) for s in range(3600)]
        await store.add_events([EmotionEventV1.model_validate_json(e) for e in past])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = aggregator_process(
        kafka_settings,
        redis_settings,
        port,
        tmp_path,
        EMOSTREAM_API__READ_KEYS=f'["{FLOOD}", "{QUIET}"]',
    ).start(port)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
        await producer.start()
        await producer.send_and_wait(
            kafka_settings.events_topic, event("cam", 0, datetime.now(UTC)), key=b"cam"
        )
        await producer.stop()
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": QUIET}) as c:

            async def known() -> bool:
                return (await c.get("/v1/streams/cam/state")).status_code == 200

            await wait_until(known, 60.0, "first event stored", 0.2)
        stop = time.monotonic() + FLOOD_S
        results = await asyncio.gather(
            produce_and_probe(
                base, kafka_settings.bootstrap_servers, kafka_settings.events_topic, stop
            ),
            *(flood(base, stop) for _ in range(8)),
        )
        assert proc.running, (tmp_path / "aggregator.log").read_text()[-2000:]
    finally:
        proc.stop()
    (lags, statuses), refused = results[0], [r for rs in results[1:] for r in rs]
    print(f"storage lag max {max(lags):.2f} s over {len(lags)} events; {len(refused)} refused")
    assert refused, "no expensive read was refused"
    assert all(1 <= int(r.headers["Retry-After"]) <= 10 for r in refused)
    assert set(statuses) == {200}, statuses  # the other key's cheap reads went on
    assert len(statuses) >= 8, statuses  # without the budget: 2-3 in the 8 s
    assert max(lags) < 4.0, lags  # storage went on (without the budget: 6-10 s)
