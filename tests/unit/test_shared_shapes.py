"""Shapes defined once and shared: emotion labels, the rule union, the event helpers, image
suffixes, the first-message WebSocket key, the benchmarks' common options."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Literal, get_args

import pytest
from fastapi import WebSocketDisconnect
from pydantic import TypeAdapter, ValidationError

from emostream.aggregator.rules.model import RULE, RuleSpec, new_rule
from emostream.images import IMAGE_SUFFIXES, image_paths, is_image_path
from emostream.labels import EMOTIONS, UNCERTAIN, EmotionLabel, StableLabel
from emostream.runtime.websocket import first_message_key
from emostream.schemas import AlertSummary, EmotionResult, RuleKind
from tests.synthetic import T0, make_event, probs_with


def test_emotions_are_the_label_type_in_fer2013_order():
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert EMOTIONS == get_args(EmotionLabel)
    assert get_args(StableLabel) == (EmotionLabel, Literal["uncertain"])
    assert UNCERTAIN == "uncertain"


def test_event_labels_are_checked_against_the_one_type():
    probs = probs_with("happy", 0.9)
    assert EmotionResult(label="happy", confidence=0.9, probabilities=probs).label == "happy"
    with pytest.raises(ValidationError):
        EmotionResult(label="bored", confidence=0.9, probabilities=probs)
    summary = {"source": "smoothed", "confidence": 0.5, "probabilities": probs}
    assert AlertSummary(label=UNCERTAIN, **summary).label == "uncertain"
    with pytest.raises(ValidationError):
        AlertSummary(label="bored", **summary)


def test_event_helpers_capture_ms_track_key_and_order():
    ev = make_event(1.5, track="t7", seq=3, face_index=2)
    assert ev.captured_ms == int((T0 + timedelta(seconds=1.5)).timestamp() * 1000)
    assert ev.track_key == "t7"
    assert make_event(0, track=None, face_index=2).track_key == "face-2"
    later_face = make_event(1.5, seq=3, face_index=3)
    earlier = make_event(1.0, seq=9)
    order = sorted([later_face, ev, earlier], key=lambda e: e.capture_order)
    assert order == [earlier, ev, later_face]


def test_event_helpers_stay_off_the_wire():
    doc = json.loads(make_event(1.0).model_dump_json())
    assert not {"captured_ms", "track_key", "capture_order"} & set(doc)


def _spec(kind: str) -> dict:
    if kind == "probability_above":
        return {"kind": kind, "name": "n", "emotions": ["sad"], "threshold": 0.5, "for_seconds": 1}
    return {"kind": kind, "name": "n"}


@pytest.mark.parametrize("kind", get_args(RuleKind))
def test_every_alert_kind_is_a_rule_kind_of_the_one_union(kind):
    rule = new_rule(TypeAdapter(RuleSpec).validate_python(_spec(kind)))
    assert rule.kind == kind
    assert RULE.validate_json(rule.model_dump_json()) == rule


def test_the_rule_union_has_no_kind_the_alerts_lack():
    with pytest.raises(ValidationError):
        TypeAdapter(RuleSpec).validate_python({"kind": "faces_above", "name": "n"})


def test_image_suffixes_one_set_for_every_reader(tmp_path: Path):
    from emostream.cli import predict
    from emostream.ingest import sources

    assert sources.IMAGE_SUFFIXES is IMAGE_SUFFIXES
    assert not hasattr(predict, "IMAGE_SUFFIXES")
    assert is_image_path("A/B.JPG") and is_image_path("x.tiff") and not is_image_path("x.txt")
    for name in ("b.png", "a.jpeg", "notes.txt", "c.WEBP"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in image_paths(tmp_path.iterdir())] == ["a.jpeg", "b.png", "c.WEBP"]


class _FakeSocket:
    def __init__(self, message: str | None = None, error: BaseException | None = None) -> None:
        self.message, self.error = message, error

    async def receive_text(self) -> str:
        if self.error is not None:
            raise self.error
        if self.message is None:
            await asyncio.sleep(10)
        return self.message or ""


@pytest.mark.parametrize(
    ("socket", "expected"),
    [
        (_FakeSocket('{"api_key": "k1"}'), "k1"),
        (_FakeSocket('{"api_key": ""}'), None),
        (_FakeSocket('["k1"]'), None),
        (_FakeSocket("not json"), None),
        (_FakeSocket(error=WebSocketDisconnect()), None),
        (_FakeSocket(None), None),  # nothing within the timeout
    ],
)
async def test_first_message_key(socket, expected):
    assert await first_message_key(socket, timeout_s=0.05) == expected


def test_benchmarks_share_json_and_seed_options():
    from emostream.bench import detect, fuzz, soak

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="bench")
    for module in (detect, fuzz, soak):
        module.register(sub)
    args = parser.parse_args(["fuzz-frames", "--json", "--seed", "3", "--cases", "5"])
    assert (args.json, args.seed, args.cases, args.func) == (True, 3, 5, fuzz.run_bench_fuzz)
    assert parser.parse_args(["soak"]).json is False
    with pytest.raises(SystemExit):
        parser.parse_args(["soak", "--seed", "1"])  # soak has no randomness to seed


def test_train_recipes_match_the_trainer():
    from emostream.cli.train import RECIPES_HELP
    from emostream.training.trainer import RECIPES

    assert tuple(RECIPES_HELP) == RECIPES


def test_run_topics_name_every_kafka_topic_once_per_run():
    from emostream.local.topics import run_topics
    from emostream.settings import KafkaOptions

    topics = run_topics("ab12", "soak-")
    assert set(topics) == {f for f in KafkaOptions.model_fields if f.endswith("_topic")}
    assert topics["dlq_topic"] == "soak-dlq-ab12"
    assert len(set(run_topics().values()) | set(run_topics().values())) == 2 * len(topics)


def test_log_tails_show_each_service_s_last_lines(tmp_path: Path):
    from emostream.local.stack import log_tails, worker_and_aggregator

    services = worker_and_aggregator({}, tmp_path)
    assert services.metrics_port != services.api_port
    (tmp_path / "worker.log").write_text("one\ntwo\nthree\n")
    assert log_tails(services[:2], lines=2) == "--- emostream worker (exit None) ---\ntwo\nthree"
