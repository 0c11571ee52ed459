"""BatchConsumer with ``overlap``: the next batch is fetched and prepared while one is handled;
handling and commits stay one at a time, in fetch order; errors are not lost."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from emostream.kafka import batch_consumer
from emostream.kafka.batch_consumer import BatchConsumer
from emostream.kafka.record_fetch import Fetched
from emostream.settings import KafkaOptions

TP0 = TopicPartition("t", 0)


class FakeWatch:
    def check_offsets(self, records=()):
        return 0

    async def ensure_topic(self):
        return False


class Overlapping(BatchConsumer):
    def __init__(self, steps: list, batches: int, fail_at: int | None = None) -> None:
        kafka = KafkaOptions(bootstrap_servers="127.0.0.1:9")
        super().__init__(kafka, "t", "g", "test", 10, 2, overlap=True)
        self.broker_watch = FakeWatch()  # type: ignore[assignment]
        self.steps, self.batches, self.fail_at = steps, batches, fail_at
        self.idle_seen: list[bool] = []

    async def prepare(self, records):
        self.steps.append(("prepare", records[0].offset))
        await asyncio.sleep(0.01)
        return [r.offset for r in records]

    async def handle(self, offsets):
        self.steps.append(("handle", offsets[0]))
        await asyncio.sleep(0.05)  # publishing: the loop fetches and prepares meanwhile
        self.idle_seen.append(self.idle)
        if offsets[0] == self.fail_at:
            raise RuntimeError("publish failed")
        await self.commit({TP0: offsets[-1] + 1})
        if offsets[-1] + 1 >= 2 * self.batches:
            self.request_stop()


@pytest.fixture
def fake_kafka(monkeypatch):
    steps: list = []
    state = {"next": 0}

    async def fetch(consumer, timeout_ms, max_records):
        o = state["next"]
        state["next"] += 2
        return Fetched([SimpleNamespace(topic="t", partition=0, offset=o + i) for i in range(2)])

    async def commit(consumer, watch, offsets):
        steps.append(("commit", offsets[TP0]))
        return True

    monkeypatch.setattr(batch_consumer, "fetch_batch", fetch)
    monkeypatch.setattr(batch_consumer, "commit_after_ack", commit)
    return steps


async def test_the_next_batch_is_prepared_while_one_is_handled(fake_kafka):
    c = Overlapping(fake_kafka, batches=3)
    await c.run()
    handled = [s for s in fake_kafka if s[0] in ("handle", "commit")]
    # one at a time, in fetch order, each committed before the next is handled; the batch
    # fetched while the stop was requested is in hand, so it is finished too
    expected = [step for o in (0, 2, 4, 6) for step in (("handle", o), ("commit", o + 2))]
    assert handled == expected[: len(handled)]
    assert len(handled) in (6, 8)
    # batch 2 was prepared before batch 0 was committed: the stages overlapped
    assert fake_kafka.index(("prepare", 2)) < fake_kafka.index(("commit", 2))
    assert c.idle_seen and not any(c.idle_seen)  # a revocation would have waited
    assert c.idle  # run returned only once every batch in hand was committed
    await c.stop()


async def test_a_failed_batch_fails_the_loop_and_nothing_after_it_is_committed(fake_kafka):
    c = Overlapping(fake_kafka, batches=5, fail_at=2)
    with pytest.raises(RuntimeError, match="publish failed"):
        await c.run()
    commits = [s[1] for s in fake_kafka if s[0] == "commit"]
    assert commits == [2]
    assert c.idle
    await c.stop()
