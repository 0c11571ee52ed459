"""Webhook verification against the Standard Webhooks test vector and emostream's headers."""

import pytest
from emostream_client import InvalidSignature, parse_alert, verify
from tests_support import ALERT_JSON

# The Standard Webhooks specification's own example.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"test": 2432232314}'
HEADERS = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
NOW = 1614265330 + 10


def test_the_specifications_example_verifies():
    assert verify(SECRET, HEADERS, BODY, now_s=NOW)
    assert verify(SECRET, {k.title(): v for k, v in HEADERS.items()}, BODY, now_s=NOW)


def test_either_of_two_signatures_verifies_during_a_rotation():
    rotated = HEADERS | {"webhook-signature": "v1,bm90LXRoaXMtb25l " + HEADERS["webhook-signature"]}
    assert verify(SECRET, rotated, BODY, now_s=NOW)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (HEADERS, BODY + b" "),
        (HEADERS | {"webhook-id": "msg_other"}, BODY),
        (HEADERS | {"webhook-timestamp": "1614265331"}, BODY),
        (HEADERS | {"webhook-timestamp": "soon"}, BODY),
        ({k: v for k, v in HEADERS.items() if k != "webhook-signature"}, BODY),
        ({}, BODY),
    ],
)
def test_tampered_or_missing_headers_are_false_not_errors(headers, body):
    assert not verify(SECRET, headers, body, now_s=NOW)


def test_wrong_secret_and_stale_timestamp():
    assert not verify("whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==", HEADERS, BODY, now_s=NOW)
    assert not verify(SECRET, HEADERS, BODY, now_s=1614265330 + 301)


def test_parse_alert_returns_the_typed_alert_or_raises():
    with pytest.raises(InvalidSignature):
        parse_alert(SECRET, {}, ALERT_JSON.encode())
    import base64
    import hashlib
    import hmac
    import time

    ts = str(int(time.time()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"a1.{ts}.".encode() + ALERT_JSON.encode(), hashlib.sha256).digest()
    headers = {
        "webhook-id": "a1",
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    alert = parse_alert(SECRET, headers, ALERT_JSON.encode())
    assert alert.kind == "probability_above" and alert.summary.emotions == ["angry"]
