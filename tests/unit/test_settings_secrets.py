"""Placeholder secrets (``change-me``) are refused beyond loopback and warned about on it."""

import asyncio

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from emostream.config import AggregatorSettings, DemoSettings, IngestSettings, WorkerSettings
from emostream.errors import ConfigError
from emostream.runtime.api_keys import is_loopback
from emostream.runtime.secret_check import placeholder_secrets, refuse_placeholder_secrets
from emostream.settings import KafkaOptions, RedisOptions


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("kafka", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_is_decided_from_the_string(host, loopback):
    assert is_loopback(host) is loopback


def test_kafka_and_redis_hosts_are_parsed_from_the_settings():
    kafka = KafkaOptions(bootstrap_servers="kafka-0:9092, [::1]:9093,10.1.2.3:9094,broker")
    assert kafka.hosts() == ["kafka-0", "::1", "10.1.2.3", "broker"]
    assert RedisOptions(url=SecretStr("redis://:pw@redis:6379/0")).host() == "redis"
    assert RedisOptions(url=SecretStr("rediss://[::1]:6380")).host() == "::1"
    assert RedisOptions(url=SecretStr("unix:///run/redis.sock")).host() == "localhost"


def _aggregator(monkeypatch, host: str = "127.0.0.1") -> AggregatorSettings:
    monkeypatch.setenv("EMOSTREAM_API__HOST", host)
    monkeypatch.setenv("EMOSTREAM_API__READ_KEYS", '["change-me-read-0001", "a-real-key-0001"]')
    monkeypatch.setenv("EMOSTREAM_API__ADMIN_KEYS", '["a-real-admin-key"]')
    monkeypatch.setenv("EMOSTREAM_ALERTS__WEBHOOK_SECRET", "CHANGE-ME-webhook")
    monkeypatch.setenv("EMOSTREAM_REDIS__URL", "redis://:change_me@127.0.0.1:6379/0")
    return AggregatorSettings()


def test_placeholders_are_found_by_variable_name(monkeypatch):
    assert placeholder_secrets(_aggregator(monkeypatch)) == [
        "EMOSTREAM_REDIS__URL",
        "EMOSTREAM_API__READ_KEYS",
        "EMOSTREAM_ALERTS__WEBHOOK_SECRET",
    ]
    assert placeholder_secrets(AggregatorSettings.model_construct()) == []  # the defaults


def test_placeholders_on_loopback_start_with_a_warning(monkeypatch):
    settings = _aggregator(monkeypatch)
    with capture_logs() as logs:
        allowed = refuse_placeholder_secrets(settings, settings.reached_hosts())
    assert "EMOSTREAM_API__READ_KEYS" in allowed
    assert [e["log_level"] for e in logs] == ["warning"]
    assert "EMOSTREAM_ALERTS__WEBHOOK_SECRET" in logs[0]["variables"]


def test_placeholders_beyond_loopback_are_refused_naming_the_setting(monkeypatch):
    settings = _aggregator(monkeypatch, host="0.0.0.0")
    with pytest.raises(ConfigError) as caught:
        refuse_placeholder_secrets(settings, settings.reached_hosts())
    message = str(caught.value)
    assert "EMOSTREAM_API__READ_KEYS" in message and "EMOSTREAM_REDIS__URL" in message
    assert "0.0.0.0" in message and "openssl rand -hex 32" in message
    assert "change-me-read-0001" not in message  # the value itself is never shown


def test_real_secrets_beyond_loopback_start_silently(monkeypatch):
    monkeypatch.setenv("EMOSTREAM_API__HOST", "0.0.0.0")
    monkeypatch.setenv("EMOSTREAM_API__READ_KEYS", '["5f0c0b8e9a7d4c3b2a1f"]')
    settings = AggregatorSettings()
    with capture_logs() as logs:
        assert refuse_placeholder_secrets(settings, settings.reached_hosts()) == []
    assert logs == []


def test_each_service_names_the_hosts_it_reaches(monkeypatch):
    monkeypatch.setenv("EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("EMOSTREAM_REDIS__URL", "redis://redis:6379/0")
    monkeypatch.setenv("EMOSTREAM_API__HOST", "0.0.0.0")
    monkeypatch.setenv("EMOSTREAM_INGEST__HTTP__HOST", "0.0.0.0")
    assert WorkerSettings().reached_hosts() == ["kafka"]
    assert IngestSettings().reached_hosts() == ["kafka"]  # the HTTP port is off by default
    monkeypatch.setenv("EMOSTREAM_INGEST__HTTP__PORT", "8001")
    assert IngestSettings().reached_hosts() == ["kafka", "0.0.0.0"]
    assert AggregatorSettings().reached_hosts() == ["kafka", "redis", "0.0.0.0"]
    # The demo runs its own broker; its API and capture page are what it exposes.
    assert DemoSettings().reached_hosts() == ["0.0.0.0", "0.0.0.0"]


def test_a_kafka_password_placeholder_is_refused_for_a_remote_broker(monkeypatch):
    monkeypatch.setenv("EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS", "kafka.example.net:9093")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SASL_USERNAME", "emostream")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SASL_PASSWORD", "change-me")
    settings = WorkerSettings()
    with pytest.raises(ConfigError, match="EMOSTREAM_KAFKA__SASL_PASSWORD"):
        refuse_placeholder_secrets(settings, settings.reached_hosts())


def test_services_refuse_before_connecting(monkeypatch):
    # Kafka on a closed port: were the check not first, the error would be a connection one.
    monkeypatch.setenv("EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("EMOSTREAM_INGEST__HTTP__PORT", "8001")
    monkeypatch.setenv("EMOSTREAM_INGEST__HTTP__HOST", "0.0.0.0")
    monkeypatch.setenv("EMOSTREAM_INGEST__API_KEYS", '["change-me-ingest"]')
    from emostream.aggregator.main import run_aggregator
    from emostream.ingest.main import run_ingest

    with pytest.raises(ConfigError, match="EMOSTREAM_INGEST__API_KEYS"):
        asyncio.run(run_ingest(IngestSettings()))
    with pytest.raises(ConfigError, match="EMOSTREAM_API__READ_KEYS"):
        asyncio.run(run_aggregator(_aggregator(monkeypatch, host="0.0.0.0")))


def test_the_worker_refuses_before_connecting(monkeypatch):
    import emostream.worker.main as worker_main

    async def connect(_kafka) -> None:  # must not be reached: no connection beyond loopback
        raise AssertionError("connected with a placeholder secret")

    monkeypatch.setattr(worker_main, "check_connection", connect)
    monkeypatch.setenv("EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS", "10.0.0.1:9093")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SASL_USERNAME", "emostream")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SASL_PASSWORD", "change-me-password")
    with pytest.raises(ConfigError, match="EMOSTREAM_KAFKA__SASL_PASSWORD.*10.0.0.1"):
        asyncio.run(worker_main.run_worker(WorkerSettings()))
