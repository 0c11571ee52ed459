"""A camera of the registry: stream id, source and its own settings; source rules.

A record of the cameras topic is ``CameraSpec`` as JSON under the stream id's key; an empty
value (a tombstone) deletes the camera. Sources are checked where a camera is registered (the
API answers 422) and again where it runs (the topic may be written by other tools).
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError

from emostream.fleet_options import FleetOptions
from emostream.frames import STREAM_ID_PATTERN

MAX_SOURCE_CHARS = 2048
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class SourceRejected(ValueError):
    """A source the fleet may not read; the message says why and what is accepted."""


class CameraSettings(BaseModel):
    """What a camera may change without changing its source."""

    fps: float = Field(5.0, gt=0, le=60, description="Frames per second read and published")
    live: bool | None = Field(
        None, description="Live frames may be dropped when late; default: URLs and webcams are"
    )
    resize: int | None = Field(
        None, ge=64, le=7680, description="Frames wider than this many pixels are downscaled"
    )
    loop: bool = Field(True, description="Files and folders restart at their end")


class CameraSpec(CameraSettings):
    stream_id: str = Field(pattern=STREAM_ID_PATTERN, description="The camera's stream id")
    source: str = Field(
        min_length=1, max_length=MAX_SOURCE_CHARS, description="URL, file or image folder path"
    )


class CameraPatch(BaseModel):
    """PATCH body: the fields given replace the camera's."""

    source: str | None = Field(None, min_length=1, max_length=MAX_SOURCE_CHARS)
    fps: float | None = Field(None, gt=0, le=60)
    live: bool | None = None
    resize: int | None = Field(None, ge=64, le=7680)
    loop: bool | None = None


def patched(spec: CameraSpec, patch: CameraPatch) -> CameraSpec:
    changes = patch.model_dump(exclude_unset=True)
    if changes.get("source") is None:
        changes.pop("source", None)
    return CameraSpec.model_validate(spec.model_dump() | changes)


def encode(spec: CameraSpec) -> bytes:
    return spec.model_dump_json().encode()


def decode(key: bytes | None, value: bytes | None) -> tuple[str, CameraSpec | None] | None:
    """(stream id, spec or None for a tombstone); None for a record that is no camera."""
    if key is None:
        return None
    stream_id = key.decode("utf-8", "replace")
    if not value:
        return stream_id, None
    try:
        spec = CameraSpec.model_validate_json(value)
    except ValidationError:
        return None
    return (stream_id, spec) if spec.stream_id == stream_id else None


def check_source(source: str, options: FleetOptions, *, resolve: bool = False) -> str:
    """The source's kind ('sample', 'webcam', 'url' or 'path'); raises ``SourceRejected``.

    A path must lie under ``source_root`` (relative paths are taken from it); ``resolve``
    follows symbolic links first (where the camera runs: a link may not lead out of the root).
    """
    if any(ord(c) < 32 for c in source):
        raise SourceRejected("the source has control characters")
    if source == "sample":
        return "sample"
    if source.isdigit():
        if not options.allow_webcams:
            raise SourceRejected("webcam sources are off: set EMOSTREAM_FLEET__ALLOW_WEBCAMS")
        return "webcam"
    scheme = _SCHEME_RE.match(source)
    if scheme:
        allowed = [s.lower() for s in options.allowed_schemes]
        if scheme.group(1).lower() not in allowed:
            raise SourceRejected(f"scheme {scheme.group(1)!r} is not allowed; allowed: {allowed}")
        if not urlsplit(source).hostname:
            raise SourceRejected("the URL names no host")
        return "url"
    if "://" in source:
        raise SourceRejected("not a URL (scheme://host/...) nor a file path")
    return _check_path(source, options, resolve)


def resolved_path(source: str, options: FleetOptions) -> str:
    """The path a path source names (relative ones from the root)."""
    root = options.source_root or "."
    return os.path.normpath(os.path.join(root, source))


def _check_path(source: str, options: FleetOptions, resolve: bool) -> str:
    if options.source_root is None:
        raise SourceRejected(
            "file and folder sources need EMOSTREAM_FLEET__SOURCE_ROOT (the directory they "
            "must lie under); URLs are accepted without it"
        )
    root = os.path.normpath(os.path.abspath(options.source_root))
    path = os.path.abspath(resolved_path(source, options))
    if resolve:
        root, path = os.path.realpath(root), os.path.realpath(path)
    if os.path.commonpath([root, path]) != root:
        raise SourceRejected(f"file and folder sources must lie under {options.source_root}")
    return "path"
