"""Metrics of a fleet ingest, with bounded labels (no stream ids: the API has per-camera status).

Prometheus's ``instance`` label tells the replicas apart.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STATES = ("starting", "running", "error", "ended", "refused")
CAMERAS = Gauge("emostream_fleet_cameras", "Cameras this fleet ingest holds, by state", ["state"])
PARTITIONS = Gauge(
    "emostream_fleet_partitions", "Partitions of the cameras topic assigned to this ingest"
)
RECONNECTS = Counter(
    "emostream_fleet_camera_reconnects_total", "Attempts to reopen a failed or ended camera"
)


def observe(states: list[str], partitions: int) -> None:
    """Set the gauges from the states of the cameras held (and those refused)."""
    for state in STATES:
        CAMERAS.labels(state).set(sum(1 for s in states if s == state))
    PARTITIONS.set(partitions)
