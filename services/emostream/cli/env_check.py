"""Settings from the environment with one-line errors: bad values name their variable and the fix,
unknown ``EMOSTREAM_`` variables (typos) get a warning naming the nearest valid one."""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsError

from emostream.errors import ConfigError

PREFIX = "EMOSTREAM_"
# Read outside the services' settings: the CLI's model cache (cli.model_cache.ModelCacheSettings),
# tests and scripts.
OTHER_VARIABLES = {
    "EMOSTREAM_CACHE_DIR",
    "EMOSTREAM_HUB_URL",
    "EMOSTREAM_RMN_REFERENCE",
    "EMOSTREAM_SCREENSHOT",
}
MAX_ERRORS_SHOWN = 2
S = TypeVar("S", bound=BaseSettings)


def _model_type(annotation: object) -> type[BaseModel] | None:
    """The BaseModel class of a section field (``X`` or ``X | None``), else None."""
    candidates = typing.get_args(annotation) or (annotation,)
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def _is_json_field(annotation: object) -> bool:
    """pydantic-settings parses these from JSON: lists, dicts, models."""
    origin = typing.get_origin(annotation)
    if origin in (list, dict, set, tuple):
        return True
    return (
        any(_is_json_field(a) for a in typing.get_args(annotation) if a is not type(None))
        or _model_type(annotation) is not None
    )


def variable_names(cls: type[BaseModel], prefix: str = PREFIX) -> dict[str, object]:
    """Every ``EMOSTREAM_`` variable ``cls`` reads, with the field's annotation; a nested
    section's fields too (``EMOSTREAM_INGEST__HTTP__PORT``), and the section as one JSON value."""
    names: dict[str, object] = {}
    for name, field in cls.model_fields.items():
        names[f"{prefix}{name.upper()}"] = field.annotation
        section = _model_type(field.annotation)
        if section is not None and prefix == PREFIX:
            names.pop(f"{prefix}{name.upper()}")  # a top-level section is not one variable
        if section is not None:
            names |= variable_names(section, f"{prefix}{name.upper()}__")
    return names


def _service_classes() -> list[type[BaseSettings]]:
    from emostream.config import (
        AggregatorSettings,
        DemoSettings,
        IngestSettings,
        WorkerSettings,
    )

    return [IngestSettings, WorkerSettings, AggregatorSettings, DemoSettings]


def known_variables() -> set[str]:
    """Variables any service reads: one .env may configure them all without warnings."""
    known = set(OTHER_VARIABLES)
    for cls in _service_classes():
        known |= set(variable_names(cls))
    return known


def _dotenv(path: Path = Path(".env")) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _configured(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``EMOSTREAM_`` variables set, upper-cased: name -> (value, where)."""
    found = {k.upper(): (v, ".env") for k, v in _dotenv().items() if k.upper().startswith(PREFIX)}
    found.update(
        {k.upper(): (v, "environment") for k, v in environ.items() if k.upper().startswith(PREFIX)}
    )
    return found


def unknown_variable_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per unknown ``EMOSTREAM_`` variable, naming the nearest valid one."""
    environ = os.environ if environ is None else environ
    known = known_variables()
    lines = []
    for name, (_, where) in sorted(_configured(environ).items()):
        if name in known or name.removesuffix("_FILE") in known:  # X_FILE: emostream.secret_files
            continue
        near = _nearest(name, known)
        hint = f"; did you mean {near}?" if near else ""
        lines.append(
            f"emostream: warning: unknown setting {name} (in the {where}) is ignored{hint}"
        )
    return lines


def _nearest(name: str, known: set[str]) -> str | None:
    """The known name closest to ``name``, underscores aside (MAXBATCH is MAX_BATCH_FRAMES)."""
    by_letters = {k.replace("_", ""): k for k in sorted(known)}
    near = difflib.get_close_matches(name.replace("_", ""), list(by_letters), n=1, cutoff=0.6)
    return by_letters[near[0]] if near else None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _hint(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "int_parsing":
        return "use a whole number"
    if kind == "float_parsing":
        return "use a number"
    if kind == "bool_parsing":
        return "use true or false"
    if kind in ("literal_error", "enum"):
        return "use one of those"
    return "fix or unset it"


def explain_validation_error(exc: ValidationError) -> str:
    """At most ``MAX_ERRORS_SHOWN`` lines, each: the variable, its value, what is wrong, the fix."""
    lines = []
    errors = exc.errors()
    for error in errors[:MAX_ERRORS_SHOWN]:
        loc = [str(p) for p in error.get("loc", ())]
        name = PREFIX + "__".join(p.upper() for p in loc[:2]) if loc else "a setting"
        msg = error.get("msg", "invalid").removeprefix("Value error, ").split(", unable to")[0]
        lines.append(f"{name}={_short(error.get('input'))}: {msg}; {_hint(error)}")
    if len(errors) > MAX_ERRORS_SHOWN:
        lines[-1] += f" (and {len(errors) - MAX_ERRORS_SHOWN} more)"
    return "\n".join(lines)


def explain_settings_error(
    exc: SettingsError, cls: type[BaseSettings], environ: Mapping[str, str]
) -> str:
    """pydantic-settings names only the section of a JSON value that does not parse: find the
    variable."""
    if str(exc).startswith(PREFIX) or str(exc).startswith(f"both {PREFIX}"):
        return str(exc)  # emostream.secret_files names the variable itself
    match = re.search(r'field "([^"]+)"', str(exc))
    section = match.group(1).upper() if match else ""
    fields = variable_names(cls)
    for name, (value, where) in _configured(environ).items():
        if not name.startswith(f"{PREFIX}{section}") or not _is_json_field(fields.get(name)):
            continue
        try:
            json.loads(value)
        except ValueError:
            return (
                f"{name}={_short(value)} (in the {where}) is not valid JSON; lists are JSON, "
                f"e.g. {name}='[\"key-1\"]'"
            )
    cause = f": {exc.__cause__}" if exc.__cause__ else ""
    return f"cannot read settings ({exc}{cause}); check the EMOSTREAM_{section}__* variables"


def load_settings(cls: type[S], environ: Mapping[str, str] | None = None, warn: bool = True) -> S:
    """``cls()`` from the environment and ``.env``; ConfigError with one line per bad value."""
    environ = os.environ if environ is None else environ
    if warn:
        for line in unknown_variable_warnings(environ):
            print(line, file=sys.stderr)
    try:
        return cls()
    except ValidationError as exc:
        raise ConfigError(explain_validation_error(exc)) from None
    except SettingsError as exc:
        raise ConfigError(explain_settings_error(exc, cls, environ)) from None
