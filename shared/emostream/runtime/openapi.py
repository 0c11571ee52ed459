"""OpenAPI helpers both HTTP services use to complete their documents (issue 36, 6): the API-key
scheme's name, the error body model, the routes as served, and a route's error statuses.

A route's error statuses are found, not listed by hand: from its dependencies (each service
passes the statuses of its own known dependencies), its parameters and body (422, and 413 past
the body limit), and the ``HTTPException(<status>`` raised in its function and the module
functions it calls.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute

API_KEY_SCHEME = "ApiKey"
_RAISED = re.compile(r"HTTPException\(\s*(\d{3})|status_code=(?:\d{3} if .*? else )?(\d{3})")
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\(")


class ErrorBody(BaseModel):
    """Every error's body: ``detail``, a message (or, for invalid input, the list of errors)."""

    detail: str | list[dict[str, Any]] = Field(description="What went wrong")


def dependency_calls(dependant: Dependant) -> list[Callable]:
    """The callables a route runs: its endpoint and its dependencies, recursively.

    Args:
        dependant: The route's ``dependant``.

    Returns:
        The endpoint first, then each dependency's callable, depth first.
    """
    out = [dependant.call] if dependant.call else []
    for sub in dependant.dependencies:
        out += dependency_calls(sub)
    return out


def _source_statuses(func: Callable, seen: set[Any]) -> set[int]:
    """``HTTPException(<status>`` / ``status_code=`` in ``func`` and the functions of its module
    that it calls (by name, recursively)."""
    func = inspect.unwrap(func)
    if func in seen or not callable(func):
        return set()
    seen.add(func)
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return set()
    found = {int(a or b) for a, b in _RAISED.findall(source)}
    module = sys.modules.get(getattr(func, "__module__", ""), None)
    for name in set(_CALLED.findall(source)):
        target = getattr(module, name, None)
        if inspect.isfunction(target) or inspect.iscoroutinefunction(target):
            found |= _source_statuses(target, seen)
    return found


def route_errors(route: APIRoute, dependency_statuses: Mapping[Callable, set[int]]) -> set[int]:
    """Error statuses (>= 400) that ``route`` can answer.

    Args:
        route: The route, as ``api_routes`` yields it.
        dependency_statuses: The service's known dependencies -> the statuses each can answer;
            these are taken as given, not scanned (their helpers serve other scopes).

    Returns:
        The statuses found, 421 included (the browser checks' middleware, in keyless mode).
    """
    statuses: set[int] = set()
    seen: set[Any] = set()
    for call in dependency_calls(route.dependant):
        if call in dependency_statuses:
            statuses |= dependency_statuses[call]
        else:
            statuses |= _source_statuses(call, seen)
    statuses.add(421)  # the browser checks' middleware, in keyless mode, on every route
    dependant = route.dependant
    if dependant.query_params or dependant.path_params or dependant.body_params:
        statuses.add(422)
    if dependant.body_params:
        statuses.add(413)
    return {s for s in statuses if s >= 400}


def api_routes(app: FastAPI) -> list[APIRoute]:
    """The app's routes as served (FastAPI >= 0.160 keeps included routers as branches).

    Args:
        app: The application.

    Returns:
        Its HTTP routes that are in the schema, included routers' routes flattened.
    """
    served: Iterable[BaseRoute]
    try:
        from fastapi.routing import _iter_included_route_candidates as flatten
    except ImportError:  # older FastAPI: included routes are copied onto the app
        served = app.routes
    else:
        served = flatten(app.routes)
    return [r for r in served if isinstance(r, APIRoute) and r.include_in_schema]
