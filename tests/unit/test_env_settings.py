"""Variables read outside the services' settings still go through typed settings classes."""

from __future__ import annotations

from pathlib import Path

from emostream.cli.model_cache import ModelCacheSettings, hub_url
from emostream.demo.runner import ExternalRedisSettings


def test_model_cache_variables_are_typed(monkeypatch):
    monkeypatch.setenv("EMOSTREAM_CACHE_DIR", "/tmp/models")
    monkeypatch.setenv("EMOSTREAM_HUB_URL", "http://127.0.0.1:9/hub")
    settings = ModelCacheSettings()
    assert settings.cache_dir == Path("/tmp/models")
    assert hub_url(None) == "http://127.0.0.1:9/hub"
    assert hub_url("http://127.0.0.1:8/flag") == "http://127.0.0.1:8/flag"


def test_empty_model_cache_variables_mean_unset(monkeypatch):
    monkeypatch.setenv("EMOSTREAM_CACHE_DIR", "")
    monkeypatch.delenv("EMOSTREAM_HUB_URL", raising=False)
    settings = ModelCacheSettings()
    assert settings.cache_dir is None and settings.hub_url is None


def test_demo_reads_redis_url_as_a_secret(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://:pw@127.0.0.1:1/0")
    url = ExternalRedisSettings().redis_url
    assert url is not None and url.get_secret_value() == "redis://:pw@127.0.0.1:1/0"
    assert "pw" not in repr(url)
    monkeypatch.delenv("REDIS_URL")
    assert ExternalRedisSettings().redis_url is None
