import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from emostream.cli.main import main
from emostream.models.registry import EMOTIONS
from emostream.schemas import EmotionEventV1, json_schemas


def make_event(**over) -> dict:
    probs = dict.fromkeys(EMOTIONS, 0.05)
    probs["happy"] = 0.7
    doc = {
        "event_id": EmotionEventV1.make_id("cam-1", 7, 0),
        "stream_id": "cam-1",
        "frame_seq": 7,
        "captured_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
        "processed_at": datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC).isoformat(),
        "face": {"index": 0, "box": {"x": 1, "y": 2, "w": 30, "h": 40}, "detector_score": 0.9},
        "emotion": {"label": "happy", "confidence": 0.7, "probabilities": probs},
        "model": {"name": "rmn_compact", "version": "v1", "trained": True},
    }
    doc.update(over)
    return doc


def test_valid_event_round_trips():
    ev = EmotionEventV1.model_validate(make_event())
    again = EmotionEventV1.model_validate_json(ev.model_dump_json())
    assert again == ev
    assert ev.schema_version == 1
    assert list(ev.emotion.probabilities) == list(EMOTIONS)


def test_probabilities_must_sum_to_one():
    doc = make_event()
    doc["emotion"]["probabilities"]["happy"] = 0.9
    with pytest.raises(ValidationError, match="sum to 1"):
        EmotionEventV1.model_validate(doc)


def test_label_must_be_most_probable():
    doc = make_event()
    doc["emotion"]["label"] = "sad"
    with pytest.raises(ValidationError, match="most probable"):
        EmotionEventV1.model_validate(doc)


def test_all_seven_classes_in_order_required():
    doc = make_event()
    del doc["emotion"]["probabilities"]["fear"]
    with pytest.raises(ValidationError):
        EmotionEventV1.model_validate(doc)


def test_unknown_fields_and_bad_boxes_rejected():
    with pytest.raises(ValidationError):
        EmotionEventV1.model_validate(make_event(extra="x"))
    doc = make_event()
    doc["face"]["box"]["w"] = 0
    with pytest.raises(ValidationError):
        EmotionEventV1.model_validate(doc)


def test_event_id_is_deterministic_and_distinct():
    a = EmotionEventV1.make_id("cam", 1, 0)
    assert a == EmotionEventV1.make_id("cam", 1, 0)
    assert (
        len(
            {
                a,
                EmotionEventV1.make_id("cam", 1, 1),
                EmotionEventV1.make_id("cam", 2, 0),
                EmotionEventV1.make_id("cam2", 1, 0),
            }
        )
        == 4
    )


def test_schema_command_prints_json_schemas(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json_schemas()
    props = printed["EmotionEventV1"]["properties"]
    for field in (
        "schema_version",
        "event_id",
        "stream_id",
        "frame_seq",
        "captured_at",
        "processed_at",
        "face",
        "emotion",
        "model",
    ):
        assert field in props


@pytest.mark.parametrize("field", ["captured_at", "processed_at"])
def test_naive_datetimes_are_refused(field):
    # Mixed with aware ones in a batch, naive times raised while the aggregator stored it.
    with pytest.raises(ValidationError, match="timezone"):
        EmotionEventV1.model_validate(make_event(**{field: "2026-01-01T00:00:00"}))


@pytest.mark.parametrize(
    "captured_at", ["9999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "1969-12-31T23:59:59Z"]
)
def test_implausible_capture_times_are_refused(captured_at):
    with pytest.raises(ValidationError, match="capture time"):
        EmotionEventV1.model_validate(make_event(captured_at=captured_at))


@pytest.mark.parametrize("stream_id", ["cam-1\n", "<script>", "cam 1", "a" * 129])
def test_stream_ids_on_the_events_topic_are_matched_in_full(stream_id):
    with pytest.raises(ValidationError, match="stream_id"):
        EmotionEventV1.model_validate(make_event(stream_id=stream_id))


@pytest.mark.parametrize("track_id", ['<img src=x onerror="alert(1)">', "t 1", "t\n", ""])
def test_track_ids_are_plain_ids(track_id):
    face = {
        "index": 0,
        "box": {"x": 1, "y": 2, "w": 30, "h": 40},
        "detector_score": 0.9,
        "track_id": track_id,
    }
    with pytest.raises(ValidationError, match="track_id"):
        EmotionEventV1.model_validate(make_event(face=face))
