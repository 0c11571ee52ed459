"""A worker joining mid-batch: the batch in hand finishes and commits before its partitions move,
so nothing is processed twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from aiokafka import AIOKafkaProducer

from emostream.config import WorkerOptions
from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.inference import EmotionEngine
from emostream.kafka.clients import ensure_topics
from emostream.models import untrained_model
from emostream.vision.detector import HaarDetector
from emostream.worker import FrameProcessor, Worker
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
STREAMS = ["cam-a", "cam-b", "cam-c", "cam-d"]  # spread over both partitions
PER_STREAM = 6


class SlowProcessor(FrameProcessor):
    """Records what it processed; the first batch takes ``first_batch_s`` (a rebalance lands)."""

    def __init__(self, first_batch_s: float = 0.0) -> None:
        super().__init__(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))
        self.first_batch_s = first_batch_s
        self.seen: list[tuple[str, int]] = []
        self.in_first_batch = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def finish(self, batch):
        """The worker's second stage (``process`` is not what it calls: it overlaps stages)."""
        if self.first_batch_s:
            self.loop.call_soon_threadsafe(self.in_first_batch.set)
            time.sleep(self.first_batch_s)
            self.first_batch_s = 0.0
        result = super().finish(batch)
        self.seen += [(e.stream_id, e.frame_seq) for e in result.events]
        return result


async def test_partitions_move_only_after_the_batch_in_hand_is_committed(
    kafka_settings, astronaut_bgr, group_id
):
    await ensure_topics(kafka_settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    await producer.start()
    payload = encode_frame(astronaut_bgr)
    for seq in range(PER_STREAM):
        for sid in STREAMS:
            meta = FrameMeta(sid, seq, 1_700_000_000_000 + seq * 100)
            await producer.send_and_wait(
                kafka_settings.frames_topic, payload, key=sid.encode(), headers=frame_headers(meta)
            )
    await producer.stop()

    opts = WorkerOptions(
        group_id=group_id("worker"), max_batch_frames=64, max_wait_ms=200, shutdown_grace_s=20
    )
    first, second = SlowProcessor(first_batch_s=6.0), SlowProcessor()
    async with Worker(kafka_settings, opts, first) as a:
        task_a = asyncio.create_task(a.run())
        await asyncio.wait_for(first.in_first_batch.wait(), 30)
        async with Worker(kafka_settings, opts, second) as b:  # joins while A holds a batch
            task_b = asyncio.create_task(b.run())
            total = len(STREAMS) * PER_STREAM
            await wait_until(
                lambda: len(set(first.seen + second.seen)) >= total, 60, "every frame processed"
            )
            await asyncio.sleep(3)  # time for any replay to show up
            a.request_stop()
            b.request_stop()
            await asyncio.wait([task_a, task_b], timeout=30)
    counts = Counter(first.seen + second.seen)
    assert len(counts) == len(STREAMS) * PER_STREAM, "every frame processed"
    assert max(counts.values()) == 1, f"processed twice: {[k for k, v in counts.items() if v > 1]}"
    assert first.seen, "the first worker's batch was committed, not handed over"
