"""Optional dependencies, imported where they are used: training, benchmarks and the demo's
embedded broker are extras of the package, which the services never need (pyproject.toml)."""

from __future__ import annotations

import importlib
from types import ModuleType

from emostream.errors import ConfigError


def import_extra(
    module: str, extra: str, purpose: str, distribution: str | None = None
) -> ModuleType:
    """``module``, or a one-line ``ConfigError`` naming the extra that installs it
    (``distribution``: the package's name on the index, default the module's top name)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = distribution or module.split(".")[0]
        raise ConfigError(
            f"{purpose} needs {package}, in the '{extra}' extra: pip install 'emostream[{extra}]'"
        ) from None
