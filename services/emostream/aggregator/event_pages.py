"""Paging a stream's recent events forward (``GET /v1/streams/{id}/events?after=``).

The events are a LIST, newest first, trimmed to ``max_events_per_stream`` (1000 by default):
a page reads it whole (bounded) and continues after the cursor's event (``<ms>:<event_id>``,
the capture ms and id of the last event seen), in storage order, oldest first. A cursor whose
event has been trimmed away continues with the kept events captured after its ms.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from emostream.aggregator.state.keys import stream_key


def cursor_of(event: dict[str, Any]) -> str:
    """An event's cursor: ``<capture ms>:<event_id>``."""
    ms = int(datetime.fromisoformat(event["captured_at"]).timestamp() * 1000)
    return f"{ms}:{event['event_id']}"


async def events_after(
    store: Any, stream_id: str, limit: int, after: str
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` events stored after the cursor's, oldest first, and the next cursor
    (None once caught up; ``0:`` starts at the oldest kept)."""
    docs = await store.redis.lrange(stream_key(store.key_prefix, stream_id, "events"), 0, -1)
    events = [_load(d) for d in reversed(docs)]  # oldest first
    events = [e for e in events if e is not None]
    ms, _, event_id = after.partition(":")
    start = next((i + 1 for i, e in enumerate(events) if e.get("event_id") == event_id), None)
    if start is None:
        start = next(
            (i for i, e in enumerate(events) if int(cursor_of(e).partition(":")[0]) > int(ms)),
            len(events),
        )
    page = events[start : start + limit]
    more = start + limit < len(events)
    return page, (cursor_of(page[-1]) if more and page else None)


def _load(doc: str) -> dict[str, Any] | None:
    try:
        found = json.loads(doc)
    except ValueError:
        return None
    try:
        cursor_of(found)
    except (TypeError, KeyError, ValueError):
        return None
    return found
