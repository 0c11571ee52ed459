"""A broker away for 60 s, then back empty on the same port: the worker and the aggregator (each
its own process) wait, recreate the topics and go on.

Issue 33, 3: a 25 s outage killed the worker (its commits failed with UnknownTopicOrPartition,
topics were re-checked only after a 20 s back-off, then ``UnknownError()`` escaped), and with it
the demo. Only a 3 s outage was tested (``test_broker_restart.py``).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import httpx
import pytest

from emostream.errors import DependencyUnavailable
from emostream.frames import encode_frame
from emostream.local.servers import TansuBroker, free_port
from emostream.local.stack import log_tails, services_env, worker_and_aggregator
from emostream.local.topics import run_topics
from emostream.settings import KafkaOptions
from tests.integration.test_broker_restart import STREAM, _has, publish
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
OUTAGE_S = 60


@pytest.mark.timeout(420)
async def test_services_survive_a_60_s_broker_outage(redis_settings, astronaut_bgr, tmp_path):
    tag = uuid.uuid4().hex[:8]
    broker = TansuBroker().start(free_port())
    kafka = KafkaOptions(bootstrap_servers=broker.bootstrap, **run_topics(tag), topic_partitions=2)
    env = services_env(kafka, redis_settings, f"outage-{tag}") | {
        "EMOSTREAM_MODEL__THREADS": "1",
        "EMOSTREAM_WORKER__MAX_BATCH_FRAMES": "4",
        "EMOSTREAM_WORKER__TRACK_MIN_HITS": "1",  # every frame's face is an event, from seq 0
        "EMOSTREAM_LOG__LEVEL": "INFO",
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
        await publish(broker.bootstrap, kafka.frames_topic, payload, range(0, 6))
        await wait_until(lambda: _has(stored_seqs, set(range(6))), 60, "events before the outage")

        port = broker.port
        broker.stop()
        down_at = time.monotonic()
        while time.monotonic() - down_at < OUTAGE_S:  # the services live on with no broker
            assert worker.running and aggregator.running, "a missing broker must not stop a service"
            await asyncio.sleep(1)
        broker = TansuBroker().start(port)  # the same port: the services' bootstrap address
        back_at = time.monotonic()

        async def published_and_stored() -> set[int] | None:  # new frames until they get through
            await publish(broker.bootstrap, kafka.frames_topic, payload, range(10, 16))
            return await _has(stored_seqs, set(range(10, 16)))

        await wait_until(published_and_stored, 120, "events after the outage", 5.0)
        print(f"events flowing again {time.monotonic() - back_at:.1f} s after the broker's return")
        assert worker.running and aggregator.running, "no service may exit"
    except BaseException:
        print(log_tails((worker, aggregator), 60))
        raise
    finally:
        await api.aclose()
        for proc in (worker, aggregator):
            proc.stop()
        broker.stop()


def test_a_broker_restarted_on_its_port_waits_for_it_and_a_taken_port_is_an_error():
    """The embedded broker exits 0 when its port is taken: a start on a port still held waits
    for it (a restart), and one that stays held is an error, never a silent success."""
    first = TansuBroker().start(free_port())
    port = first.port
    try:
        second = TansuBroker()
        second.port_wait_s = 1.0
        with pytest.raises(DependencyUnavailable, match=f"port {port}"):
            second.start(port)
        assert first.running
        stopper = threading.Timer(1.0, first.stop)  # the old broker leaves while we wait
        stopper.start()
        restarted = TansuBroker().start(port)
        stopper.join()
        try:
            assert restarted.running and not first.running
        finally:
            restarted.stop()
    finally:
        first.stop()
