"""API keys: ``X-API-Key`` with read or admin scope; health and metrics stay open.

Matching (constant time) and the keyless bind rule come from ``emostream.runtime.api_keys``,
shared with ingest's write keys; this module adds the two scopes (admin keys may read too).
"""

from collections.abc import Callable

from fastapi import Header, HTTPException
from pydantic import SecretStr

from emostream.runtime import api_keys

# For ``api_keys.check_bind``'s message: the settings that give the API its keys.
API_KEYS_SETTING = "EMOSTREAM_API__READ_KEYS or EMOSTREAM_API__ADMIN_KEYS"


def key_allowed(
    key: str | None, scope: str, read_keys: list[SecretStr], admin_keys: list[SecretStr]
) -> bool:
    if not read_keys and not admin_keys:
        return True
    return api_keys.key_matches(key, admin_keys) or (
        scope == "read" and api_keys.key_matches(key, read_keys)
    )


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
    if api_keys.key_matches(x_api_key, admin_keys):
        return
    if api_keys.key_matches(x_api_key, read_keys):
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
