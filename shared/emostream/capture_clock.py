"""Capture times clamped to a small skew ahead of this machine's clock (issue 33, 11).

A client or camera clock far ahead (or a forged capture time) would otherwise keep a session
"active" until that time, absorb the events that follow, and pin its stream first in the stream
list. Ingest clamps the capture times clients give; the aggregator clamps the events it parses.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from prometheus_client import Counter

DEFAULT_MAX_AHEAD_S = 5.0
CLAMPED = Counter(
    "emostream_capture_times_clamped_total",
    "Capture times further ahead of this clock than the allowed skew, moved back to it",
    ["where"],
)


class _Captured(Protocol):
    @property
    def captured_at(self) -> datetime: ...

    def model_copy(self, *, update: dict) -> _Captured: ...


C = TypeVar("C", bound=_Captured)


def clamp_capture_ms(
    captured_ms: int, max_ahead_s: float, where: str, now_ms: int | None = None
) -> int:
    """``captured_ms``, or now + ``max_ahead_s`` when it is further ahead (counted)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    latest = now_ms + int(max_ahead_s * 1000)
    if captured_ms <= latest:
        return captured_ms
    CLAMPED.labels(where).inc()
    return latest


def clamp_captures(items: list[C], max_ahead_s: float, where: str) -> list[C]:
    """``items`` (events) with capture times past now + ``max_ahead_s`` moved back to it."""
    latest = datetime.now(UTC) + timedelta(seconds=max_ahead_s)
    out: list[C] = []
    for item in items:
        if item.captured_at > latest:
            CLAMPED.labels(where).inc()
            item = item.model_copy(update={"captured_at": latest})  # type: ignore[assignment]
        out.append(item)
    return out
