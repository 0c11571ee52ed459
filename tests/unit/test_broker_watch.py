"""BrokerWatch against a fake consumer: lost data is logged once and counted; missing topics are
recreated; checks back off while the broker is down."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from emostream import metrics
from emostream.kafka import broker_watch
from emostream.kafka.broker_watch import BrokerWatch
from emostream.settings import KafkaOptions

TP0, TP1 = TopicPartition("frames", 0), TopicPartition("frames", 1)


class FakeConsumer:
    def __init__(self) -> None:
        self.high: dict[TopicPartition, int | None] = {}
        self.assigned = {TP0, TP1}
        self.topic_names: set[str] | Exception = {"frames"}

    def assignment(self):
        return frozenset(self.assigned)

    def highwater(self, tp):
        assert tp in self.assigned, "aiokafka asserts on partitions not assigned"
        return self.high.get(tp)

    async def topics(self):
        if isinstance(self.topic_names, Exception):
            raise self.topic_names
        return set(self.topic_names)


def rec(tp: TopicPartition, offset: int):
    return SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=offset)


@pytest.fixture
def logs(monkeypatch):
    # A fresh logger: a module logger cached by an earlier configure_logging() bypasses capture.
    with capture_logs() as captured:
        monkeypatch.setattr(broker_watch, "log", structlog.get_logger("broker_watch_test"))
        yield captured


def loss_count(group: str) -> float:
    return metrics.BROKER_DATA_LOSS.labels(group, "frames")._value.get()


def test_normal_progress_is_not_a_loss(logs):
    consumer = FakeConsumer()
    watch = BrokerWatch(KafkaOptions(), consumer, "frames", "g-ok")
    watch.committed({TP0: 10})
    consumer.high[TP0] = 10
    assert watch.check_offsets([rec(TP0, 10), rec(TP0, 11)]) == 0
    consumer.high[TP0] = 50
    assert watch.check_offsets() == 0
    assert watch.losses == 0 and not logs


def test_highwater_below_commit_is_logged_once_and_counted(logs):
    consumer = FakeConsumer()
    watch = BrokerWatch(KafkaOptions(), consumer, "frames", "g-high")
    watch.committed({TP0: 6, TP1: 3})
    watch.committed({TP0: 4})  # an older commit never lowers what we know
    consumer.high[TP0] = 0  # the broker came back empty
    assert watch.check_offsets() == 1
    assert watch.check_offsets() == 0  # once per loss
    (entry,) = [e for e in logs if e["event"] == "broker data loss detected"]
    assert entry["log_level"] == "warning"
    assert (entry["topic"], entry["partition"], entry["committed_offset"], entry["highwater"]) == (
        "frames",
        0,
        6,
        0,
    )
    assert loss_count("g-high") == 1
    assert watch.losses == 1


def test_rewound_fetch_is_a_loss_even_when_new_data_hides_it(logs):
    consumer = FakeConsumer()
    watch = BrokerWatch(KafkaOptions(), consumer, "frames", "g-rewind")
    watch.committed({TP1: 6})
    consumer.high[TP1] = 8  # eight new records after the restart: highwater alone looks fine
    assert watch.check_offsets([rec(TP1, 0), rec(TP1, 1)]) == 1
    (entry,) = logs
    assert entry["fetched_offset"] == 0 and entry["partition"] == 1


def test_unassigned_partitions_are_not_asked_for_highwater(logs):
    consumer = FakeConsumer()
    watch = BrokerWatch(KafkaOptions(), consumer, "frames", "g-revoked")
    watch.committed({TP0: 5})
    consumer.assigned = set()  # mid-rebalance
    assert watch.check_offsets() == 0
    consumer.assigned = {TP0}
    consumer.high[TP0] = 0
    assert watch.check_offsets() == 1


async def test_missing_topic_recreated_and_checks_back_off(logs, monkeypatch):
    created = []

    async def fake_ensure(settings):
        created.append(settings)

    monkeypatch.setattr(broker_watch, "ensure_topics", fake_ensure)
    clock = [1000.0]
    monkeypatch.setattr(broker_watch.time, "monotonic", lambda: clock[0])
    consumer = FakeConsumer()
    kafka = KafkaOptions()
    watch = BrokerWatch(kafka, consumer, "frames", "g", check_interval_s=5, max_backoff_s=12)
    assert not await watch.ensure_topic()  # rate limited: not due yet
    clock[0] += 5
    assert not await watch.ensure_topic() and not created  # present

    consumer.topic_names = KafkaConnectionError("down")
    delays = []
    for _ in range(4):
        clock[0] += 100
        assert not await watch.ensure_topic()
        delays.append(watch._next_check - clock[0])
    assert delays == [5, 10, 12, 12]  # doubling, capped

    consumer.topic_names = {"other"}
    clock[0] += 100
    assert await watch.ensure_topic()
    assert created == [kafka] and watch.topics_recreated == 1
    assert any(e["event"] == "topic missing on the broker" for e in logs)
    clock[0] += 1
    assert not await watch.ensure_topic()  # back to the normal interval


async def test_missing_topic_without_create_topics_is_only_reported(logs, monkeypatch):
    created = []

    async def fake_ensure(settings):
        created.append(settings)  # ensure_topics itself returns early when create_topics=False

    monkeypatch.setattr(broker_watch, "ensure_topics", fake_ensure)
    consumer = FakeConsumer()
    consumer.topic_names = set()
    watch = BrokerWatch(
        KafkaOptions(create_topics=False), consumer, "frames", "g", check_interval_s=0
    )
    assert not await watch.ensure_topic()
    assert watch.topics_recreated == 0
    assert [e["recreate"] for e in logs if e["event"] == "topic missing on the broker"] == [False]
