"""SIGTERM drain: the batch in hand gets the grace period, no more."""

import asyncio
import time

from emostream.config import WorkerOptions
from emostream.inference import EmotionEngine
from emostream.models import untrained_model
from emostream.settings import KafkaOptions
from emostream.vision.detector import HaarDetector
from emostream.worker.processing import FrameProcessor
from emostream.worker.runner import Worker


class StuckWorker(Worker):
    """A batch that would take ``batch_s`` and ignores the stop request until it is done."""

    batch_s = 10.0

    async def run(self) -> None:
        self.finished = False
        await asyncio.sleep(self.batch_s)
        self.finished = True


def worker(batch_s: float) -> StuckWorker:
    processor = FrameProcessor(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))
    w = StuckWorker(KafkaOptions(bootstrap_servers="127.0.0.1:9"), WorkerOptions(), processor)
    w.batch_s = batch_s
    return w


async def test_a_batch_past_the_grace_is_abandoned_at_the_deadline():
    w = worker(10.0)
    asyncio.get_running_loop().call_later(0.1, w.request_stop)
    t0 = time.monotonic()
    await w.run_with_grace(0.3)
    assert 0.35 < time.monotonic() - t0 < 2.0
    assert w.finished is False
    await w.stop()


async def test_a_batch_within_the_grace_finishes():
    w = worker(0.4)
    asyncio.get_running_loop().call_later(0.1, w.request_stop)
    await w.run_with_grace(5.0)
    assert w.finished is True
    await w.stop()


async def test_readiness_needs_a_started_consumer():
    w = worker(0)
    ok, detail = w.readiness()
    assert ok is False and detail == {"partitions": 0}
    await w.stop()
