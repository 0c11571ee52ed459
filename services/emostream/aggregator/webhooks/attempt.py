"""One webhook delivery: what is sent (signed headers), and its delivery-log entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emostream import tracing
from emostream.cloudevents_headers import attrs_for, http_headers
from emostream.config import AlertOptions
from emostream.schemas import AlertV1
from emostream.webhooks import signed_headers as standard_headers

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Delivery:
    rule_id: str
    url: str
    alert: AlertV1
    # The trace of the batch that raised the alert (the delivery span's parent), if any
    trace: tracing.Context | None = field(default=None, compare=False)


def signed_headers(secrets: list[str], item: Delivery, attempt: int, body: bytes) -> dict[str, str]:
    """Headers of one attempt, signed afresh (the timestamp is the send time, for receivers'
    replay windows) with every active secret; ``webhook-id`` is the alert id on every retry."""
    return {
        "Content-Type": "application/json",
        **standard_headers(secrets, item.alert.alert_id, body),
        "X-Emostream-Alert-Id": item.alert.alert_id,
        "X-Emostream-Attempt": str(attempt),
        **cloudevent_headers(item.alert),
        **({"traceparent": parent} if (parent := tracing.traceparent()) else {}),
    }


def cloudevent_headers(alert: AlertV1) -> dict[str, str]:
    """CloudEvents HTTP binary mode (``ce-id`` is the alert id, as ``webhook-id``)."""
    return http_headers(attrs_for(alert))


def new_entry(item: Delivery) -> dict[str, Any]:
    """The delivery-log entry of a delivery not yet attempted."""
    return {
        "alert_id": item.alert.alert_id,
        "url": item.url,
        "attempts": 0,
        "status_code": None,
        "error": None,
        "delivered": False,
        "delivered_at": None,
    }


def error_text(exc: BaseException, options: AlertOptions) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {options.webhook_timeout_s} s"
    return f"{type(exc).__name__}: {exc}"[:300]
