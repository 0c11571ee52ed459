"""The light client (clients/python) agrees with the service: its models have the published
fields and types, it verifies the aggregator's webhook signatures, it reads live messages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from emostream.schema_compat import incompatibilities
from emostream.schemas import AlertV1, EmotionChangeV1, EmotionEventV1, LiveMessageV1
from emostream.webhooks import new_secret, signed_headers
from tests.synthetic import make_event
from tests.unit.test_webhooks import make_alert

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))
import emostream_client as client  # noqa: E402


@pytest.mark.parametrize(
    ("server", "ours"),
    [
        (EmotionEventV1, client.EmotionEvent),
        (EmotionChangeV1, client.EmotionChange),
        (AlertV1, client.Alert),
        (LiveMessageV1, client.LiveMessage),
    ],
)
def test_client_models_have_the_published_fields_and_types(server, ours):
    assert incompatibilities(server.model_json_schema(), ours.model_json_schema()) == []


def test_client_models_read_what_the_service_writes():
    event = make_event(t_s=1.0)
    parsed = client.EmotionEvent.model_validate_json(event.model_dump_json())
    assert json.loads(parsed.model_dump_json()) == json.loads(event.model_dump_json())
    alert = make_alert()
    assert client.Alert.model_validate_json(alert.model_dump_json()).alert_id == alert.alert_id


def test_client_verifies_the_aggregators_signatures_with_rotation():
    current, previous = new_secret(), new_secret()
    body = make_alert().model_dump_json().encode()
    headers = signed_headers([current, previous], "a" * 32, body)
    assert client.verify(current, headers, body) and client.verify(previous, headers, body)
    assert not client.verify(new_secret(), headers, body)
    assert client.parse_alert(previous, headers, body).alert_id == "a" * 32
    with pytest.raises(client.InvalidSignature):
        client.parse_alert(current, headers, body + b" ")


def test_client_reads_a_typed_live_message():
    event = make_event(t_s=1.0)
    message = LiveMessageV1(type="event", stream_id=event.stream_id, data=event)
    (_, name, data), *_ = client.parse_sse(
        ["event: emotion", f"data: {message.model_dump_json()}", ""]
    )
    from emostream_client.client import live_message

    parsed = live_message(name, data)
    assert parsed is not None and parsed.type == "event"
    assert parsed.data.event_id == event.event_id
