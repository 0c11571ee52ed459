"""Per-stream reads: the stream list, state, recent events, rolling windows, current tracks."""

import math
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from emostream.aggregator.api.deps import (
    Context,
    KnownStream,
    ReadBudgetScope,
    ReadScope,
    Store,
    StreamId,
)
from emostream.aggregator.api.responses import (
    RecentEvents,
    StreamsPage,
    StreamState,
    Tracks,
    Windows,
)
from emostream.aggregator.event_pages import events_after
from emostream.aggregator.state.store import MAX_WINDOW_S

Cursor = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9.e+-]{1,32}:[A-Za-z0-9._:-]{0,128}$",
        description="next_cursor of the previous page",
    ),
]
EventsAfter = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{1,16}:[0-9a-f]{0,64}$",
        description="Page forward: events stored after the one with this ``<capture ms>:"
        "<event_id>`` (``0:`` from the oldest kept), oldest first; next_cursor is null once "
        "caught up",
    ),
]
WindowSizes = Annotated[list[int] | None, Query(description="seconds, 1-3600; repeatable")]


def streams_router(max_events_limit: int) -> APIRouter:
    """``max_events_limit``: the largest ``limit`` of the recent-events route."""
    router = APIRouter(prefix="/v1/streams", dependencies=[ReadScope, ReadBudgetScope])
    router.add_api_route("", streams, methods=["GET"])
    router.add_api_route("/{stream_id}/state", state, methods=["GET"])

    @router.get("/{stream_id}/events")
    async def events(
        stream_id: StreamId,
        store: Store,
        limit: Annotated[int, Query(ge=1, le=max_events_limit)] = 50,
        after: EventsAfter = None,
    ) -> RecentEvents:
        """The newest events, newest first; with ``after``, forward from that event."""
        cursor = None
        if after is None:
            items = await store.recent_events(stream_id, limit)
        else:
            items, cursor = await events_after(store, stream_id, limit, after)
        if not items and await store.stream_state(stream_id) is None:
            raise HTTPException(404, detail=f"unknown stream {stream_id!r}")
        return RecentEvents(stream_id=stream_id, events=items, count=len(items), next_cursor=cursor)

    router.add_api_route("/{stream_id}/windows", windows, methods=["GET"])
    router.add_api_route("/{stream_id}/tracks", tracks, methods=["GET"])
    return router


async def streams(
    store: Store, limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: Cursor = None
) -> StreamsPage:
    """Streams, most recently active first, a page at a time; idle ones leave after
    ``EMOSTREAM_AGGREGATOR__STREAM_TTL_S``."""
    _check_cursor(cursor)
    items, next_cursor = await store.streams_page(limit, cursor)
    return StreamsPage.model_validate(
        {"streams": items, "count": len(items), "next_cursor": next_cursor}
    )


def _check_cursor(cursor: str | None) -> None:
    """422 for a cursor whose score is no number (``e:x`` once reached Redis: a 503)."""
    if cursor is None:
        return
    try:
        score = float(cursor.partition(":")[0])
    except ValueError:
        score = math.nan
    if not math.isfinite(score):
        raise HTTPException(422, detail="cursor must be the next_cursor of a previous page")


async def state(stream_id: StreamId, store: Store) -> StreamState:
    found = await store.stream_state(stream_id)
    if found is None:
        raise HTTPException(404, detail=f"unknown stream {stream_id!r}")
    return StreamState.model_validate(found)


async def windows(
    stream_id: StreamId, ctx: Context, known: KnownStream, window_s: WindowSizes = None
) -> Windows:
    """Rolling windows over capture time: event counts and mean probabilities."""
    sizes, most = window_s or [10, 60, 300], ctx.max_window_sizes
    if any(not 1 <= w <= MAX_WINDOW_S for w in sizes) or len(sizes) > most:
        raise HTTPException(
            422, detail=f"window_s must be 1-{MAX_WINDOW_S}, at most {most} of them"
        )
    store = ctx.store
    await known(stream_id)
    now_ms = int(time.time() * 1000)
    found = await store.windows(stream_id, sizes, now_ms)
    return Windows.model_validate({"stream_id": stream_id, "windows": found})


async def tracks(
    stream_id: StreamId,
    store: Store,
    known: KnownStream,
    active_within_s: Annotated[float, Query(gt=0, le=3600)] = 5.0,
) -> Tracks:
    """Face tracks seen recently, each with its latest raw and smoothed emotion."""
    await known(stream_id)
    items = await store.tracks(stream_id, active_within_s, int(time.time() * 1000))
    return Tracks.model_validate({"stream_id": stream_id, "tracks": items, "count": len(items)})
