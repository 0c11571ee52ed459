"""WebSocket helpers shared by the HTTP servers (the aggregator's live feed, ingest's upload)."""

from __future__ import annotations

import asyncio
import json

from fastapi import WebSocket, WebSocketDisconnect

AUTH_TIMEOUT_S = 5.0  # how long a client has to send its first-message key


async def first_message_key(ws: WebSocket, timeout_s: float = AUTH_TIMEOUT_S) -> str | None:
    """The ``api_key`` of a first ``{"api_key": "..."}`` text message; None if none comes in time.

    Browsers cannot set headers on a WebSocket, so a key-protected socket reads its key from
    the first message instead of ``X-API-Key``.
    """
    try:
        doc = json.loads(await asyncio.wait_for(ws.receive_text(), timeout_s))
    except (TimeoutError, ValueError, KeyError, WebSocketDisconnect, RuntimeError):
        return None
    key = doc.get("api_key") if isinstance(doc, dict) else None
    return key if isinstance(key, str) and key else None
