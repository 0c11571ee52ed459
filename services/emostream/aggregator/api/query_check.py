"""Unknown query parameters are a 422 on the read routes (``?afer=`` once returned page one).

A route's known names are the query parameters its handler and dependencies declare (FastAPI's
dependency tree), collected once per route.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

_KNOWN: dict[int, frozenset[str]] = {}  # id(route) -> its query parameter names


def _names(dependant: Any) -> set[str]:
    names = {p.alias or p.name for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _names(sub)
    return names


def known_query(route: Any) -> frozenset[str]:
    """The query parameter names ``route`` declares."""
    found = _KNOWN.get(id(route))
    if found is None:
        dependant = getattr(route, "dependant", None)
        found = frozenset(_names(dependant)) if dependant is not None else frozenset()
        if len(_KNOWN) < 10_000:  # routes are few; bounded all the same
            _KNOWN[id(route)] = found
    return found


def reject_unknown_query(request: Request) -> None:
    """422 (the validation error shape) naming every query parameter the route does not take."""
    route = request.scope.get("route")
    if route is None:
        return
    known = known_query(route)
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"Unknown query parameter (this route takes: {takes})",
                    "input": request.query_params.get(name),
                }
                for name in unknown
            ]
        )
