"""Settings section of the camera fleet (``EMOSTREAM_FLEET__*``, issue 35).

Read by ingest (the fleet member: which topic, which group, where file sources may live) and by
the aggregator (the registry API: the same topic and the same source rules); kept apart from
``emostream.config`` so that module stays small.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class FleetOptions(BaseModel):
    """Cameras as data: a compacted topic, a consumer group of ingests, status in Redis."""

    cameras_topic: str = Field(
        "emostream.cameras",
        description="The camera registry: compacted, key = stream id, JSON value, empty = deleted",
    )
    cameras_partitions: int = Field(
        12,
        ge=1,
        le=1000,
        description="Partitions of the cameras topic when created: the most fleet ingests that "
        "get cameras (cameras are spread by stream id hash)",
    )
    group_id: str = Field(
        "emostream-ingest-fleet", description="Consumer group of the fleet ingests"
    )
    source_root: str | None = Field(
        None,
        description="Video files and image folders must lie under this directory; unset: only "
        "URLs (and webcams, if allowed) are accepted",
    )
    allowed_schemes: list[str] = Field(
        default_factory=lambda: ["rtsp", "rtsps", "http", "https"],
        max_length=16,
        description="URL schemes a camera source may use",
    )
    allow_webcams: bool = Field(
        False, description="Accept webcam indexes (a device of the ingest's own machine)"
    )
    max_cameras: int = Field(1000, ge=1, le=100_000, description="Cameras the registry accepts")
    max_cameras_per_ingest: int = Field(
        200, ge=1, le=10_000, description="Cameras one fleet ingest runs; more report an error"
    )
    status_interval_s: float = Field(
        2.0, gt=0, le=60, description="How often a fleet ingest writes its cameras' status"
    )
    status_ttl_s: float = Field(
        15.0, gt=0, le=3600, description="A camera's status expires this long after its last write"
    )
    backoff_min_s: float = Field(
        1.0, gt=0, le=60, description="First wait before reopening a failed camera, doubling"
    )
    backoff_max_s: float = Field(
        30.0, gt=0, le=3600, description="Longest wait between attempts to open a camera"
    )
