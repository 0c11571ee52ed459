"""The aggregator's HTTP API: ``app.py`` builds it from ``routes/`` (one module per resource) and
the edge every route shares (key scopes, dependencies, limits, read budget, error answers,
response models, the OpenAPI document, ``/metrics``)."""

from emostream.aggregator.api.app import create_app, service_app

__all__ = ["create_app", "service_app"]
