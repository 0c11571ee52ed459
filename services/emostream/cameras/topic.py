"""The cameras topic: created compacted, written by the API, read whole by every reader.

Compaction keeps the last value of each key and drops tombstones after a while, so the topic
stays about as large as the registry. A reader takes every partition from its beginning to its
highwater mark (the offset after the last record, known from the first fetch: brokers without
ListOffsets, like the test broker, still return it) and then keeps following; the last value of
a key wins, an empty one deletes. ``CameraLog`` is the API's view: every partition, no group.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import IllegalStateError, KafkaError

from emostream.cameras.model import CameraSpec, decode, encode
from emostream.fleet_options import FleetOptions
from emostream.kafka.clients import client_kwargs, make_consumer, make_producer
from emostream.runtime.component import Component
from emostream.settings import KafkaOptions

log = structlog.get_logger(__name__)
COMPACT = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}


async def ensure_cameras_topic(kafka: KafkaOptions, fleet: FleetOptions) -> None:
    """Create the cameras topic, compacted (plain where the broker refuses the config)."""
    if not kafka.create_topics:
        return
    admin = AIOKafkaAdminClient(**client_kwargs(kafka, "cameras-admin"))
    await admin.start()
    try:
        if fleet.cameras_topic in set(await admin.list_topics()):
            return
        for configs in (COMPACT, {}):
            topic = NewTopic(
                fleet.cameras_topic, fleet.cameras_partitions, kafka.replication_factor
            )
            topic.topic_configs = dict(configs)
            try:
                await admin.create_topics([topic])
                log.info("cameras topic created", topic=fleet.cameras_topic, configs=configs)
                return
            except KafkaError as exc:  # refused config, or a concurrent creator won the race
                log.info("create cameras topic", configs=configs, result=str(exc))
                if fleet.cameras_topic in set(await admin.list_topics()):
                    return
    finally:
        await admin.close()


async def caught_up(consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> bool:
    """Whether every partition was read up to the highwater mark of its last fetch."""
    try:
        for tp in partitions:
            high = consumer.highwater(tp)
            if high is None or await consumer.position(tp) < high:
                return False
    except IllegalStateError:  # no longer assigned (a rebalance under way): not yet
        return False
    return True


class CameraLog(Component):
    """Every camera of the registry, kept current; ``put``/``delete`` write through the topic."""

    def __init__(self, kafka: KafkaOptions, fleet: FleetOptions) -> None:
        self.kafka = kafka
        self.fleet = fleet
        self.cameras: dict[str, CameraSpec] = {}
        self.ready = asyncio.Event()
        self._written: dict[str, int] = {}  # stream id -> offset of this process's last write
        self._producer = make_producer(kafka, "cameras")
        self._consumer = make_consumer(kafka, [], None, "cameras-log")  # type: ignore[arg-type]
        self._task: asyncio.Task | None = None

    async def _start(self) -> None:
        await ensure_cameras_topic(self.kafka, self.fleet)
        await self._producer.start()
        await self._consumer.start()
        await self._consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
        parts = self._consumer.partitions_for_topic(self.fleet.cameras_topic) or set()
        assigned = {TopicPartition(self.fleet.cameras_topic, p) for p in parts}
        self._consumer.assign(list(assigned))
        await self._consumer.seek_to_beginning(*assigned)
        self._task = asyncio.create_task(self._follow(assigned))
        with contextlib.suppress(TimeoutError):  # the API answers 503 until it is
            await asyncio.wait_for(self.ready.wait(), 10)

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._consumer.stop()
        await self._producer.stop()

    async def _follow(self, assigned: set[TopicPartition]) -> None:
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=1000)
            except KafkaError as exc:
                log.warning("cameras topic read failed", error=str(exc))
                await asyncio.sleep(1)
                continue
            for records in batch.values():
                for record in records:
                    self._apply(record)
            if not self.ready.is_set() and await caught_up(self._consumer, assigned):
                self.ready.set()
                log.info("camera registry read", cameras=len(self.cameras))

    def _apply(self, record) -> None:
        found = decode(record.key, record.value)
        if found is None:
            return
        stream_id, spec = found
        if record.offset < self._written.get(stream_id, -1):
            return  # older than what this process wrote and already shows
        if spec is None:
            self.cameras.pop(stream_id, None)
        else:
            self.cameras[stream_id] = spec

    async def put(self, spec: CameraSpec) -> None:
        """Write ``spec`` and wait for the broker's acknowledgement."""
        meta = await self._producer.send_and_wait(
            self.fleet.cameras_topic, encode(spec), key=spec.stream_id.encode()
        )
        self._written[spec.stream_id] = meta.offset
        self.cameras[spec.stream_id] = spec

    async def delete(self, stream_id: str) -> None:
        """Write the tombstone of ``stream_id`` and wait for the acknowledgement."""
        meta = await self._producer.send_and_wait(
            self.fleet.cameras_topic, None, key=stream_id.encode()
        )
        self._written[stream_id] = meta.offset
        self.cameras.pop(stream_id, None)
