"""Ingest's OpenAPI document (``/openapi.json`` on the ingest HTTP server), completed (issue 36,
6): the write-key scheme, the frame body's media types, every status ``POST .../frames`` can
answer with its body, and the WebSocket in the description (OpenAPI cannot type it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from emostream.runtime.openapi import API_KEY_SCHEME, ErrorBody, api_routes, route_errors

FRAMES = "/v1/streams/{stream_id}/frames"
DESCRIPTION = """\
Frames into the frames topic over HTTP, for clients that are not cameras ingest can open.

**Key**: ``X-API-Key`` with a write key (``EMOSTREAM_INGEST__API_KEYS``); without keys the
server is open and answers loopback names only (421 otherwise).

**Trace context**: a ``traceparent`` header on ``POST .../frames`` makes the frame's trace (its
events, alerts and webhooks) a child of the client's span.

**WebSocket** ``/v1/streams/{stream_id}/ingest`` (OpenAPI cannot type it): binary messages, one
JPEG or PNG frame each; text messages ``{"seq": n, "captured_ms": t}`` set the next frame's
numbers. The key: the ``X-API-Key`` header or a first message ``{"api_key": "..."}`` within
5 s (refused: close code 4401). When Kafka is slower than the camera the oldest queued frame
is dropped and reported as ``{"type": "dropped", "count": N, "total": T}``; a refused frame as
``{"type": "refused", "seq": N, "status": S, "detail": ...}``.
"""
# Statuses the frames route answers besides those found in its code (exception handlers).
HANDLED = {
    413: "Frame or body over the limit",
    415: "Not a JPEG or PNG image",
    429: "Too many frames in flight: retry after ``Retry-After`` seconds",
    503: "Kafka send failed",
    504: "Kafka did not acknowledge the frame in time",
}
# Dependencies whose statuses are known without reading their code: none. The write-key check
# is built per app (a closure over its keys), so its source is scanned (401) like the route's.
DEPENDENCY_STATUSES: dict[Callable, set[int]] = {}


def install_ingest_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` by the completed document (built once)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(app, original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(app: FastAPI, doc: dict[str, Any]) -> dict[str, Any]:
    doc["info"]["description"] = DESCRIPTION
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["ErrorBody"] = ErrorBody.model_json_schema()
    components["securitySchemes"] = {
        API_KEY_SCHEME: {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for route in api_routes(app):
        if route.path_format != FRAMES:
            continue
        op = doc["paths"][FRAMES]["post"]
        op["security"] = [{API_KEY_SCHEME: []}]
        binary = {"schema": {"type": "string", "format": "binary"}}
        op["requestBody"] = {
            "required": True,
            "content": {"image/jpeg": binary, "image/png": binary},
        }
        statuses = route_errors(route, DEPENDENCY_STATUSES) | set(HANDLED)
        for status in sorted(statuses):
            reason = HANDLED.get(status) or f"HTTP {status}"
            entry = op["responses"].setdefault(str(status), {"description": reason})
            entry["content"] = error
    return doc
