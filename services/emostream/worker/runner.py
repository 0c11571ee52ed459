"""The worker: consume frame micro-batches, process them off the event loop, publish, commit."""

from __future__ import annotations

import asyncio
import time

import structlog

from emostream import metrics
from emostream.config import WorkerOptions
from emostream.kafka.batch_consumer import BatchConsumer
from emostream.kafka.clients import next_offsets
from emostream.kafka.dead_letters import send_dead_letter
from emostream.settings import KafkaSettings
from emostream.worker.batch import BatchResult, RawFrame
from emostream.worker.processing import FrameProcessor

log = structlog.get_logger(__name__)


class Worker(BatchConsumer):
    """At-least-once frames -> events. ``start``/``stop`` or ``async with``; ``run`` until stopped.

    The consume loop, commits and rebalance handling are ``BatchConsumer``'s; the worker adds
    ``handle``: process a batch in a thread, publish, commit after acknowledgement.
    """

    def __init__(
        self, kafka: KafkaSettings, options: WorkerOptions, processor: FrameProcessor
    ) -> None:
        super().__init__(
            kafka,
            kafka.frames_topic,
            options.group_id,
            "worker",
            max_wait_ms=options.max_wait_ms,
            max_records=options.max_batch_frames,
            grace_s=options.shutdown_grace_s,
        )
        self.options = options
        self.processor = processor
        self.frames = 0
        self.events = 0
        self.stale_dropped = 0

    async def _stop(self) -> None:
        await super()._stop()
        self.processor.close()

    def readiness(self) -> tuple[bool, dict]:
        """``/readyz`` check: started and holding at least one partition."""
        partitions = len(self.assignment())
        return self.started and partitions > 0, {"partitions": partitions}

    async def run(self) -> None:
        log.info(
            "worker started",
            topic=self.kafka.frames_topic,
            group=self.options.group_id,
            model=self.processor.model_info.name,
            trained=self.processor.model_info.trained,
        )
        await super().run()

    def on_unreadable(self, count: int) -> None:
        metrics.FRAMES.labels("dead_letter").inc(count)

    async def handle(self, records: list) -> BatchResult:
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
        await self._publish(result)
        t_published = time.perf_counter()
        offsets = next_offsets(records)
        await self.commit(offsets)
        t_done = time.perf_counter()
        self._observe(records, result, offsets, (t0, t_processed, t_published, t_done))
        return result

    async def _publish(self, result: BatchResult) -> None:
        """Send events, changes and dead letters; return once every one is acknowledged."""
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

    def _observe(self, records, result: BatchResult, offsets, times) -> None:
        """Counters, metrics and the one summary line of the batch."""
        t0, t_processed, t_published, t_done = times
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
        self._observe_lag(offsets)
        self.frames += len(records)
        self.events += len(result.events)
        self.dead_letters += len(result.rejected)
        self.stale_dropped += stale
        log.info(
            "batch done",
            frames=len(records),
            faces=result.faces,
            events=len(result.events),
            dead_letters=len(result.rejected),
            stale_dropped=stale,
            ms=round((time.perf_counter() - t0) * 1000, 1),
        )

    def _observe_lag(self, offsets) -> None:
        assigned = self._consumer.assignment()
        for tp, committed in offsets.items():
            if tp not in assigned:  # revoked during the batch; highwater() asserts on those
                continue
            high = self._consumer.highwater(tp)
            if high is not None:
                metrics.CONSUMER_LAG.labels(self.options.group_id, tp.topic, str(tp.partition)).set(
                    max(high - committed, 0)
                )
