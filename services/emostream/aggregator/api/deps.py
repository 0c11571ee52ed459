"""The API's dependencies: the store, the live hub, API-key scopes and a known-stream check.

``create_app`` puts one ``ApiContext`` on ``app.state.api``; these read it from the request, so
route modules need no closure over the app's arguments, and tests can override any of them
(``app.dependency_overrides``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Path, Request
from pydantic import SecretStr
from starlette.requests import HTTPConnection

from emostream.aggregator.api.auth import check_scope, is_admin
from emostream.aggregator.api.query_check import reject_unknown_query
from emostream.aggregator.api.read_budget import REFUSED, ReadBudget, read_cost, retry_after
from emostream.aggregator.live.hub import LiveHub
from emostream.aggregator.rules.store import RuleStore
from emostream.aggregator.state.store import EventStore
from emostream.frames import STREAM_ID_RE

StreamId = Annotated[str, Path(pattern=STREAM_ID_RE.pattern, description="Stream id")]
ApiKeyHeader = Annotated[str | None, Header(include_in_schema=False)]


def presented_key(x_api_key: ApiKeyHeader = None, authorization: ApiKeyHeader = None) -> str | None:
    """The caller's key: ``X-API-Key``, else ``Authorization: Bearer <key>`` (both declared as
    security schemes in the OpenAPI document)."""
    if x_api_key is not None:
        return x_api_key
    if authorization is not None and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


PresentedKey = Annotated[str | None, Depends(presented_key)]


@dataclass
class ApiContext:
    """What the routes share: the (started) store, the live hub, the consumer and the keys."""

    store: EventStore
    hub: LiveHub
    consumer: Any = None  # for readiness: ``assigned`` and ``webhooks``; None: not consuming
    read_keys: list[SecretStr] = field(default_factory=list)
    admin_keys: list[SecretStr] = field(default_factory=list)
    webhooks_enabled: bool = False  # a signing secret is set: rules may name a webhook_url
    reads: ReadBudget | None = None  # None: reads are not limited
    max_window_sizes: int = 10  # window_s values one /windows request may ask for

    def is_admin(self, key: str | None) -> bool:
        return is_admin(key, self.read_keys, self.admin_keys)

    def rules(self) -> RuleStore:
        """The rule store on the store's connection; called in a route, after its input is
        validated (FastAPI resolves dependencies first, and an unstarted store raises)."""
        return RuleStore(self.store.redis, self.store.key_prefix, self.store.retention)


def get_context(conn: HTTPConnection) -> ApiContext:
    return conn.app.state.api


Context = Annotated[ApiContext, Depends(get_context)]


def get_store(ctx: Context) -> EventStore:
    return ctx.store


Store = Annotated[EventStore, Depends(get_store)]


async def require_read(request: Request, ctx: Context, x_api_key: PresentedKey = None) -> None:
    """401 without a valid key (open when no keys are configured); then 422 for a query
    parameter the route does not take."""
    check_scope(x_api_key, "read", ctx.read_keys, ctx.admin_keys)
    reject_unknown_query(request)


async def require_admin(ctx: Context, x_api_key: PresentedKey = None) -> None:
    """401 without a valid key, 403 with a read-only one; open when no keys are configured."""
    check_scope(x_api_key, "admin", ctx.read_keys, ctx.admin_keys)


async def charge_read(conn: HTTPConnection, ctx: Context, x_api_key: PresentedKey = None) -> None:
    """429 with ``Retry-After`` when the caller (its key, or its address in keyless mode) or all
    callers together spent the read budget; runs after ``require_read``, so keys are valid."""
    if ctx.reads is None:
        return
    if x_api_key is not None and (ctx.read_keys or ctx.admin_keys):
        who = "key:" + hashlib.sha256(x_api_key.encode(errors="replace")).hexdigest()[:24]
    else:
        who = "addr:" + (conn.client.host if conn.client else "")
    query = conn.query_params
    cost = read_cost(conn.url.path, query, query.getlist("window_s"))
    wait = ctx.reads.charge(who, cost)
    if wait > 0:
        route = getattr(conn.scope.get("route"), "path", "other")
        REFUSED.labels(route).inc()
        raise HTTPException(
            429,
            detail=f"read budget spent (this request costs {cost} Redis reads); retry later",
            headers={"Retry-After": retry_after(wait)},
        )


ReadScope = Depends(require_read)
ReadBudgetScope = Depends(charge_read)
AdminScope = Depends(require_admin)


class StreamCheck:
    """Awaited in a route, after FastAPI validated its query: 404 for a stream not in the store.

    A callable handed in by a dependency rather than a dependency that checks at once, so a bad
    query is a 422 even for an unknown stream (and answers without touching Redis).
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def __call__(self, stream_id: str) -> None:
        if await self._store.stream_state(stream_id) is None:
            raise HTTPException(404, detail=f"unknown stream {stream_id!r}")


def get_stream_check(store: Store) -> StreamCheck:
    return StreamCheck(store)


KnownStream = Annotated[StreamCheck, Depends(get_stream_check)]
