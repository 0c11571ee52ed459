"""Records that once crash-looped the services: every one ends processed or dead-lettered.

A header key that is not UTF-8 raised inside aiokafka's ``getmany`` (every retry, every
restart); a ~1 MiB invalid event or frame could not be dead-lettered (MessageSizeTooLargeError
against the producer's 1 MiB ``max_request_size``). Both stopped the service for good.
"""

from __future__ import annotations

import json

import aiokafka.producer.message_accumulator as accumulator
import aiokafka.producer.producer as producer_module
import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

from emostream.aggregator.state.store import EventStore
from emostream.frames import MAX_FRAME_BYTES, FrameMeta, encode_frame, frame_headers
from emostream.kafka.clients import ensure_topics
from emostream.kafka.dead_letters import H_REASON, H_TRUNCATED
from emostream.local.servers import free_port
from tests.integration.aggregator_process import aggregator_process
from tests.integration.test_aggregator_faults import event
from tests.integration.worker_run import collect, running_worker
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
BIG = 1_200_000  # over the 1 MiB the services' producers may send


class NotUtf8Key(str):
    """A header key the (pure-Python) record builder writes as bytes that are not UTF-8."""

    def encode(self, *args, **kwargs) -> bytes:
        return b"\xff\xfe-key"


@pytest.fixture
def raw_producer(monkeypatch, kafka_settings):
    """A producer that may send non-UTF-8 header keys and records up to 9 MiB."""
    monkeypatch.setattr(accumulator, "DefaultRecordBatchBuilder", _DefaultRecordBatchBuilderPy)
    monkeypatch.setattr(producer_module, "DefaultRecordBatchBuilder", _DefaultRecordBatchBuilderPy)

    async def send(topic: str, records: list[tuple[bytes, list]]) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_settings.bootstrap_servers, max_request_size=9 * 1024 * 1024
        )
        await producer.start()
        try:
            for value, headers in records:  # one partition: the order below is the log's order
                await producer.send_and_wait(topic, value, key=b"p", headers=headers, partition=0)
        finally:
            await producer.stop()

    return send


async def test_aggregator_process_dead_letters_unreadable_and_oversized_events(
    kafka_settings, redis_settings, raw_producer, tmp_path
):
    await ensure_topics(kafka_settings)
    huge_invalid = b'{"schema_version": 1, "junk": "' + b"x" * BIG + b'"}'
    await raw_producer(
        kafka_settings.events_topic,
        [
            (event("p", 0), []),
            (event("p", 1), [(NotUtf8Key("k"), b"v")]),
            (event("p", 2), []),
            (huge_invalid, [("emostream-schema", b"emotion-event/1")]),
            (event("p", 3), []),
        ],
    )
    port = free_port()
    proc = aggregator_process(kafka_settings, redis_settings, port, tmp_path).start(port)
    try:
        async with EventStore(redis_settings) as store:

            async def all_good_stored():
                return len(await store.recent_events("p", 10)) == 3

            await wait_until(all_good_stored, 60.0, "events around the bad ones stored")
            seqs = sorted(e["frame_seq"] for e in await store.recent_events("p", 10))
        dead = await collect(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 2)
        assert proc.running, (tmp_path / "aggregator.log").read_text()[-2000:]
    finally:
        proc.stop()
    assert seqs == [0, 2, 3]
    by_reason = {dict(r.headers)[H_REASON]: r for r in dead}
    unreadable = by_reason[b"unreadable_record"]
    record = json.loads(dict(unreadable.headers)["emostream-dlq-record"])
    assert (record["source_partition"], record["source_offset"]) == (0, 1)
    assert "UnicodeDecodeError" in record["detail"]
    invalid = by_reason[b"invalid_event"]
    assert json.loads(dict(invalid.headers)["emostream-dlq-record"])["source_offset"] == 3
    assert dict(invalid.headers)[H_TRUNCATED].startswith(f"{len(huge_invalid)}/".encode())
    assert huge_invalid.startswith(invalid.value) and 0 < len(invalid.value) < 1024 * 1024


async def test_worker_dead_letters_unreadable_and_oversized_frames(
    kafka_settings, raw_producer, astronaut_bgr, group_id
):
    await ensure_topics(kafka_settings)
    good = encode_frame(astronaut_bgr)
    oversized = b"\xff\xd8\xff" + bytes(BIG)  # undecodable, and too big to dead-letter whole
    over_limit = b"\xff\xd8\xff" + bytes(MAX_FRAME_BYTES)  # past the 8 MiB frame limit
    noise = np.random.default_rng(0).integers(0, 256, (1400, 1800, 3), dtype=np.uint8)
    large_jpeg = encode_frame(noise, jpeg_quality=100)  # a valid frame of several MiB
    assert 2 * 1024 * 1024 < len(large_jpeg) < MAX_FRAME_BYTES
    await raw_producer(
        kafka_settings.frames_topic,
        [
            (good, frame_headers(FrameMeta("p", 0, 1))),
            (good, frame_headers(FrameMeta("p", 1, 1)) + [(NotUtf8Key("k"), b"v")]),
            (oversized, frame_headers(FrameMeta("p", 2, 1))),
            (large_jpeg, frame_headers(FrameMeta("p", 3, 1))),
            (over_limit, frame_headers(FrameMeta("p", 4, 1))),
            (good, frame_headers(FrameMeta("p", 5, 1))),
        ],
    )
    async with running_worker(
        kafka_settings, group_id("worker"), dead_letter_images=True
    ) as worker:
        dead = await collect(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 3)
        events = await collect(kafka_settings.bootstrap_servers, kafka_settings.events_topic, 2)
        await wait_until(lambda: worker.frames >= 5, 30.0, "every readable frame handled")
    assert sorted(json.loads(e.value)["frame_seq"] for e in events) == [0, 5]
    reasons = {dict(r.headers)[H_REASON]: r for r in dead}
    assert set(reasons) == {b"unreadable_record", b"corrupt_image", b"too_large"}
    for reason, original in ((b"corrupt_image", oversized), (b"too_large", over_limit)):
        cut = reasons[reason]
        assert dict(cut.headers)[H_TRUNCATED].startswith(f"{len(original)}/".encode())
        assert len(cut.value) < 1024 * 1024 and original.startswith(cut.value)
    assert worker.dead_letters == 3 and worker.frames == 5  # + the unreadable one: all six
