"""A batch whose outputs cannot be published waits for the broker instead of ending the service.

During a broker outage, or once a broker came back without its topics, sends fail
(``UnknownError``, ``UnknownTopicOrPartitionError``, timeouts) and commits retry without end
inside the client. Before, the first failed send escaped the consume loop and stopped the worker
(and with it the demo) about 25 s into an outage. Now the batch in hand is handled again, with a
capped back-off, after the topics were checked (and recreated if the broker lost them), until it
goes through or a stop is requested; a commit that does not finish within a bound is left for the
next batch's commit, which covers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiokafka.errors import KafkaError

from emostream.kafka.broker_watch import TopicWatch

log = structlog.get_logger(__name__)
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 5.0


async def until_published(
    handle: Callable[[], Awaitable[object]],
    watch: TopicWatch,
    wait_stop: Callable[[float], Awaitable[bool]],
    on_retry: Callable[[], None] = lambda: None,
) -> bool:
    """Run ``handle`` until it raises no ``KafkaError``; False if a stop came first (the batch
    is then left uncommitted: its partition's next owner replays it).

    ``handle`` must be safe to repeat: what it publishes carries deterministic ids, so a retry
    after a partial publish only makes duplicates, which downstream drops. ``on_retry`` runs
    before each wait (the loop marks its progress: a broker outage is no reason to restart it).
    """
    delay, failures = FIRST_RETRY_S, 0
    while True:
        try:
            await handle()
            if failures:
                log.info("batch published after broker errors", attempts=failures + 1)
            return True
        except KafkaError as exc:
            failures += 1
            log.warning(
                "batch publish failed, retrying",
                error=repr(exc),
                retry_in_s=delay,
                attempt=failures,
            )
        watch.check_now()
        await watch.ensure_topic()
        on_retry()
        if await wait_stop(delay):
            log.warning("stop requested during a broker outage: the batch will be replayed")
            return False
        delay = min(delay * 2, MAX_RETRY_S)


async def bounded_commit(commit: Awaitable[None], timeout_s: float) -> None:
    """``commit``, raising ``TimeoutError`` past ``timeout_s`` (the client retries a commit to a
    missing topic, or a missing coordinator, without end)."""
    async with asyncio.timeout(timeout_s):
        await commit
