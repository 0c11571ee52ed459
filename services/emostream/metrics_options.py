"""Settings sections of what ``/metrics`` shows and where the aggregator serves it (issue 33, 10).

``IngestOptions.stream_metrics`` (``EMOSTREAM_INGEST__STREAM_METRICS__*``) and
``ApiOptions.metrics`` (``EMOSTREAM_API__METRICS__*``); kept apart from ``emostream.config`` so
that module stays small.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class StreamMetricsOptions(BaseModel):
    """Per-stream labels of ingest's frame counters: off by default (``stream_id="all"``)."""

    max_streams: int = Field(
        0,
        ge=0,
        le=10_000,
        description='Streams with a stream_id label of their own; 0 (default): all count as "all"'
        ', past the limit as "other"',
    )
    idle_s: float = Field(
        600.0,
        ge=1,
        description="A stream's label sets leave /metrics this long after its last frame",
    )


class ApiMetricsOptions(BaseModel):
    """Where the aggregator serves ``/metrics``: on the API port (default), or apart."""

    port: int = Field(
        0,
        ge=0,
        le=65535,
        description="/metrics, /livez, /readyz on a port of their own, and no /metrics on the "
        "API port; 0 (default): /metrics on the API port",
    )
    host: str = Field("127.0.0.1", description="Interface of that port (loopback by default)")
    needs_key: bool = Field(
        False,
        description="/metrics on the API port needs a read key (X-API-Key, or Authorization: "
        "Bearer for Prometheus) when keys are set",
    )
