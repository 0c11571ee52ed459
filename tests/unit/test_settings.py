import pytest
from pydantic import ValidationError

from emostream.config import AggregatorSettings, IngestSettings, WorkerSettings, masked_dump


def test_defaults():
    s = WorkerSettings()
    assert s.kafka.frames_topic == "emostream.frames"
    assert s.kafka.events_topic == "emostream.events"
    assert s.kafka.dlq_topic == "emostream.dlq"
    assert s.detector.kind == "yunet_torch"


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


def _sections(module) -> dict[str, type]:
    from pydantic import BaseModel
    from pydantic_settings import BaseSettings

    return {
        name: obj
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == module.__name__
        and not issubclass(obj, BaseSettings)
    }


def test_one_naming_scheme_settings_read_the_environment_options_are_sections():
    from pydantic_settings import BaseSettings

    import emostream.config as config
    import emostream.settings as shared

    settings = {
        name
        for name, obj in vars(config).items()
        if isinstance(obj, type) and issubclass(obj, BaseSettings) and obj is not BaseSettings
    }
    assert settings == {
        "ServiceSettings",
        "IngestSettings",
        "WorkerSettings",
        "AggregatorSettings",
        "DemoSettings",
    }
    sections = {**_sections(config), **_sections(shared)}
    assert {"KafkaOptions", "RedisOptions", "LogOptions", "IngestOptions"} <= set(sections)
    assert [n for n in sections if not n.endswith("Options")] == []
    assert [n for n in vars(shared) if n.endswith("Settings")] == []


def test_services_share_one_base_and_the_demo_composes_them(monkeypatch):
    from emostream.config import DemoSettings, ServiceSettings

    for cls in (IngestSettings, WorkerSettings, AggregatorSettings):
        assert issubclass(cls, ServiceSettings) and issubclass(DemoSettings, cls)
        assert set(cls.model_fields) <= set(DemoSettings.model_fields)
    assert set(DemoSettings.model_fields) - {
        *IngestSettings.model_fields,
        *WorkerSettings.model_fields,
        *AggregatorSettings.model_fields,
    } == {"redis_mode"}
    # The same variables reach the demo, smoothing included (the worker's, not restated).
    monkeypatch.setenv("EMOSTREAM_SMOOTHING__HOLD_S", "0.9")
    monkeypatch.setenv("EMOSTREAM_API__PORT", "8123")
    demo = DemoSettings()
    assert demo.smoothing.hold_s == 0.9 and demo.api.port == 8123
    # The demo's own defaults: fewer partitions on its one-process broker.
    assert demo.kafka.topic_partitions == 2 and WorkerSettings().kafka.topic_partitions == 6


def test_no_setting_that_does_nothing():
    from emostream.config import IngestOptions

    assert "live_queue_frames" not in IngestOptions.model_fields
