"""BatchConsumer's loop against fakes: handle before commit, unreadable records dead-lettered
and committed past after the readable ones, a refused commit logged rather than raised."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from emostream.kafka import batch_consumer
from emostream.kafka.batch_consumer import BatchConsumer
from emostream.kafka.commit_policy import commit_after_ack
from emostream.kafka.record_fetch import Fetched, Unreadable
from emostream.settings import KafkaOptions

TP0 = TopicPartition("t", 0)


class FakeKafkaConsumer:
    def __init__(self, fail: bool = False) -> None:
        self.commits: list[dict] = []
        self.fail = fail

    async def commit(self, offsets):
        if self.fail:
            raise CommitFailedError("rebalanced")
        self.commits.append(dict(offsets))


class FakeWatch:
    def __init__(self) -> None:
        self.committed_offsets: list[dict] = []

    def committed(self, offsets):
        self.committed_offsets.append(dict(offsets))

    def check_offsets(self, records=()):
        return 0

    async def ensure_topic(self):
        return False


async def test_a_refused_commit_is_not_told_to_the_watch():
    watch = FakeWatch()
    assert not await commit_after_ack(FakeKafkaConsumer(fail=True), watch, {TP0: 3})
    assert watch.committed_offsets == []
    ok = FakeKafkaConsumer()
    assert await commit_after_ack(ok, watch, {TP0: 3})
    assert ok.commits == watch.committed_offsets == [{TP0: 3}]


class Recorder(BatchConsumer):
    def __init__(self, steps: list) -> None:
        super().__init__(KafkaOptions(bootstrap_servers="127.0.0.1:9"), "t", "g", "test", 10, 5)
        self.steps = steps

    async def handle(self, records):
        assert not self.idle  # a batch is in hand: a revocation would wait for it
        self.steps.append(("handle", [r.offset for r in records]))
        await self.commit({TP0: records[-1].offset + 1})
        self.request_stop()


async def test_records_are_handled_then_unreadable_ones_dead_lettered_and_skipped(monkeypatch):
    steps: list = []
    records = [SimpleNamespace(topic="t", partition=0, offset=o) for o in (0, 1)]

    async def fetch(consumer, timeout_ms, max_records):
        return Fetched(records, [Unreadable("t", 0, 2, "bad header")])

    async def dead_letter(producer, topic, unreadable):
        steps.append(("dead_letter", [u.offset for u in unreadable]))

    async def commit(consumer, watch, offsets):
        steps.append(("commit", dict(offsets)))
        return True

    monkeypatch.setattr(batch_consumer, "fetch_batch", fetch)
    monkeypatch.setattr(batch_consumer, "dead_letter_unreadable", dead_letter)
    monkeypatch.setattr(batch_consumer, "commit_after_ack", commit)
    c = Recorder(steps)
    c.broker_watch = FakeWatch()  # type: ignore[assignment]
    await c.run()
    assert steps == [
        ("handle", [0, 1]),
        ("commit", {TP0: 2}),
        ("dead_letter", [2]),
        ("commit", {TP0: 3}),
    ]
    assert c.idle and c.dead_letters == 1
    await c.stop()
