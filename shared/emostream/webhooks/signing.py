"""Webhook signatures per Standard Webhooks (https://www.standardwebhooks.com), sender and receiver.

Each request carries ``webhook-id`` (the alert id, the same on every retry), ``webhook-timestamp``
(Unix seconds of this attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` over
``f"{id}.{timestamp}.".encode() + body``, one per active secret, space-separated, so that a secret
can be rotated while receivers still hold the previous one. Secrets are ``whsec_`` + base64 of the
key; any other string is read as the ``standardwebhooks`` library reads it (as base64), so a
receiver verifying with ``standardwebhooks.Webhook(secret)`` and the same string always agrees.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300


def new_secret(n_bytes: int = 32) -> str:
    """A fresh random secret in the Standard Webhooks form, ``whsec_<base64 key>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(n_bytes)).decode()


def secret_key(secret: str | bytes) -> bytes:
    """The HMAC key of ``secret``, derived exactly as the ``standardwebhooks`` library does.

    Args:
        secret: ``whsec_<base64>`` (or bare base64) as configured, or the raw key as bytes.

    Returns:
        The key bytes.

    Raises:
        ValueError: The string is not base64, or its key is empty.
    """
    try:
        return Webhook(secret)._whsecret
    except (binascii.Error, EmptyWebhookSecretError, RuntimeError) as exc:
        raise ValueError(
            f"not a Standard Webhooks secret ({type(exc).__name__}): use whsec_ + base64 of a "
            "random key, e.g. whsec_$(openssl rand -base64 32)"
        ) from None


def check_secret(secret: str) -> str:
    """``secret`` if a key can be read from it (``secret_key``), else ValueError."""
    secret_key(secret)
    return secret


def sign(secret: str | bytes, msg_id: str, ts: int, body: bytes) -> str:
    """One signature, ``v1,<base64>``, of ``body`` sent as message ``msg_id`` at ``ts``.

    Args:
        secret: ``whsec_<base64>`` as configured, or the raw key as bytes.
        msg_id: The ``webhook-id`` header value.
        ts: Unix time in whole seconds, the ``webhook-timestamp`` header value.
        body: The raw request body (bytes as sent, not re-serialised JSON).

    Returns:
        The signature as it appears in ``webhook-signature``.
    """
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(int(ts), UTC), body)


def signed_headers(
    secrets_: Sequence[str | bytes], msg_id: str, body: bytes, now_s: float | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt, signed with every active secret.

    Args:
        secrets_: The active secrets, current first (two while one is being rotated out).
        msg_id: The message id; the same on retries, so receivers can deduplicate.
        body: The raw request body.
        now_s: The send time (default: ``time.time()``); for tests.

    Returns:
        ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (space-separated).
    """
    ts = int(time.time() if now_s is None else now_s)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: " ".join(sign(s, msg_id, ts, body) for s in secrets_),
    }


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now_s: float | None = None,
) -> bool:
    """Whether a request's Standard Webhooks headers are a valid, recent signature of ``body``.

    Args:
        secret: The receiver's secret (``whsec_...``), or the raw key as bytes.
        headers: The request headers (any case; a plain dict or an HTTP library's headers).
        body: The raw request body as received.
        tolerance_s: Largest accepted difference between the timestamp and now, either way.
        now_s: The current Unix time (default: ``time.time()``); for tests.

    Returns:
        False for missing or malformed headers, a stale or future timestamp, or no signature
        that matches (each compared in constant time); True otherwise. Never raises for what a
        sender controls.
    """
    lowered = {str(k).lower(): v for k, v in headers.items()}
    msg_id = lowered.get(ID_HEADER)
    ts = lowered.get(TIMESTAMP_HEADER)
    signatures = (lowered.get(SIGNATURE_HEADER) or "").split()
    if not (msg_id and ts and signatures) or not (ts.isascii() and ts.isdigit()):
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - int(ts)) > tolerance_s:
        return False
    expected = sign(secret, msg_id, int(ts), body).encode()
    return any(hmac.compare_digest(expected, s.encode()) for s in signatures)
