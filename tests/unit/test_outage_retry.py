"""A batch whose outputs the broker refuses is handled again, not raised out of the loop
(issue 33, 3); a commit the broker cannot take is given up after a bound."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.errors import UnknownError, UnknownTopicOrPartitionError

from emostream.kafka import outage
from emostream.kafka.commit_policy import commit_after_ack
from emostream.kafka.outage import until_published


class FakeWatch:
    def __init__(self) -> None:
        self.checks = 0
        self.now = 0
        self.committed_offsets: list[dict] = []

    def check_now(self) -> None:
        self.now += 1

    async def ensure_topic(self) -> bool:
        self.checks += 1
        return False

    def committed(self, offsets) -> None:
        self.committed_offsets.append(offsets)


async def test_a_refused_batch_is_handled_again_until_it_goes_through(monkeypatch):
    monkeypatch.setattr(outage, "FIRST_RETRY_S", 0.01)
    failures = [UnknownError(), UnknownTopicOrPartitionError()]
    calls = []

    async def handle():
        calls.append(1)
        if failures:
            raise failures.pop(0)

    async def wait_stop(delay: float) -> bool:
        await asyncio.sleep(delay)
        return False

    watch, retries = FakeWatch(), []
    assert await until_published(handle, watch, wait_stop, lambda: retries.append(1)) is True
    assert len(calls) == 3 and watch.checks == 2 and watch.now == 2 and len(retries) == 2


async def test_a_stop_during_an_outage_leaves_the_batch_uncommitted():
    async def handle():
        raise UnknownError()

    async def wait_stop(delay: float) -> bool:
        return True

    assert await until_published(handle, FakeWatch(), wait_stop) is False


async def test_a_commit_the_broker_cannot_take_is_given_up_after_its_bound():
    class HangingConsumer:
        async def commit(self, offsets):
            await asyncio.sleep(3600)  # aiokafka retries a commit to a missing topic forever

    watch = FakeWatch()
    offsets = {TopicPartition("t", 0): 5}
    ok = await asyncio.wait_for(
        commit_after_ack(HangingConsumer(), watch, offsets, timeout_s=0.05),  # type: ignore[arg-type]
        timeout=5,
    )
    assert ok is False and watch.now == 1 and watch.committed_offsets == []
