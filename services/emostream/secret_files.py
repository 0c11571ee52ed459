"""Settings read from files: ``EMOSTREAM_X_FILE=/path`` sets ``EMOSTREAM_X`` to the file's content.

For Kubernetes secret volumes, Docker secrets and Vault agent templates, which put secrets in
files rather than in the environment (where ``ps e``, crash dumps and child processes see them).
Any variable may be given this way; the content is read as the variable would be (JSON for
lists), except that a list of API keys may also be one key per line. One trailing newline is
dropped. Setting both ``X`` and ``X_FILE`` is an error, as is a file that cannot be read.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping

from pydantic_settings import EnvSettingsSource, SettingsError

SUFFIX = "_FILE"
PREFIX = "EMOSTREAM_"
MAX_SECRET_FILE_BYTES = 64 * 1024


def _is_list(annotation: object) -> bool:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return typing.get_origin(annotation) is list or any(_is_list(a) for a in args)


def read_secret_file(variable: str, path: str, as_list: bool = False) -> str:
    """The value of ``variable`` from the file at ``path`` (named in errors)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"{variable}{SUFFIX}={path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SettingsError(f"{variable}{SUFFIX}={path}: larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        text = data.decode().removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise SettingsError(f"{variable}{SUFFIX}={path}: not UTF-8 text") from None
    if as_list and not text.lstrip().startswith("["):
        return json.dumps([line.strip() for line in text.splitlines() if line.strip()])
    return text


def file_variables(environ: Mapping[str, str], known: Mapping[str, object]) -> dict[str, str]:
    """``{variable: value}`` for each ``EMOSTREAM_..._FILE`` in ``environ`` naming a setting in
    ``known`` (variable name -> annotation)."""
    upper = {k.upper(): v for k, v in environ.items()}
    found = {}
    for name, path in upper.items():
        target = name.removesuffix(SUFFIX)
        if not name.startswith(PREFIX) or not name.endswith(SUFFIX) or target not in known:
            continue
        if target in upper:
            raise SettingsError(f"both {target} and {name} are set: keep one")
        found[target] = read_secret_file(target, path, _is_list(known[target]))
    return found


class SecretFilesSource(EnvSettingsSource):
    """The environment source, over the ``*_FILE`` variables' file contents instead."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        from emostream.cli.env_check import variable_names

        values = file_variables(os.environ, variable_names(self.settings_cls))
        return {k.lower(): v for k, v in values.items()}
