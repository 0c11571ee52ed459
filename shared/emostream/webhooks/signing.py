"""Webhook signatures: HMAC-SHA256 over ``f"{timestamp}.{body}"``, shared by sender and receivers.

The sender puts the Unix time (integer seconds) in ``X-Emostream-Timestamp`` and
``sha256=<hex digest>`` in ``X-Emostream-Signature``. Signing the timestamp with the body lets a
receiver refuse replays of an old, captured request (``tolerance_s``).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Emostream-Signature"
TIMESTAMP_HEADER = "X-Emostream-Timestamp"
DEFAULT_TOLERANCE_S = 300


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, ts: int | str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``ts``.

    Args:
        secret: The shared webhook secret.
        ts: Unix time in whole seconds, exactly as sent in ``X-Emostream-Timestamp``.
        body: The raw request body (bytes as sent, not re-serialised JSON).

    Returns:
        ``"sha256=<hex>"``, the HMAC-SHA256 of ``f"{ts}.".encode() + body``.
    """
    mac = hmac.new(_secret_bytes(secret), f"{ts}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str | bytes,
    ts: int | str | None,
    body: bytes,
    header: str | None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now_s: float | None = None,
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` at ``ts``, made recently.

    Args:
        secret: The shared webhook secret.
        ts: The ``X-Emostream-Timestamp`` header value.
        body: The raw request body as received.
        header: The ``X-Emostream-Signature`` header value.
        tolerance_s: Largest accepted difference between ``ts`` and now, either way.
        now_s: The current Unix time (default: ``time.time()``); for tests.

    Returns:
        False for a missing or malformed header or timestamp, a stale or future timestamp, or a
        signature that does not match (compared in constant time); True otherwise.
    """
    if not header or ts is None:
        return False
    try:
        ts_int = int(ts)
    except (TypeError, ValueError):
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - ts_int) > tolerance_s:
        return False
    expected = sign(secret, str(ts), body)  # the header as sent: it is what was signed
    return hmac.compare_digest(expected.encode(), header.strip().encode())
