"""Checks on frames received over HTTP: the worker's own limits, applied at the door.

What the worker would refuse (and dead-letter) is refused here with a status and a JSON detail:
413 too large (bytes or declared pixels), 415 not JPEG or PNG, 422 corrupt, undecodable or with
bad metadata. A refused frame affects no other frame.
"""

from __future__ import annotations

import asyncio
import re
import time

from fastapi import Request

from emostream.config import IngestHttpOptions
from emostream.errors import ConfigError, InvalidFrame
from emostream.frames import (
    MAX_CAPTURED_MS,
    MAX_SEQ,
    PNG_MAGIC,
    RUN_ID_RE,
    FrameMeta,
    decode_frame,
)
from emostream.ingest.stream_seq import StreamCounters

_DIGITS_RE = re.compile(r"[0-9]{1,19}")
_STATUS = {"too_large": 413, "unsupported_format": 415, "empty_payload": 422}
# What a frame's record holds besides the image: key and headers (stream id and run id at most
# 128 and 64 bytes, numbers, names) and the record batch's own overhead (about 80 bytes).
RECORD_OVERHEAD_BYTES = 1024


class FrameRefused(Exception):
    """A frame refused at the door: ``status`` is the HTTP status, ``detail`` says why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _check(payload: bytes, max_frame_bytes: int) -> str:
    try:
        decode_frame(payload, max_frame_bytes)
    except InvalidFrame as exc:
        raise FrameRefused(_STATUS.get(exc.reason, 422), str(exc)) from None
    return "image/png" if payload.startswith(PNG_MAGIC) else "image/jpeg"


def frame_limit(http: IngestHttpOptions, max_message_bytes: int) -> int:
    """The largest frame accepted: what one Kafka record of ``max_message_bytes`` holds.

    Ingest, the producer and the topic agree: a frame that passes here is never refused by
    Kafka after its body was read and decoded. A ``max_frame_bytes`` set above it is refused.
    """
    fits = max_message_bytes - RECORD_OVERHEAD_BYTES
    if http.max_frame_bytes is None:
        return fits
    if http.max_frame_bytes > fits:
        raise ConfigError(
            f"EMOSTREAM_INGEST__HTTP__MAX_FRAME_BYTES={http.max_frame_bytes} is more than one "
            f"Kafka record holds ({fits}: EMOSTREAM_KAFKA__MAX_MESSAGE_BYTES={max_message_bytes} "
            f"less {RECORD_OVERHEAD_BYTES} for key and headers): lower it, or raise both that "
            "and the topics' max.message.bytes"
        )
    return http.max_frame_bytes


async def check_frame(payload: bytes, max_frame_bytes: int) -> str:
    """The frame's content type, once it passes every check the worker makes (decoding too)."""
    if len(payload) > max_frame_bytes:  # cheap, before a thread hop
        raise FrameRefused(413, f"frame of {len(payload)} bytes exceeds {max_frame_bytes}")
    return await asyncio.to_thread(_check, payload, max_frame_bytes)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``max_bytes`` (never held whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FrameRefused(413, f"body of {declared} bytes exceeds {max_bytes}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise FrameRefused(413, f"body exceeds {max_bytes} bytes")
    return bytes(body)


def int_param(raw: str | None, name: str, maximum: int) -> int | None:
    """An optional ASCII integer 0..maximum; 422 otherwise."""
    if raw is None:
        return None
    if not _DIGITS_RE.fullmatch(raw) or int(raw) > maximum:
        raise FrameRefused(422, f"{name} must be an integer 0..{maximum}, got {raw[:32]!r}")
    return int(raw)


def frame_meta(
    stream_id: str,
    seq: str | None,
    captured_ms: str | None,
    run: str | None,
    live: bool,
    counters: StreamCounters,
) -> FrameMeta:
    """Metadata from the client's values; capture time defaults to now, seq and run to the
    stream's counter (``counters``), whose identities never repeat."""
    seq_n = int_param(seq, "seq", MAX_SEQ)
    captured = int_param(captured_ms, "captured_ms", MAX_CAPTURED_MS)
    if run is not None and not RUN_ID_RE.fullmatch(run.encode()):
        raise FrameRefused(422, "run must be 1-64 of letters, digits, '.', '_', ':', '-'")
    counted_run, seq_n = counters.take(stream_id, seq_n)
    return FrameMeta(
        stream_id,
        seq_n,
        int(time.time() * 1000) if captured is None else captured,
        live,
        run or counted_run,
    )
