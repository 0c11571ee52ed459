"""Polling for integration tests: wait until a condition holds, or fail saying what did not."""

from __future__ import annotations

import asyncio
import time


async def wait_until(predicate, timeout_s: float, what: str = "condition", interval_s: float = 0.5):
    """Call ``predicate`` (sync or async) until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(interval_s)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def wait_until_sync(predicate, timeout_s: float, what: str = "condition", interval_s: float = 0.5):
    """``wait_until`` for synchronous tests: poll ``predicate`` until truthy; return that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval_s)
    raise AssertionError(f"{what}: not within {timeout_s} s")
