import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import SecretStr

from emostream.aggregator.api.auth import API_KEYS_SETTING, key_allowed, require_scope
from emostream.config import AggregatorSettings
from emostream.errors import ConfigError
from emostream.runtime.api_keys import check_bind

READ, ADMIN = [SecretStr("r-key")], [SecretStr("a-key")]


def app_with(read, admin) -> FastAPI:
    app = FastAPI()

    @app.get("/read", dependencies=[Depends(require_scope("read", read, admin))])
    async def r() -> dict:
        return {"ok": True}

    @app.post("/admin", dependencies=[Depends(require_scope("admin", read, admin))])
    async def a() -> dict:
        return {"ok": True}

    return app


async def call(app, method: str, path: str, key: str | None = None) -> int:
    headers = {"X-API-Key": key} if key else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return (await c.request(method, path, headers=headers)).status_code


@pytest.mark.parametrize(
    ("method", "path", "key", "status"),
    [
        ("GET", "/read", None, 401),
        ("GET", "/read", "wrong", 401),
        ("GET", "/read", "r-key", 200),
        ("GET", "/read", "a-key", 200),
        ("POST", "/admin", "r-key", 403),
        ("POST", "/admin", "a-key", 200),
        ("POST", "/admin", None, 401),
    ],
)
async def test_scopes(method, path, key, status):
    assert await call(app_with(READ, ADMIN), method, path, key) == status


async def test_open_without_keys():
    assert await call(app_with([], []), "GET", "/read") == 200


def test_refuses_public_bind_without_keys():
    with pytest.raises(ConfigError, match="without API keys: set EMOSTREAM_API__READ_KEYS or"):
        check_bind("0.0.0.0", [], "the API", API_KEYS_SETTING)
    check_bind("127.0.0.1", [], "the API", API_KEYS_SETTING)
    check_bind("0.0.0.0", READ, "the API", API_KEYS_SETTING)


def test_keys_from_environment(monkeypatch):
    monkeypatch.setenv("EMOSTREAM_API__READ_KEYS", '["read-key-0001", "read-key-0002"]')
    s = AggregatorSettings()
    assert [k.get_secret_value() for k in s.api.read_keys] == ["read-key-0001", "read-key-0002"]
    assert s.api.host == "127.0.0.1"


@pytest.mark.parametrize("keys", ['[""]', '["   "]', '["short"]'])
@pytest.mark.parametrize("var", ["EMOSTREAM_API__READ_KEYS", "EMOSTREAM_API__ADMIN_KEYS"])
def test_empty_and_short_keys_are_refused_at_start(monkeypatch, var, keys):
    monkeypatch.setenv(var, keys)
    with pytest.raises(ValueError, match="at least 12 characters"):
        AggregatorSettings()


def test_an_empty_header_never_matches():
    assert not key_allowed("", "read", [SecretStr("")], [])  # configured in code, not settings
