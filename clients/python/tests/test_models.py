"""Typed models parse what the aggregator publishes, and ignore fields they do not know."""

import json

import pydantic
import pytest
from emostream_client import Alert, EmotionChange, EmotionEvent
from tests_support import ALERT_JSON, CHANGE_JSON, EVENT_JSON


def test_messages_parse_into_typed_models():
    event = EmotionEvent.model_validate_json(EVENT_JSON)
    assert event.face.box.w == 95 and event.emotion.probabilities["angry"] == 0.8
    assert event.captured_at.year == 2026 and event.smoothed is None
    change = EmotionChange.model_validate_json(CHANGE_JSON)
    assert change.from_label is None and change.to_label == "angry"
    assert Alert.model_validate_json(ALERT_JSON).summary.threshold == 0.6


def test_unknown_fields_of_a_newer_producer_are_ignored():
    doc = json.loads(EVENT_JSON) | {"camera_zone": "entrance"}
    doc["face"]["landmarks"] = [[1, 2]]
    assert EmotionEvent.model_validate(doc) == EmotionEvent.model_validate_json(EVENT_JSON)


def test_the_known_fields_are_still_checked():
    doc = json.loads(EVENT_JSON)
    doc["emotion"]["label"] = "bored"
    with pytest.raises(pydantic.ValidationError):
        EmotionEvent.model_validate(doc)
