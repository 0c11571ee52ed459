"""Activity sessions of a stream: the current one and the last ended ones."""

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from emostream.aggregator.api.deps import KnownStream, ReadBudgetScope, ReadScope, Store, StreamId
from emostream.aggregator.api.responses import Sessions, SessionView

SessionId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="Session id")]


def sessions_router(max_sessions: int) -> APIRouter:
    """``max_sessions``: the largest ``limit`` (the ended sessions kept, per stream)."""
    router = APIRouter(
        prefix="/v1/streams/{stream_id}/sessions", dependencies=[ReadScope, ReadBudgetScope]
    )

    @router.get("")
    async def sessions(
        stream_id: StreamId,
        store: Store,
        known: KnownStream,
        limit: Annotated[int, Query(ge=1, le=max_sessions)] = 20,
    ) -> Sessions:
        """Activity sessions, newest first; one ends after the configured gap without events."""
        await known(stream_id)
        items = await store.sessions(stream_id, limit, int(time.time() * 1000))
        return Sessions.model_validate(
            {
                "stream_id": stream_id,
                "session_gap_seconds": store.retention.session_gap_seconds,
                "sessions": items,
                "count": len(items),
            }
        )

    router.add_api_route("/{session_id}", session, methods=["GET"])
    return router


async def session(stream_id: StreamId, session_id: SessionId, store: Store) -> SessionView:
    found = await store.session(stream_id, session_id, int(time.time() * 1000))
    if found is None:
        raise HTTPException(404, detail=f"unknown session {session_id!r} of {stream_id!r}")
    return SessionView.model_validate(found)
