"""One consume loop for every service that reads a topic in micro-batches (worker, aggregator).

A ``BatchConsumer`` owns a consumer and a producer and runs, until stopped:

1. ``getmany`` at most ``max_records`` records (``record_fetch.fetch_batch``, which isolates
   records the client cannot parse instead of crash-looping on them);
2. checks the fetched offsets against the committed ones (``BrokerWatch``: a broker that lost
   its log is detected and logged);
3. hands the readable records to the subclass's ``handle``, which processes them, publishes
   what they produce, waits for every acknowledgement and only then calls ``commit`` with the
   offsets after the batch (at-least-once: a crash before the commit replays the batch);
   While the broker refuses the outputs (an outage, topics lost), the batch is handled again
   with a capped back-off until it goes through (``outage.until_published``);
4. dead-letters the unreadable records (after the records before them were committed) and
   commits past them, so a poison record is skipped once, never re-read;
5. when nothing was fetched, checks that the topic still exists (recreating it if the broker
   lost it).

Before partitions move to another member (``on_partitions_revoked``), the batch in hand gets
``grace_s`` to finish and commit. ``run_with_grace`` gives the batch in hand the same grace once a
stop is requested.

With ``overlap``, a batch is handled in two halves: ``prepare`` (work that needs no
acknowledgement, e.g. decode and detection) and ``handle`` (the rest, publish, commit). The
next batch is fetched and prepared while the one before it is handled, so at most two batches
are in hand; batches are still handled, and committed, one at a time in fetch order.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from emostream.kafka.broker_watch import BrokerWatch
from emostream.kafka.clients import make_consumer, make_producer
from emostream.kafka.commit_policy import commit_after_ack
from emostream.kafka.dead_letters import dead_letter_unreadable
from emostream.kafka.outage import until_published
from emostream.kafka.record_fetch import Unreadable, fetch_batch, past
from emostream.runtime.component import Component
from emostream.runtime.health import progress_check
from emostream.settings import KafkaOptions

log = structlog.get_logger(__name__)


async def _wait_set(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait at most ``timeout_s`` for ``event``; whether it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
        return True
    except TimeoutError:
        return False


class _FinishBatchOnRevoke(ConsumerRebalanceListener):
    """Before partitions move to another member, let the batch in hand finish and commit.

    Without this, a rebalance during a batch makes its commit fail and the new owner replays it
    (harmless, as event ids are deterministic, but wasted work and duplicates). The wait is
    bounded by the grace period, so a stuck batch cannot hold up the group.
    """

    def __init__(self, owner: BatchConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked) -> None:
        if self.owner.idle or not revoked:
            return
        finished = await self.owner.wait_idle(self.owner.grace_s)
        log.info("partitions revoked", partitions=len(revoked), batch_committed_first=finished)

    async def on_partitions_assigned(self, assigned) -> None:
        log.info(
            "partitions assigned",
            partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned),
        )


class BatchConsumer(Component):
    """At-least-once micro-batch loop over ``topic`` (steps in the module docstring).

    Subclasses implement ``handle(records)`` and call ``commit`` once what the batch produced is
    acknowledged; ``_start``/``_stop`` extend the clients' lifecycle with their own parts.

    Args:
        kafka: connection and topic settings (dead letters go to ``kafka.dlq_topic``).
        topic: the topic consumed.
        group_id: the consumer group.
        client_name: names the clients (``client_id``) and the broker watch's logs.
        max_wait_ms: longest ``getmany`` wait.
        max_records: most records per batch.
        grace_s: how long the batch in hand may take once a stop or a revocation is pending.
        overlap: fetch and ``prepare`` the next batch while this one is handled.
    """

    def __init__(
        self,
        kafka: KafkaOptions,
        topic: str,
        group_id: str,
        client_name: str,
        max_wait_ms: int,
        max_records: int,
        grace_s: float = 10.0,
        overlap: bool = False,
    ) -> None:
        self.kafka = kafka
        self.overlap = overlap
        self._handling: asyncio.Task | None = None  # with overlap: the batch being handled
        self._in_hand = 0
        self.topic = topic
        self.group_id = group_id
        self.max_wait_ms = max_wait_ms
        self.max_records = max_records
        self.grace_s = grace_s
        self._consumer: AIOKafkaConsumer = make_consumer(kafka, [], group_id, client_name)
        self._consumer.subscribe([topic], listener=_FinishBatchOnRevoke(self))
        self._producer: AIOKafkaProducer = make_producer(kafka, client_name)
        # Checks back off to 5 s at most while the broker is away: a broker that came back
        # without the topic gets it within seconds, not after a long back-off.
        self.broker_watch = BrokerWatch(kafka, self._consumer, topic, group_id, max_backoff_s=5.0)
        self._stop_requested = asyncio.Event()
        self._idle = asyncio.Event()  # set while no batch is in hand
        self._idle.set()
        self.dead_letters = 0
        self.last_progress = time.monotonic()

    async def _start(self) -> None:
        await self._producer.start()
        await self._consumer.start()

    async def _stop(self) -> None:
        """Closes the clients, also those never started."""
        self._stop_requested.set()
        await self._consumer.stop()
        await self._producer.stop()

    async def prepare(self, records: list) -> object:
        """First half of a batch, with ``overlap`` run while the previous batch is handled; its
        return value goes to ``handle``. Default: the records themselves."""
        return records

    async def handle(self, records) -> object:
        """Process, publish, wait for acknowledgements, then ``commit``. Subclasses implement."""
        raise NotImplementedError

    def request_stop(self) -> None:
        """Stop fetching; the batch in hand finishes (see ``run_with_grace``)."""
        self._stop_requested.set()

    @property
    def stopping(self) -> bool:
        return self._stop_requested.is_set()

    async def wait_stop(self, timeout_s: float) -> bool:
        """Sleep ``timeout_s`` or until a stop is requested; whether one was."""
        return await _wait_set(self._stop_requested, timeout_s)

    def liveness(self, timeout_s: float):
        """``/livez`` check: the consume loop came round within ``timeout_s``."""
        return progress_check(lambda: self.last_progress, time.monotonic, timeout_s)

    def assignment(self) -> set[TopicPartition]:
        """Partitions held now (none before start)."""
        return set(self._consumer.assignment()) if self.started else set()

    @property
    def idle(self) -> bool:
        """No batch in hand."""
        return self._idle.is_set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until the batch in hand is published and committed."""
        return await _wait_set(self._idle, timeout_s)

    async def run_with_grace(self, grace_s: float) -> None:
        """``run`` until stopped; once a stop is requested, give the batch in hand ``grace_s``.

        Past the deadline the batch is abandoned uncommitted: the partition's next owner
        replays it (at-least-once; deterministic ids make the replay recognisable).
        """
        task = asyncio.create_task(self.run())
        stop = asyncio.create_task(self._stop_requested.wait())
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
        """The loop of the module docstring, until ``request_stop``."""
        try:
            while not self._stop_requested.is_set():
                fetched = await fetch_batch(self._consumer, self.max_wait_ms, self.max_records)
                self.last_progress = time.monotonic()
                records = fetched.records
                self.broker_watch.check_offsets(records)
                if self._handling is not None and self._handling.done():
                    await self.settle()  # a failed batch fails the loop now, not at the next one
                if records:
                    await self._take(records)
                if fetched.unreadable:  # after the records before them are handled and committed
                    await self.settle()
                    await self.skip_unreadable(fetched.unreadable)
                elif not records:
                    await self.broker_watch.ensure_topic()
            await self.settle()
        finally:
            if self._handling is not None and not self._handling.done():
                self._handling.cancel()  # cancelled past the grace: replayed by the next owner

    async def _take(self, records: list) -> None:
        """Prepare ``records`` (overlapping the batch being handled), then handle them: inline,
        or with ``overlap`` as a task once the previous batch is committed."""
        self._idle.clear()
        self._in_hand += 1
        try:
            prepared = await self.prepare(records)
            await self.settle()
        except BaseException:
            self._done_one()
            raise
        if self.overlap:
            self._handling = asyncio.create_task(self._handle_one(prepared))
        else:
            await self._handle_one(prepared)

    async def _handle_one(self, prepared) -> None:
        """``handle``; while the broker refuses its outputs, again (``outage.until_published``)."""
        try:
            await until_published(
                lambda: self.handle(prepared), self.broker_watch, self.wait_stop, self._progressed
            )
        finally:
            self._done_one()
        self.last_progress = time.monotonic()

    def _progressed(self) -> None:
        self.last_progress = time.monotonic()

    def _done_one(self) -> None:
        self._in_hand -= 1
        if self._in_hand == 0:
            self._idle.set()

    async def settle(self) -> None:
        """Wait until the batch being handled (with ``overlap``) is committed; raise its error."""
        task, self._handling = self._handling, None
        if task is not None:
            await task

    async def skip_unreadable(self, unreadable: list[Unreadable]) -> None:
        """Dead-letter records the client cannot parse, then commit past them."""
        await dead_letter_unreadable(self._producer, self.kafka.dlq_topic, unreadable)
        self.dead_letters += len(unreadable)
        self.on_unreadable(len(unreadable))
        log.warning(
            "unreadable records dead-lettered",
            records=[f"{u.topic}/{u.partition}/{u.offset}" for u in unreadable],
        )
        await self.commit(past(unreadable))

    def on_unreadable(self, count: int) -> None:
        """Hook for metrics on dead-lettered unreadable records."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit ``offsets`` (call only after what they produced is acknowledged)."""
        return await commit_after_ack(self._consumer, self.broker_watch, offsets)
