"""An in-process worker on the test's topics, and reading what it publishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer

from emostream.config import WorkerOptions
from emostream.inference import EmotionEngine
from emostream.models import untrained_model
from emostream.settings import KafkaOptions
from emostream.vision.detector import HaarDetector
from emostream.worker import FrameProcessor, Worker


async def collect(bootstrap: str, topic: str, n: int, timeout_s: float = 40.0) -> list:
    """The first ``n`` records of ``topic`` (from the start), within ``timeout_s``."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(out) < n:
                batch = await consumer.getmany(timeout_ms=500)
                for recs in batch.values():
                    out.extend(recs)
    finally:
        await consumer.stop()
    return out


@asynccontextmanager
async def running_worker(
    kafka: KafkaOptions, group_id: str, **options: object
) -> AsyncIterator[Worker]:
    """A Haar + untrained-model worker running for the block; it must still be running at the
    end (bad input never stops it), then it stops within 20 s. ``options``: ``WorkerOptions``."""
    processor = FrameProcessor(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))
    settings = WorkerOptions.model_validate({"group_id": group_id, **options})
    async with Worker(kafka, settings, processor) as worker:
        task = asyncio.create_task(worker.run())
        yield worker
        assert not task.done(), "the worker must keep running"
        worker.request_stop()
        await asyncio.wait_for(task, timeout=20)
