"""The worker loop: consume frame micro-batches, process them off the event loop, publish, commit."""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError

from emostream import metrics
from emostream.config import WorkerOptions
from emostream.kafka.broker_watch import BrokerWatch
from emostream.kafka.clients import make_consumer, make_producer, next_offsets
from emostream.kafka.dead_letters import dead_letter_unreadable, send_dead_letter
from emostream.kafka.record_fetch import Unreadable, fetch_batch, past
from emostream.runtime.health import progress_check
from emostream.settings import KafkaSettings
from emostream.worker.processing import BatchResult, FrameProcessor, RawFrame

log = structlog.get_logger(__name__)


class _FinishBatchOnRevoke(ConsumerRebalanceListener):
    """Before partitions move to another worker, let the batch in hand finish and commit.

    Without this, a rebalance during a batch makes its commit fail and the new owner replays it
    (harmless, as event ids are deterministic, but wasted work and duplicate events). The wait is
    bounded by the shutdown grace period, so a stuck batch cannot hold up the group.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked) -> None:
        if self.worker.idle or not revoked:
            return
        finished = await self.worker.wait_idle(self.worker.options.shutdown_grace_s)
        log.info("partitions revoked", partitions=len(revoked), batch_committed_first=finished)

    async def on_partitions_assigned(self, assigned) -> None:
        log.info(
            "partitions assigned",
            partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned),
        )


class Worker:
    """At-least-once frames -> events. ``start``/``stop`` or ``async with``; ``run`` until stopped."""

    def __init__(
        self, kafka: KafkaSettings, options: WorkerOptions, processor: FrameProcessor
    ) -> None:
        self.kafka = kafka
        self.options = options
        self.processor = processor
        self._consumer = make_consumer(kafka, [], options.group_id, "worker")
        self._consumer.subscribe([kafka.frames_topic], listener=_FinishBatchOnRevoke(self))
        self._idle = asyncio.Event()  # set while no batch is in hand
        self._idle.set()
        self._producer = make_producer(kafka, "worker")
        self.broker_watch = BrokerWatch(kafka, self._consumer, kafka.frames_topic, options.group_id)
        self._stop = asyncio.Event()
        self._started = False
        self.frames = 0
        self.events = 0
        self.dead_letters = 0
        self.stale_dropped = 0
        self.last_progress = time.monotonic()

    async def start(self) -> Worker:
        if not self._started:
            await self._producer.start()
            await self._consumer.start()
            self._started = True
        return self

    async def stop(self) -> None:
        """Idempotent; also closes clients that were never started."""
        self._stop.set()
        self._started = False
        await self._consumer.stop()
        await self._producer.stop()
        self.processor.close()

    async def __aenter__(self) -> Worker:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def request_stop(self) -> None:
        self._stop.set()

    def liveness(self, timeout_s: float):
        """``/livez`` check: the consume loop came round within ``timeout_s``."""
        return progress_check(lambda: self.last_progress, time.monotonic, timeout_s)

    def readiness(self) -> tuple[bool, dict]:
        """``/readyz`` check: started and holding at least one partition."""
        partitions = len(self._consumer.assignment()) if self._started else 0
        return self._started and partitions > 0, {"partitions": partitions}

    async def run_with_grace(self, grace_s: float) -> None:
        """``run`` until stopped; once a stop is requested, give the batch in hand ``grace_s``.

        Past the deadline the batch is abandoned uncommitted: the partition's next owner
        replays it (at-least-once; event ids make the replay recognisable).
        """
        task = asyncio.create_task(self.run())
        stop = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                try:
                    await asyncio.wait_for(task, grace_s)
                except TimeoutError:
                    log.warning(
                        "drain deadline passed: the batch in hand will be replayed", grace_s=grace_s
                    )
        finally:
            stop.cancel()
        if not task.cancelled():
            task.result()

    async def run(self) -> None:
        log.info(
            "worker started",
            topic=self.kafka.frames_topic,
            group=self.options.group_id,
            model=self.processor.model_info.name,
            trained=self.processor.model_info.trained,
        )
        while not self._stop.is_set():
            fetched = await fetch_batch(
                self._consumer, self.options.max_wait_ms, self.options.max_batch_frames
            )
            self.last_progress = time.monotonic()
            records = fetched.records
            self.broker_watch.check_offsets(records)
            if records:
                await self.handle(records)
                self.last_progress = time.monotonic()
            if fetched.unreadable:  # after the records before them are published and committed
                await self._skip_unreadable(fetched.unreadable)
            elif not records:
                await self.broker_watch.ensure_topic()

    async def _skip_unreadable(self, unreadable: list[Unreadable]) -> None:
        """Dead-letter records the client cannot parse, then commit past them."""
        await dead_letter_unreadable(self._producer, self.kafka.dlq_topic, unreadable)
        self.dead_letters += len(unreadable)
        metrics.FRAMES.labels("dead_letter").inc(len(unreadable))
        log.warning(
            "unreadable records dead-lettered",
            records=[f"{u.topic}/{u.partition}/{u.offset}" for u in unreadable],
        )
        offsets = past(unreadable)
        try:
            await self._consumer.commit(offsets)
            self.broker_watch.committed(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("commit failed after rebalance", error=str(exc))

    def _observe(
        self, records, result: BatchResult, offsets, t0, t_processed, t_published, t_done
    ) -> None:
        stale = sum(result.stale_dropped.values())
        metrics.FRAMES.labels("ok").inc(result.frames_ok)
        metrics.FRAMES.labels("dead_letter").inc(len(result.rejected))
        metrics.FRAMES.labels("stale").inc(stale)
        metrics.FACES.inc(result.faces)
        metrics.EVENTS_PUBLISHED.inc(len(result.events))
        metrics.BATCH_FRAMES.observe(len(records))
        metrics.STAGE_SECONDS.labels("process").observe(t_processed - t0)
        metrics.STAGE_SECONDS.labels("publish").observe(t_published - t_processed)
        metrics.STAGE_SECONDS.labels("commit").observe(t_done - t_published)
        for ev in result.events:
            if ev.latency_ms is not None:
                metrics.E2E_LATENCY.observe(max(ev.latency_ms, 0) / 1000)
        assigned = self._consumer.assignment()
        for tp, committed in offsets.items():
            if tp not in assigned:  # revoked during the batch; highwater() asserts on those
                continue
            high = self._consumer.highwater(tp)
            if high is not None:
                metrics.CONSUMER_LAG.labels(self.options.group_id, tp.topic, str(tp.partition)).set(
                    max(high - committed, 0)
                )

    @property
    def idle(self) -> bool:
        """No batch in hand."""
        return self._idle.is_set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until the batch in hand is published and committed."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    async def handle(self, records: list) -> BatchResult:
        self._idle.clear()
        try:
            return await self._handle(records)
        finally:
            self._idle.set()

    async def _handle(self, records: list) -> BatchResult:
        """Process one batch; publish events and dead letters; then commit.

        Order: (1) process frames in a thread (decode, detect, classify); (2) send events and
        dead letters and wait for every acknowledgement; (3) only then commit, per partition,
        the offset after the last record of this batch. A crash before (3) replays the batch;
        event ids are deterministic, so the aggregator drops the duplicates.
        """
        raw = [
            RawFrame(r.topic, r.partition, r.offset, r.value, list(r.headers or []))
            for r in records
        ]
        t0 = time.perf_counter()
        result = await asyncio.to_thread(self.processor.process, raw)
        t_processed = time.perf_counter()
        futures = []
        outputs = [
            (self.kafka.events_topic, b"emotion-event/1", result.events),
            (self.kafka.changes_topic, b"emotion-change/1", result.changes),
        ]
        for topic, schema, messages in outputs:
            for msg in messages:
                futures.append(
                    await self._producer.send(
                        topic,
                        msg.model_dump_json().encode(),
                        key=msg.stream_id.encode(),
                        headers=[("emostream-schema", schema)],
                    )
                )
        if futures:
            await asyncio.gather(*futures)
        for rej in result.rejected:
            await send_dead_letter(
                self._producer,
                self.kafka.dlq_topic,
                source_topic=rej.frame.topic,
                partition=rej.frame.partition,
                offset=rej.frame.offset,
                value=rej.frame.value,
                headers=rej.frame.headers,
                reason=rej.reason,
                detail=rej.detail,
                stream_id=rej.stream_id,
                max_bytes=self.kafka.max_message_bytes,
            )
            log.warning(
                "frame dead-lettered",
                reason=rej.reason,
                detail=rej.detail,
                partition=rej.frame.partition,
                offset=rej.frame.offset,
            )
        t_published = time.perf_counter()
        offsets = next_offsets(records)
        try:
            await self._consumer.commit(offsets)
            self.broker_watch.committed(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # Partitions moved during the batch; the new owner replays it (deduplicated downstream).
            log.warning("commit failed after rebalance", error=str(exc))
        t_done = time.perf_counter()
        self._observe(records, result, offsets, t0, t_processed, t_published, t_done)
        self.frames += len(records)
        self.events += len(result.events)
        self.dead_letters += len(result.rejected)
        self.stale_dropped += sum(result.stale_dropped.values())
        log.info(
            "batch done",
            frames=len(records),
            faces=result.faces,
            events=len(result.events),
            dead_letters=len(result.rejected),
            stale_dropped=sum(result.stale_dropped.values()),
            ms=round((time.perf_counter() - t0) * 1000, 1),
        )
        return result
