"""Secrets from files: ``EMOSTREAM_X_FILE=/path`` (Kubernetes secret volumes, Docker secrets)."""

from __future__ import annotations

import json

import pytest

from emostream.cli.env_check import load_settings, unknown_variable_warnings
from emostream.config import AggregatorSettings, WorkerSettings, masked_dump
from emostream.errors import ConfigError

WEBHOOK = "whsec_ZnJvbS1hLWZpbGUtZnJvbS1hLWZpbGU="


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No EMOSTREAM_ variables or .env of the machine's own."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("EMOSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def secret(tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content)
    return str(path)


def test_secrets_are_read_from_files(clean_env, monkeypatch):
    monkeypatch.setenv(
        "EMOSTREAM_ALERTS__WEBHOOK_SECRET_FILE", secret(clean_env, "wh", WEBHOOK + "\n")
    )
    monkeypatch.setenv(
        "EMOSTREAM_API__ADMIN_KEYS_FILE",
        secret(clean_env, "admin", "admin-key-000001\nadmin-key-000002\n"),
    )
    monkeypatch.setenv(
        "EMOSTREAM_API__READ_KEYS_FILE", secret(clean_env, "read", '["read-key-0000001"]')
    )
    monkeypatch.setenv(
        "EMOSTREAM_REDIS__URL_FILE", secret(clean_env, "url", "redis://:pw@127.0.0.1:6390/0")
    )
    s = load_settings(AggregatorSettings)
    assert s.alerts.webhook_secret.get_secret_value() == WEBHOOK  # the newline dropped
    assert [k.get_secret_value() for k in s.api.admin_keys] == [
        "admin-key-000001",
        "admin-key-000002",
    ]
    assert [k.get_secret_value() for k in s.api.read_keys] == ["read-key-0000001"]
    assert s.redis.url.get_secret_value() == "redis://:pw@127.0.0.1:6390/0"
    dumped = json.dumps(masked_dump(s))
    assert "admin-key-000001" not in dumped and "ZnJvbS1h" not in dumped and ":pw@" not in dumped


def test_kafka_password_from_a_file(clean_env, monkeypatch):
    monkeypatch.setenv("EMOSTREAM_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SASL_USERNAME", "worker")
    monkeypatch.setenv("EMOSTREAM_KAFKA__SASL_PASSWORD_FILE", secret(clean_env, "pw", "s3cr3t\n"))
    assert load_settings(WorkerSettings).kafka.sasl_password.get_secret_value() == "s3cr3t"


def test_a_variable_and_its_file_together_are_refused(clean_env, monkeypatch):
    monkeypatch.setenv("EMOSTREAM_ALERTS__WEBHOOK_SECRET", WEBHOOK)
    monkeypatch.setenv("EMOSTREAM_ALERTS__WEBHOOK_SECRET_FILE", secret(clean_env, "wh", WEBHOOK))
    with pytest.raises(ConfigError, match="both EMOSTREAM_ALERTS__WEBHOOK_SECRET and .*_FILE"):
        load_settings(AggregatorSettings)


def test_an_unreadable_file_names_its_variable(clean_env, monkeypatch):
    missing = str(clean_env / "nope")
    monkeypatch.setenv("EMOSTREAM_ALERTS__WEBHOOK_SECRET_FILE", missing)
    with pytest.raises(ConfigError) as err:
        load_settings(AggregatorSettings)
    assert str(err.value).startswith(
        f"EMOSTREAM_ALERTS__WEBHOOK_SECRET_FILE={missing}: cannot read"
    )


def test_a_bad_secret_in_a_file_is_a_validation_error(clean_env, monkeypatch):
    monkeypatch.setenv("EMOSTREAM_API__ADMIN_KEYS_FILE", secret(clean_env, "admin", "short\n"))
    with pytest.raises(ConfigError, match="EMOSTREAM_API__ADMIN_KEYS"):
        load_settings(AggregatorSettings)


def test_file_variables_are_known_settings_and_typos_still_warned(clean_env):
    environ = {
        "EMOSTREAM_ALERTS__WEBHOOK_SECRET_FILE": "/run/secrets/webhook",
        "EMOSTREAM_ALERTS__WEBHOK_SECRET_FILE": "/run/secrets/webhook",
    }
    (warning,) = unknown_variable_warnings(environ)
    assert "EMOSTREAM_ALERTS__WEBHOK_SECRET_FILE" in warning
