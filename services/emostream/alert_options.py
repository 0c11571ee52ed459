"""The alerts settings section (``EMOSTREAM_ALERTS__*``): webhook signing and delivery.

Kept apart from ``emostream.config`` (which re-exports it) so that module stays small.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, IPvAnyNetwork, SecretStr

from emostream.webhooks.signing import check_secret


def _webhook_secret(secret: SecretStr) -> SecretStr:
    check_secret(secret.get_secret_value())  # refused at start-up, not at the first alert
    return secret


WebhookSecret = Annotated[SecretStr, AfterValidator(_webhook_secret)]


class AlertOptions(BaseModel):
    """Rule alerts: webhook signing and delivery (the alerts topic is in the Kafka section)."""

    webhook_secret: WebhookSecret | None = Field(
        None,
        description="Standard Webhooks signing secret, whsec_ + base64 of a random key; rules "
        "with webhooks need it",
    )
    webhook_previous_secret: WebhookSecret | None = Field(
        None,
        description="While rotating: the secret being retired; each delivery is signed with both "
        "until it is unset",
    )
    webhook_timeout_s: float = Field(5.0, gt=0, le=60, description="Timeout of one webhook request")
    webhook_max_attempts: int = Field(
        5, ge=1, le=20, description="Attempts before a delivery is given up"
    )
    webhook_backoff_s: float = Field(0.5, gt=0, description="First retry delay, doubling")
    webhook_max_backoff_s: float = Field(30.0, gt=0, description="Longest delay between attempts")
    webhook_queue_size: int = Field(1000, ge=1, description="Pending deliveries; more are dropped")
    webhook_concurrency: int = Field(4, ge=1, le=64, description="Deliveries in flight at once")
    webhook_allow_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        max_length=64,
        description="Non-public networks webhooks may reach (on-premises bots), e.g. "
        '["10.20.0.0/16"]; public addresses are always allowed, others refused',
    )
    shutdown_grace_s: float = Field(5.0, ge=0, description="Time to finish queued deliveries")

    def signing_secrets(self) -> list[str]:
        """The active secrets, current first (none without ``webhook_secret``)."""
        active = [self.webhook_secret, self.webhook_previous_secret] if self.webhook_secret else []
        return [s.get_secret_value() for s in active if s is not None]
