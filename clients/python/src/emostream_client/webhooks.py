"""Verify emostream webhooks (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``), with the standard library only."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from emostream_client.models import Alert

DEFAULT_TOLERANCE_S = 300


class InvalidSignature(Exception):
    """The request is not a valid, recent webhook signed with the secret."""


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        return secret
    try:
        return base64.b64decode(secret.removeprefix("whsec_") + "==")
    except (binascii.Error, ValueError):
        raise ValueError(
            "the webhook secret is whsec_ + base64, as the aggregator is given"
        ) from None


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now_s: float | None = None,
) -> bool:
    """True if ``body`` carries a valid signature made with ``secret`` within ``tolerance_s``.

    ``headers``: the request's headers, any case. During a secret rotation the aggregator signs
    with both secrets; either one verifies. Never raises for what the sender controls.
    """
    lowered = {str(k).lower(): v for k, v in headers.items()}
    msg_id, ts = lowered.get("webhook-id"), lowered.get("webhook-timestamp") or ""
    signatures = (lowered.get("webhook-signature") or "").split()
    if not (msg_id and ts.isascii() and ts.isdigit() and signatures):
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - int(ts)) > tolerance_s:
        return False
    mac = hmac.new(_key(secret), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    return any(hmac.compare_digest(expected.encode(), s.encode()) for s in signatures)


def parse_alert(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> Alert:
    """The alert a webhook request carries, once its signature verifies.

    Raises:
        InvalidSignature: The signature is missing, wrong or too old (answer 401).
    """
    if not verify(secret, headers, body, tolerance_s):
        raise InvalidSignature("missing, invalid or stale webhook signature")
    return Alert.model_validate_json(body)
