"""Settings sections of the aggregator API's limits: the read budget and the metrics endpoint.

Part of ``ApiOptions`` (``EMOSTREAM_API__READS__*``, ``EMOSTREAM_API__METRICS__*``); kept apart
from ``emostream.config`` so that module stays small.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReadBudgetOptions(BaseModel):
    """A token bucket per API key (per client address without keys), weighted by the Redis
    reads a request implies (``/windows?window_s=3600`` costs about 3,600, a state read 3)."""

    per_client_per_s: float = Field(
        1000.0, ge=0, description="Redis reads a second one key or address may cause; 0: no limit"
    )
    per_client_burst: int = Field(
        8000, ge=3700, description="Reads one key or address may cause at once (an hour's window)"
    )
    total_per_s: float = Field(
        4000.0,
        ge=0,
        description="Redis reads a second of all expensive requests together (over "
        "cheap_cost); 0: no limit",
    )
    total_burst: int = Field(16_000, ge=3700, description="Reads all clients may cause at once")
    cheap_cost: int = Field(
        20, ge=1, description="Requests up to this cost draw only on their own client's budget"
    )
    max_clients: int = Field(
        10_000, ge=1, le=1_000_000, description="Keys and addresses tracked; the idlest leave"
    )
    max_window_sizes: int = Field(
        10, ge=1, le=100, description="window_s values one /windows request may ask for"
    )
