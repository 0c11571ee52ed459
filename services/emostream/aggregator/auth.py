"""API keys: ``X-API-Key`` with read or admin scope; health and metrics stay open."""

import hmac
from collections.abc import Callable

from fastapi import Header, HTTPException
from pydantic import SecretStr

from emostream.errors import ConfigError

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _matches(key: str, keys: list[SecretStr]) -> bool:
    if not key:
        return False  # an empty header never matches, not even an empty configured key
    return any(hmac.compare_digest(key.encode(), k.get_secret_value().encode()) for k in keys)


def key_allowed(
    key: str | None, scope: str, read_keys: list[SecretStr], admin_keys: list[SecretStr]
) -> bool:
    if not read_keys and not admin_keys:
        return True
    if key is None:
        return False
    return _matches(key, admin_keys) or (scope == "read" and _matches(key, read_keys))


def is_admin(key: str | None, read_keys: list[SecretStr], admin_keys: list[SecretStr]) -> bool:
    """Whether ``key`` has admin scope (everyone has, in keyless mode)."""
    return key_allowed(key, "admin", read_keys, admin_keys)


def check_scope(
    x_api_key: str | None, scope: str, read_keys: list[SecretStr], admin_keys: list[SecretStr]
) -> None:
    """Raise 401 without a valid key, 403 with a key lacking ``scope``; open without any keys."""
    if not read_keys and not admin_keys:
        return
    if x_api_key is None:
        raise HTTPException(
            401, detail="missing X-API-Key header", headers={"WWW-Authenticate": "ApiKey"}
        )
    if _matches(x_api_key, admin_keys):
        return
    if _matches(x_api_key, read_keys):
        if scope == "read":
            return
        raise HTTPException(403, detail=f"this key lacks the {scope!r} scope")
    raise HTTPException(401, detail="invalid API key", headers={"WWW-Authenticate": "ApiKey"})


def require_scope(scope: str, read_keys: list[SecretStr], admin_keys: list[SecretStr]) -> Callable:
    """A FastAPI dependency: 401 without a valid key, 403 with a key lacking ``scope``.

    With no keys configured at all, the API is open (and only binds to loopback).
    """

    async def check(x_api_key: str | None = Header(default=None)) -> None:
        check_scope(x_api_key, scope, read_keys, admin_keys)

    return check


def check_bind(host: str, read_keys: list[SecretStr], admin_keys: list[SecretStr]) -> None:
    """Refuse to expose an unauthenticated API beyond this machine."""
    if host not in LOOPBACK and not read_keys and not admin_keys:
        raise ConfigError(
            f"refusing to serve the API on {host} without API keys: set "
            "EMOSTREAM_API__READ_KEYS='[\"<key>\"]' (and/or ADMIN_KEYS), or bind to 127.0.0.1"
        )
