"""The aggregator's OpenAPI document, completed (issue 36, 6): the API-key scheme, and on every
route each error status it can answer with its body (``ErrorBody``).

A route's error statuses are found, not listed by hand (``emostream.runtime.openapi``): from
its dependencies (the key scopes: 401, 403 and the unknown-query 422; the read budget: 429; a
known stream: 404; the store: 503 when Redis is away), its parameters and body (422, and 413
past the body limit), and the ``HTTPException(<status>`` raised in its function and the module
functions it calls.
``tests/unit/test_openapi_complete.py`` checks statuses seen against the document.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from emostream.aggregator.api import deps
from emostream.runtime.openapi import (
    API_KEY_SCHEME,
    ErrorBody,
    api_routes,
    dependency_calls,
    route_errors,
)
from emostream.schemas import EmotionEventV1

BEARER_SCHEME = "Bearer"
DESCRIPTION = """\
Emotion state, events, sessions, rules and alerts of the streams emostream processes.

**Keys**: ``X-API-Key`` (or ``Authorization: Bearer``) with a read key (GET routes) or an
admin key (everything); health and ``/metrics`` stay open. Errors answer
``{"detail": ...}`` (``ErrorBody``).

**Live push** (newly stored events; with ``kind=``: changes and alerts too):
- ``GET /v1/live/sse``: Server-Sent Events (documented below); resume with ``Last-Event-ID``.
- ``WebSocket /v1/live`` (OpenAPI cannot type it): the same query parameters (``stream_id``,
  ``kind``) and the same JSON messages as SSE's ``data``: the bare ``EmotionEventV1`` without
  ``kind``, else ``{"type": "event"|"change"|"alert", "stream_id", "data"}``. Key: the
  ``X-API-Key`` header, ``?api_key=``, or a first message ``{"api_key": "..."}`` within 5 s; a
  refused key closes with code 4401, too many clients with 1013, a cross-site origin not
  allowed answers 403.
"""
REASONS = {
    400: "The request cannot be served as configured (``detail`` says what to set)",
    401: "Missing or invalid API key (``WWW-Authenticate: ApiKey``)",
    403: "The key lacks the scope (admin routes with a read key), or a browser check refused",
    404: "Unknown resource (stream, rule, session, camera)",
    409: "Conflict (a limit reached, or the resource exists)",
    413: "Request body over the limit",
    421: "Keyless mode: ``Host`` does not name this machine (loopback names only)",
    422: "Invalid input: ``detail`` lists the errors (or says what is wrong)",
    429: "Read budget spent: retry after ``Retry-After`` seconds",
    503: "State store (Redis) unavailable, or too many live clients: retry after ``Retry-After``",
}
# Response fields that hold stored EmotionEventV1 documents (passed through, not re-validated)
TYPED_EVENTS = [("RecentEvents", "events"), ("StreamState", "faces")]
# The statuses a dependency can answer (the ones that reach Redis can answer 503 too).
DEPENDENCY_STATUSES: dict[Callable, set[int]] = {
    deps.require_read: {401, 422},
    deps.require_admin: {401, 403},
    deps.charge_read: {429},
    deps.get_stream_check: {404},
    deps.get_store: {503},
    deps.get_context: {503},
}


def _secured(route: APIRoute) -> bool:
    calls = dependency_calls(route.dependant)
    return deps.require_read in calls or deps.require_admin in calls


def install_openapi(app: FastAPI, description: str) -> None:
    """Replace ``app.openapi`` by the completed document (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, description)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI, description: str) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, description=description, routes=app.routes
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    about = (
        "A read key (GET routes) or an admin key (everything). Without any key configured "
        "the API is open and binds to loopback only."
    )
    schemes = components["securitySchemes"] = {
        API_KEY_SCHEME: {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": about,
        },
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "The same key. " + about,
        },
    }
    schemes[API_KEY_SCHEME]["description"] = about
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for route in api_routes(app):
        for method in route.methods:
            op = doc["paths"].get(route.path_format, {}).get(method.lower())
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            for status in sorted(route_errors(route, DEPENDENCY_STATUSES)):
                reason = REASONS.get(status) or HTTPStatus(status).phrase
                documented = responses.setdefault(str(status), {"description": reason})
                documented["content"] = error  # 422 too: a message or the list of errors
            if _secured(route):
                op["security"] = [{API_KEY_SCHEME: []}, {BEARER_SCHEME: []}]  # either
    _typed_events(doc)
    sse = doc["paths"].get("/v1/live/sse", {}).get("get")
    if sse is not None:
        sse["responses"]["200"] = {
            "description": "``text/event-stream``: records ``id:``, ``event:`` (emotion, change, "
            "alert, gap) and ``data:`` (the JSON the WebSocket sends)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    return doc


def _typed_events(doc: dict[str, Any]) -> None:
    """Stored event documents (dicts in the response models) typed as ``EmotionEventV1``."""
    schemas = doc["components"]["schemas"]
    event = EmotionEventV1.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in event.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas.setdefault("EmotionEventV1", event)
    ref = {"$ref": "#/components/schemas/EmotionEventV1"}
    for model, field_name in TYPED_EVENTS:
        prop = schemas.get(model, {}).get("properties", {}).get(field_name)
        if prop is not None and prop.get("type") == "array":
            prop["items"] = ref
