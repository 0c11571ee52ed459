"""The worker: consume frame micro-batches, process them off the event loop, publish, commit."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from emostream import metrics
from emostream.cloudevents_headers import attrs_for, kafka_headers
from emostream.config import WorkerOptions
from emostream.kafka.batch_consumer import BatchConsumer
from emostream.kafka.clients import next_offsets
from emostream.kafka.dead_letters import send_dead_letter
from emostream.settings import KafkaOptions
from emostream.worker.batch import BatchResult, RawFrame
from emostream.worker.frame_traces import BatchTraces
from emostream.worker.protocol import AnyProcessor
from emostream.worker.steering import LatencySteer
from emostream.worker.timings import BatchTimes, StageTotals

log = structlog.get_logger(__name__)


@dataclass
class _InHand:
    """A fetched batch on its way through the two halves (``prepare``, then ``handle``)."""

    records: list
    raw: list[RawFrame]
    prepared: object  # what the processor's ``prepare`` made of ``raw``
    queue_wait_s: float  # summed over frames: capture (record timestamp) to fetch
    prepare_s: float
    prepared_at: float
    traces: BatchTraces


class Worker(BatchConsumer):
    """At-least-once frames -> events. ``start``/``stop`` or ``async with``; ``run`` until stopped.

    The consume loop, commits and rebalance handling are ``BatchConsumer``'s; the worker adds
    ``prepare`` (the processor's ``prepare`` in a thread: decode, detect, ...) and ``handle``
    (its ``finish`` in a thread: classify, events; publish, commit after acknowledgement), for
    either processing path (``worker.protocol.Processor``). The loop overlaps them: batch k+1
    is fetched and detected while batch k is classified and published. Each batch's size and
    fetch wait come from a ``LatencySteer`` aiming at ``target_latency_ms``.
    """

    def __init__(
        self, kafka: KafkaOptions, options: WorkerOptions, processor: AnyProcessor
    ) -> None:
        super().__init__(
            kafka,
            kafka.frames_topic,
            options.group_id,
            "worker",
            max_wait_ms=options.max_wait_ms,
            max_records=options.max_batch_frames,
            grace_s=options.shutdown_grace_s,
            overlap=True,
        )
        self.options = options
        self.processor = processor
        self.steer = LatencySteer(
            options.target_latency_ms, options.max_batch_frames, options.max_wait_ms
        )
        self.frames = 0
        self.events = 0
        self.stale_dropped = 0
        self.stage_totals = StageTotals()  # where frames' time went (bench pipeline reports it)

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

    async def prepare(self, records: list) -> _InHand:
        """Decode, detect and track in a thread (while the batch before is classified)."""
        t0 = time.perf_counter()
        now_ms = time.time() * 1000
        queue_wait_s = sum(max(now_ms - r.timestamp, 0.0) for r in records) / 1000
        raw = [
            RawFrame(r.topic, r.partition, r.offset, r.value, list(r.headers or []))
            for r in records
        ]
        traces = BatchTraces(raw)
        prepared = await asyncio.to_thread(self.processor.prepare, raw)
        t1 = time.perf_counter()
        return _InHand(records, raw, prepared, queue_wait_s, t1 - t0, t1, traces)

    async def handle(self, batch: _InHand) -> BatchResult:
        """Finish one batch; publish events and dead letters; then commit.

        Order: (1) finish the frames in a thread (classify, smooth, events); (2) send events and
        dead letters and wait for every acknowledgement; (3) only then commit, per partition, the
        offset after the last record of this batch. A crash before (3) replays the batch; event
        ids are deterministic, so the aggregator drops the duplicates. Batches reach this in
        fetch order, one at a time.
        """
        t0, finish_started_ns = time.perf_counter(), time.time_ns()
        result = await asyncio.to_thread(self.processor.finish, batch.prepared)
        t_processed = time.perf_counter()
        batch.traces.processed(result.stage_s, finish_started_ns)
        await self._publish(result, batch.traces)
        batch.traces.published()
        t_published = time.perf_counter()
        offsets = next_offsets(batch.records)
        await self.commit(offsets)
        t_done = time.perf_counter()
        self._observe(batch, result, offsets, (t0, t_processed, t_published, t_done))
        return result

    async def _publish(self, result: BatchResult, traces: BatchTraces) -> None:
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
                        headers=[
                            ("emostream-schema", schema),
                            *kafka_headers(attrs_for(msg)),
                            *traces.header(msg.stream_id, msg.frame_seq),
                        ],
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
                keep_value=self.options.dead_letter_images,
            )
            log.warning(
                "frame dead-lettered",
                reason=rej.reason,
                detail=rej.detail,
                partition=rej.frame.partition,
                offset=rej.frame.offset,
            )

    def _observe(self, batch: _InHand, result: BatchResult, offsets, times) -> None:
        """Counters, metrics, the latency steer and the one summary line of the batch."""
        t0, t_processed, t_published, t_done = times
        n = len(batch.records)
        stale = sum(result.stale_dropped.values())
        metrics.FRAMES.labels("ok").inc(result.frames_ok)
        metrics.FRAMES.labels("dead_letter").inc(len(result.rejected))
        metrics.FRAMES.labels("stale").inc(stale)
        metrics.FACES.inc(result.faces)
        metrics.EVENTS_PUBLISHED.inc(len(result.events))
        metrics.BATCH_FRAMES.observe(n)
        metrics.STAGE_SECONDS.labels("process").observe(batch.prepare_s + t_processed - t0)
        metrics.STAGE_SECONDS.labels("publish").observe(t_published - t_processed)
        metrics.STAGE_SECONDS.labels("commit").observe(t_done - t_published)
        for ev in result.events:
            if ev.latency_ms is not None:
                metrics.E2E_LATENCY.observe(max(ev.latency_ms, 0) / 1000)
        times_ = BatchTimes(
            n,
            result.stage_s,
            batch.queue_wait_s,
            batch.prepare_s,
            max(t0 - batch.prepared_at, 0.0),
            t_processed - t0,
            t_published - t_processed,
            t_done - t_published,
        )
        self.stage_totals.add(times_)
        self._steer(batch, times_, stale)
        self._observe_lag(offsets)
        self.frames += n
        self.events += len(result.events)
        self.dead_letters += len(result.rejected)
        self.stale_dropped += stale
        log.info(
            "batch done",
            frames=n,
            faces=result.faces,
            events=len(result.events),
            dead_letters=len(result.rejected),
            stale_dropped=stale,
            ms=round((t_done - t0 + batch.prepare_s) * 1000, 1),
            next_batch_frames=self.max_records,
        )

    def _steer(self, batch: _InHand, t: BatchTimes, stale: int) -> None:
        """Size the next fetch by the latency target (see ``LatencySteer``) from the time the
        batch took: prepare, finish, publish, commit (not its wait for the batch ahead)."""
        busy_ms = 1000 * (t.prepare_s + t.finish_s + t.publish_s + t.commit_s)
        queue_wait_ms = 1000 * t.queue_wait_s / max(t.frames, 1)
        self.steer.observe(len(batch.records) - stale, busy_ms, queue_wait_ms, stale)
        self.max_records = self.steer.fetch_records()
        self.max_wait_ms = self.steer.wait_ms()
        metrics.BATCH_LIMIT_FRAMES.set(self.max_records)

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
