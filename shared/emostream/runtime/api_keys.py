"""API keys shared by the HTTP servers: constant-time matching and the keyless bind rule.

A server with no keys configured is open, so it may only listen on loopback: anything beyond
this machine could otherwise read or write without a key.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence

from pydantic import SecretStr

from emostream.errors import ConfigError


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost`` or a loopback address.

    Decided from the string alone (no name lookup): any other name counts as beyond loopback,
    and so does ``0.0.0.0`` or an empty host (every interface).
    """
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_matches(key: str | None, keys: Sequence[SecretStr]) -> bool:
    """Whether ``key`` equals one of ``keys``, compared in constant time.

    Args:
        key: The key a client sent (``None`` or empty when it sent none).
        keys: The configured keys.

    Returns:
        True when ``key`` is non-empty and equals a configured key. An empty key never
        matches, not even an empty configured one.
    """
    if not key:
        return False
    sent = key.encode()
    # Compare against every key (no early exit): timing does not tell which one matched.
    found = False
    for k in keys:
        found |= hmac.compare_digest(sent, k.get_secret_value().encode())
    return found


def key_allowed(key: str | None, keys: Sequence[SecretStr]) -> bool:
    """Keyless servers allow everyone; otherwise ``key`` must match one of ``keys``."""
    return not keys or key_matches(key, keys)


def check_bind(host: str, keys: Sequence[SecretStr], what: str, keys_setting: str) -> None:
    """Refuse to serve without keys beyond loopback.

    Args:
        host: The interface the server binds.
        keys: Every key the server accepts (all scopes together).
        what: The server, for the message (``"ingest HTTP"``).
        keys_setting: The environment variable that sets keys, for the message.

    Raises:
        ConfigError: ``host`` is beyond loopback (``is_loopback``) and ``keys`` is empty.
    """
    if not is_loopback(host) and not keys:
        raise ConfigError(
            f"refusing to serve {what} on {host} without API keys: set {keys_setting} "
            "(a JSON list, e.g. '[\"<key>\"]'), or bind to 127.0.0.1"
        )
