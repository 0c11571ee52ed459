"""Webhook signatures (Standard Webhooks), for the aggregator that signs and receivers that verify.

``from emostream.webhooks import verify`` is the receivers' import (see examples/); receivers
without emostream verify with the ``standardwebhooks`` library or the README's snippet.

Which is which: this package only signs and verifies (library, what receivers import); the
delivery of alerts (URL checks, address guard, retries) is ``emostream.aggregator.webhooks``.
"""

from emostream.webhooks.signing import (
    DEFAULT_TOLERANCE_S,
    ID_HEADER,
    SECRET_PREFIX,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_secret,
    new_secret,
    secret_key,
    sign,
    signed_headers,
    verify,
)

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "ID_HEADER",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "check_secret",
    "new_secret",
    "secret_key",
    "sign",
    "signed_headers",
    "verify",
]
