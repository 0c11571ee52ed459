"""Schema evolution (docs/EVENTS.md): published schemas accept unknown fields, producers stay
strict, and the snapshot check fails on incompatible changes."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from emostream.labels import StableLabel
from emostream.schema_compat import check_snapshots, incompatibilities, write_snapshots
from emostream.schemas import AlertV1, EmotionChangeV1, EmotionEventV1, json_schemas
from tests.synthetic import make_event

SNAPSHOTS = Path(__file__).resolve().parents[1] / "schemas" / "events"


def schema(model: type[BaseModel]) -> dict:
    return json.loads(json.dumps(model.model_json_schema()))


def test_the_published_schemas_are_compatible_with_the_committed_snapshots():
    assert check_snapshots(json_schemas(), SNAPSHOTS) == []
    assert {p.stem for p in SNAPSHOTS.glob("*.json")} == set(json_schemas())


def test_an_event_with_an_extra_field_validates_against_the_published_schema():
    doc = json.loads(make_event(t_s=1.0).model_dump_json())
    doc["region"] = "eu-west"  # a field a later v1 might add
    doc["face"]["landmarks"] = [[1, 2]]
    jsonschema.validate(doc, json_schemas()["EmotionEventV1"])
    with pytest.raises(jsonschema.ValidationError):  # the schema published before refused it
        jsonschema.validate(doc, EmotionEventV1.model_json_schema())
    with pytest.raises(jsonschema.ValidationError):  # still checked: the fields it knows
        jsonschema.validate(doc | {"frame_seq": "x"}, json_schemas()["EmotionEventV1"])


def test_producers_stay_strict_and_consumers_ignore_unknown_fields():
    doc = json.loads(make_event(t_s=1.0).model_dump_json()) | {"region": "eu-west"}
    with pytest.raises(ValidationError, match="region"):
        EmotionEventV1.model_validate(doc)  # what a producer builds: a typo is an error
    parsed = EmotionEventV1.model_validate_json(json.dumps(doc), extra="ignore")
    assert parsed == make_event(t_s=1.0)


class EventWithOptional(EmotionEventV1):
    camera_zone: str | None = None


class EventWithRequired(EmotionEventV1):
    tenant_id: str


class EventRetyped(EmotionEventV1):
    frame_seq: str  # type: ignore[assignment]


class ChangeNarrowed(EmotionChangeV1):
    to_label: Literal["happy", "sad"]  # type: ignore[assignment]


class ChangeWidened(EmotionChangeV1):
    to_label: StableLabel | Literal["bored"]  # type: ignore[assignment]


def test_a_new_optional_field_is_compatible():
    assert incompatibilities(schema(EmotionEventV1), schema(EventWithOptional)) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (EmotionEventV1, EventWithRequired, "$.tenant_id: new required field"),
        (EmotionEventV1, EventRetyped, "$.frame_seq: type changed"),
        (EmotionChangeV1, ChangeNarrowed, "$.to_label: enum narrowed"),
        (EmotionChangeV1, ChangeWidened, "$.to_label: enum widened"),
    ],
)
def test_incompatible_model_changes_are_reported(old, new, expected):
    found = incompatibilities(schema(old), schema(new))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_removed_and_loosened_fields_are_reported_in_nested_models():
    old = schema(AlertV1)
    new = copy.deepcopy(old)
    del new["$defs"]["AlertSummary"]["properties"]["score"]  # a field removed
    new["required"].remove("rule_name")  # a required field made optional
    assert incompatibilities(old, new) == [
        "$.rule_name: required field made optional",
        "$.summary.score: field removed",
    ]


def test_the_cli_check_fails_on_an_incompatible_change(tmp_path):
    """What CI runs: `emostream schema --check DIR` exits 1 and names the change."""
    write_snapshots(json_schemas(), tmp_path)
    cmd = [sys.executable, "-m", "emostream.cli.main", "schema", "--check", str(tmp_path)]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=60).returncode == 0
    snap = tmp_path / "EmotionEventV1.json"
    doc = json.loads(snap.read_text())
    doc["properties"]["retired_field"] = {"type": "string"}  # published before, gone now
    snap.write_text(json.dumps(doc))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "EmotionEventV1.retired_field: field removed" in done.stderr
