import pytest
from pydantic import ValidationError

from emostream.config import AggregatorSettings, IngestSettings, WorkerSettings, masked_dump


def test_defaults():
    s = WorkerSettings()
    assert s.kafka.frames_topic == "emostream.frames"
    assert s.kafka.events_topic == "emostream.events"
    assert s.kafka.dlq_topic == "emostream.dlq"
    assert s.detector.kind == "haar"


def test_env_prefix_and_nesting(monkeypatch):
    monkeypatch.setenv("EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS", "broker:29092")
    monkeypatch.setenv("EMOSTREAM_KAFKA__EVENTS_TOPIC", "ev")
    monkeypatch.setenv("EMOSTREAM_INGEST__FPS", "2.5")
    s = IngestSettings()
    assert s.kafka.bootstrap_servers == "broker:29092"
    assert s.kafka.events_topic == "ev"
    assert s.ingest.fps == 2.5


def test_invalid_values_are_clear_errors(monkeypatch):
    monkeypatch.setenv("EMOSTREAM_INGEST__FPS", "0")
    with pytest.raises(ValidationError, match="fps"):
        IngestSettings()


def test_secrets_are_masked(monkeypatch):
    monkeypatch.setenv("EMOSTREAM_REDIS__URL", "redis://:hunter2@redis:6379/0")
    s = AggregatorSettings()
    assert s.redis.url.get_secret_value().endswith("redis:6379/0")
    assert "hunter2" not in str(masked_dump(s))
