"""Webhook signatures, for the aggregator that signs and for receivers that verify.

``from emostream.webhooks import verify`` is the receivers' import (see examples/).
"""

from emostream.webhooks.signing import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
)

__all__ = ["DEFAULT_TOLERANCE_S", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "verify"]
