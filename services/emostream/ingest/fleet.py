"""`emostream ingest` without a source: a member of the camera fleet.

The fleet ingests form one consumer group on the cameras topic; Kafka's assignment decides which
ingest runs which cameras (no election of our own) and moves a dead member's partitions after
its session times out. For each assigned partition the member reads from the beginning to the
highwater mark, then runs that partition's cameras and keeps following its changes (a PATCH or
DELETE applies within a fetch). Offsets are never committed: the registry is read whole.

On a rebalance (eager: every member gives up everything, then gets its new share) cameras keep
running until the new assignment is known; those of partitions now elsewhere stop before this
member reads on, those that stay are not restarted.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from emostream.cameras.model import CameraSpec, SourceRejected, check_source, decode
from emostream.cameras.status import StatusWriter
from emostream.cameras.topic import caught_up, ensure_cameras_topic
from emostream.errors import DependencyUnavailable
from emostream.fleet_options import FleetOptions
from emostream.ingest import fleet_metrics
from emostream.ingest.camera import Camera
from emostream.kafka.clients import make_consumer, make_producer
from emostream.runtime.component import Component
from emostream.runtime.health import progress_check
from emostream.settings import KafkaOptions, RedisOptions

log = structlog.get_logger(__name__)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    async def on_partitions_revoked(self, revoked) -> None:
        log.info("cameras partitions revoked", partitions=sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        await self.fleet.assigned(set(assigned))


class Fleet(Component):
    """Runs the cameras of the partitions Kafka assigns to this member."""

    def __init__(
        self, kafka: KafkaOptions, fleet: FleetOptions, redis: RedisOptions, jpeg_quality: int = 85
    ) -> None:
        self.kafka = kafka
        self.fleet = fleet
        self.jpeg_quality = jpeg_quality
        self.ingest_id = f"{socket.gethostname()}-{os.getpid()}"
        self.specs: dict[TopicPartition, dict[str, CameraSpec]] = {}
        self.loading: set[TopicPartition] = set()
        self.cameras: dict[str, Camera] = {}
        self.refused: dict[str, str] = {}  # stream id -> why this member does not run it
        self.status = StatusWriter(redis, fleet)
        self._producer = make_producer(kafka, "ingest-fleet")
        self._consumer = make_consumer(kafka, [], fleet.group_id, "ingest-fleet")
        self._stop_requested = asyncio.Event()
        self.last_progress = time.monotonic()

    async def _start(self) -> None:
        await ensure_cameras_topic(self.kafka, self.fleet)
        try:
            await self.status.start()
        except DependencyUnavailable as exc:  # cameras run without status; said once
            log.warning("camera status off: Redis not reachable", error=str(exc))
        await self._producer.start()
        await self._consumer.start()
        self._consumer.subscribe([self.fleet.cameras_topic], listener=_Listener(self))
        log.info("fleet ingest started", ingest=self.ingest_id, group=self.fleet.group_id)

    async def _stop(self) -> None:
        self._stop_requested.set()
        await asyncio.gather(*(c.stop() for c in self.cameras.values()))
        self.cameras.clear()
        await self._consumer.stop()  # leaves the group: the others take the cameras at once
        await self._producer.stop()
        await self.status.stop()

    def request_stop(self) -> None:
        self._stop_requested.set()

    def liveness(self, timeout_s: float):
        return progress_check(lambda: self.last_progress, time.monotonic, timeout_s)

    def readiness(self) -> tuple[bool, dict]:
        return self.started, {"cameras": len(self.cameras), "loading": len(self.loading)}

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        """A new assignment: stop the cameras of partitions gone elsewhere, reread the rest."""
        gone = [c for c in self.cameras.values() if c.partition not in assigned]
        await asyncio.gather(*(c.stop() for c in gone))
        for camera in gone:
            del self.cameras[camera.stream_id]
        self.specs = {tp: {} for tp in assigned}
        self.loading = set(assigned)
        self.refused.clear()
        if assigned:
            await self._consumer.seek_to_beginning(*assigned)
        log.info(
            "cameras partitions assigned",
            partitions=sorted(tp.partition for tp in assigned),
            stopped=len(gone),
            kept=len(self.cameras),
        )

    async def run(self) -> None:
        next_status = 0.0
        while not self._stop_requested.is_set():
            self.last_progress = time.monotonic()
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=500)
            except KafkaError as exc:
                log.warning("cameras topic read failed", error=str(exc))
                await asyncio.sleep(1)
                continue
            for tp, records in batch.items():
                await self._records(tp, records)
            for tp in list(self.loading):
                if await caught_up(self._consumer, {tp}):
                    self.loading.discard(tp)
                    await self._reconcile(tp, set(self.specs.get(tp, {})) | self._running_in(tp))
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + self.fleet.status_interval_s
                await self.status.write(self.status_docs())

    async def _records(self, tp: TopicPartition, records: list) -> None:
        specs = self.specs.setdefault(tp, {})
        touched: set[str] = set()
        for record in records:
            found = decode(record.key, record.value)
            if found is None:
                continue
            stream_id, spec = found
            touched.add(stream_id)
            if spec is None:
                specs.pop(stream_id, None)
            else:
                specs[stream_id] = spec
        if tp not in self.loading:
            await self._reconcile(tp, touched)

    def _running_in(self, tp: TopicPartition) -> set[str]:
        return {s for s, camera in self.cameras.items() if camera.partition == tp}

    async def _reconcile(self, tp: TopicPartition, stream_ids: set[str]) -> None:
        """Make the running cameras of ``stream_ids`` match the partition's registry."""
        specs = self.specs.get(tp, {})
        for stream_id in stream_ids:
            spec, camera = specs.get(stream_id), self.cameras.get(stream_id)
            if camera is not None and (spec is None or spec.source != camera.spec.source):
                await camera.stop()
                del self.cameras[stream_id]
                if spec is None:
                    await self.status.forget(stream_id)
                    log.info("camera stopped", stream_id=stream_id)
                camera = None
            if spec is None:
                self.refused.pop(stream_id, None)
            elif camera is not None:
                camera.spec = spec  # fps, live, resize, loop: read at the next frame
            else:
                self._begin(tp, spec)

    def _begin(self, tp: TopicPartition, spec: CameraSpec) -> None:
        try:
            check_source(spec.source, self.fleet)
        except SourceRejected as exc:  # written by another tool than the API: say why
            self.refused[spec.stream_id] = f"source refused: {exc}"
            return
        if len(self.cameras) >= self.fleet.max_cameras_per_ingest:
            self.refused[spec.stream_id] = (
                f"this ingest runs {len(self.cameras)} cameras, its limit "
                "(EMOSTREAM_FLEET__MAX_CAMERAS_PER_INGEST): add ingest replicas"
            )
            return
        self.refused.pop(spec.stream_id, None)
        camera = Camera(
            spec, self._producer, self.kafka.frames_topic, self.fleet, self.jpeg_quality
        )
        camera.partition = tp
        self.cameras[spec.stream_id] = camera
        camera.start()
        log.info("camera started", stream_id=spec.stream_id, run_id=camera.run_id, fps=spec.fps)

    def status_docs(self) -> list[dict]:
        docs = [c.status(self.ingest_id) for c in self.cameras.values()]
        states = [d["state"] for d in docs] + ["refused"] * len(self.refused)
        fleet_metrics.observe(states, len(self.specs))
        for stream_id, why in self.refused.items():
            docs.append(
                {"stream_id": stream_id, "ingest": self.ingest_id, "state": "refused"}
                | {"connected": False, "last_error": why}
            )
        return docs
