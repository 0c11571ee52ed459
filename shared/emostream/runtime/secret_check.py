"""Secrets still holding a ``change-me`` placeholder: refused beyond loopback, warned on it.

Deploy templates (``deploy/k8s/base/secret.yaml``) ship such values so that a forgotten one is
obvious; a service that binds or connects beyond this machine must not run with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import structlog
from pydantic import BaseModel, SecretStr

from emostream.errors import ConfigError
from emostream.runtime.api_keys import is_loopback

log = structlog.get_logger(__name__)

PLACEHOLDER = re.compile(r"change[-_]?me", re.IGNORECASE)


def _is_placeholder(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(PLACEHOLDER.search(value.get_secret_value()))
    if isinstance(value, list | tuple):
        return any(_is_placeholder(v) for v in value)
    return False


def placeholder_secrets(settings: BaseModel, prefix: str | None = None) -> list[str]:
    """The variables whose secret value (or one of whose listed secrets) holds ``change-me``.

    Args:
        settings: A service's settings, or one of its sections.
        prefix: The variable name of ``settings`` with its trailing delimiter; default: the
            model's ``env_prefix`` (``EMOSTREAM_``).

    Returns:
        Variable names such as ``EMOSTREAM_API__READ_KEYS``, in field order.
    """
    config = settings.model_config
    if prefix is None:
        prefix = str(config.get("env_prefix", "")).upper()
    found = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        variable = f"{prefix}{name.upper()}"
        if isinstance(value, BaseModel):
            found += placeholder_secrets(value, f"{variable}__")
        elif _is_placeholder(value):
            found.append(variable)
    return found


def refuse_placeholder_secrets(settings: BaseModel, hosts: Iterable[str]) -> list[str]:
    """Refuse placeholder secrets when any host is beyond loopback; warn about them otherwise.

    Decided from the configured host strings alone (``is_loopback``), without a lookup.

    Args:
        settings: The service's settings.
        hosts: Every host the service binds (its API) or connects to (Kafka, Redis).

    Returns:
        The placeholder variables allowed because everything stays on loopback.

    Raises:
        ConfigError: A placeholder secret while a host is beyond loopback; the message names
            the variables and the hosts.
    """
    variables = placeholder_secrets(settings)
    if not variables:
        return []
    beyond = sorted({h for h in hosts if not is_loopback(h)})
    if beyond:
        raise ConfigError(
            f"refusing to start with placeholder secrets ({', '.join(variables)} hold "
            f"'change-me') while reaching beyond loopback ({', '.join(beyond)}): set each to a "
            "generated value, e.g. `openssl rand -hex 32`"
        )
    log.warning(
        "placeholder secrets allowed on loopback only; generate real ones before exposing it",
        variables=variables,
    )
    return variables
