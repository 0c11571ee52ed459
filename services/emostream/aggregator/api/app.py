"""Build the aggregator's HTTP app (FastAPI): health, streams, state, events, sessions, rules.

Routes live in ``emostream.aggregator.api.routes`` (one module per resource) and share what this
module puts on ``app.state`` through ``emostream.aggregator.api.deps``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from emostream.aggregator.api import log_redaction
from emostream.aggregator.api.deps import ApiContext
from emostream.aggregator.api.error_handlers import install_error_handlers
from emostream.aggregator.api.limits import BodySizeLimit
from emostream.aggregator.api.metrics_endpoint import mount_metrics
from emostream.aggregator.api.openapi_doc import DESCRIPTION, install_openapi
from emostream.aggregator.api.read_budget import ReadBudget
from emostream.aggregator.api.routes import cameras, dashboard, health, live
from emostream.aggregator.api.routes.feeds import feeds_router
from emostream.aggregator.api.routes.rules import rules_router
from emostream.aggregator.api.routes.sessions import sessions_router
from emostream.aggregator.api.routes.streams import streams_router
from emostream.aggregator.live.hub import LiveHub
from emostream.aggregator.live.replay import LINGER_S
from emostream.aggregator.state.store import EventStore
from emostream.api_limits import ReadBudgetOptions
from emostream.config import AlertOptions, ApiOptions
from emostream.metrics_options import ApiMetricsOptions
from emostream.runtime.origin_check import BrowserChecks


def create_app(
    store: EventStore,
    max_events_limit: int = 500,
    consumer: Any = None,
    read_keys: list[SecretStr] | None = None,
    admin_keys: list[SecretStr] | None = None,
    *,
    alerts: AlertOptions | None = None,
    max_body_bytes: int = 64 * 1024,
    max_live_clients: int = 200,
    local_hosts_only: bool = False,
    bind_host: str | None = None,
    browser_origins: list[str] | None = None,
    reads: ReadBudgetOptions | None = None,
    metrics: ApiMetricsOptions | None = None,
) -> FastAPI:
    """Build the app around a started store (and, optionally, the consumer for readiness).

    Live clients share one Redis subscription (``app.state.live_hub``; the caller stops it).
    ``local_hosts_only`` (keyless mode): requests must name this machine in ``Host``.
    ``browser_origins``: other pages' origins allowed to open the live WebSocket.
    ``reads``: the read budget (429 past it); ``metrics``: where ``/metrics`` is served (on
    this app unless it has a port of its own); None: the defaults.
    """
    log_redaction.install()
    app = FastAPI(title="emostream aggregator", version="1", docs_url="/docs")
    app.add_middleware(
        BrowserChecks,
        local_hosts_only=local_hosts_only,
        bind_host=bind_host,
        allowed_origins=browser_origins or [],
    )
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    mount_metrics(app, metrics or ApiMetricsOptions(), read_keys or [], admin_keys or [])
    hub = LiveHub(store.settings, max_clients=max_live_clients, linger_s=LINGER_S)
    app.state.live_hub = hub
    app.state.api = ApiContext(
        store,
        hub,
        consumer,
        read_keys or [],
        admin_keys or [],
        webhooks_enabled=(alerts or AlertOptions()).webhook_secret is not None,
        reads=ReadBudget(reads or ReadBudgetOptions()),
        max_window_sizes=(reads or ReadBudgetOptions()).max_window_sizes,
    )
    install_error_handlers(app)
    retention = store.retention
    app.include_router(rules_router(retention.max_deliveries_per_rule))
    app.include_router(dashboard.router)
    app.include_router(health.router)
    app.include_router(streams_router(max_events_limit))
    app.include_router(sessions_router(retention.max_sessions_per_stream))
    app.include_router(
        feeds_router(max(retention.max_changes_per_stream, retention.max_alerts_per_stream))
    )
    app.include_router(live.router)
    app.include_router(cameras.router)  # answers 404 until app.state.cameras is set
    install_openapi(app, DESCRIPTION)  # the key scheme and every error status, per route
    return app


def service_app(store: EventStore, consumer: Any, api: ApiOptions, alerts: AlertOptions) -> FastAPI:
    """``create_app`` as the aggregator service and the demo run it, from their settings."""
    return create_app(
        store,
        api.max_events_limit,
        consumer,
        api.read_keys,
        api.admin_keys,
        alerts=alerts,
        max_body_bytes=api.max_body_bytes,
        max_live_clients=api.max_live_clients,
        local_hosts_only=not (api.read_keys or api.admin_keys),
        bind_host=api.host,
        browser_origins=api.browser_origins,
        reads=api.reads,
        metrics=api.metrics,
    )
