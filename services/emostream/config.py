"""Each service's ``Settings``: shared sections composed per service, read from the environment.

``EMOSTREAM_`` prefix, ``__`` nesting: ``EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS=broker:9092``.
Built in ``main()`` (never at import time) and passed down.

Naming: a class that reads the environment is a ``*Settings`` (``BaseSettings``: one per
service, all derived from ``ServiceSettings``); a section of one is a ``*Options`` (a plain
``BaseModel``: ``KafkaOptions`` from ``emostream.settings``, ``IngestOptions`` here). A
variable's name comes from the field names, never from a class name. The demo runs every
service, so ``DemoSettings`` derives from all three instead of restating their sections.

Which is which: ``emostream.settings`` (library, ``shared/``) holds the sections several services
share; this module (``services/``) reads the environment. See docs/ARCHITECTURE.md ("Names that
look alike").
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from emostream.alert_options import AlertOptions
from emostream.api_limits import ReadBudgetOptions
from emostream.fleet_options import FleetOptions
from emostream.metrics_options import ApiMetricsOptions, StreamMetricsOptions
from emostream.retention import RetentionOptions
from emostream.secret_files import SecretFilesSource
from emostream.settings import HttpServerOptions, KafkaOptions, LogOptions, RedisOptions
from emostream.vision_options import DetectorOptions, ModelOptions, SmoothingOptions

_CONFIG = SettingsConfigDict(
    env_prefix="EMOSTREAM_", env_nested_delimiter="__", env_file=".env", extra="ignore"
)


MIN_API_KEY_CHARS = 12


# An empty key once authorised an empty X-API-Key header; short ones are guessable.
def _long_enough(key: SecretStr) -> SecretStr:
    if len(key.get_secret_value().strip()) < MIN_API_KEY_CHARS:
        raise ValueError(f"API keys need at least {MIN_API_KEY_CHARS} characters")
    return key


ApiKey = Annotated[SecretStr, AfterValidator(_long_enough)]
BrowserOrigins = list[str]


def _browser_origins(description: str) -> Any:
    """A list of other web origins allowed in, at most 32 (none by default)."""
    return Field(default_factory=list, max_length=32, description=description)


# emostream.frames.MAX_FRAME_BYTES, the worker's limit (not imported: it would load OpenCV here).
WORKER_MAX_FRAME_BYTES = 8 * 1024 * 1024


class IngestHttpOptions(BaseModel):
    """Frames over HTTP: POST ``/v1/streams/{id}/frames``, WebSocket ``../ingest``, ``/capture``."""

    port: int = Field(0, ge=0, le=65535, description="Ingest HTTP port; 0 (default) disables")
    host: str = Field("127.0.0.1", description="Binding beyond loopback requires ingest API keys")
    max_in_flight_frames: int = Field(
        64, ge=1, le=10_000, description="Frames sent to Kafka, not yet acknowledged; more get 429"
    )
    ws_queue_frames: int = Field(
        8, ge=1, le=1000, description="Per-WebSocket queue; the oldest frames are dropped beyond it"
    )
    max_frame_bytes: int | None = Field(
        None,
        ge=1024,
        le=WORKER_MAX_FRAME_BYTES,
        description="Larger frames get 413 (WebSocket: close 1009); default and most: what one "
        "Kafka record holds (EMOSTREAM_KAFKA__MAX_MESSAGE_BYTES less 1 KiB for key and headers)",
    )
    ack_timeout_s: float = Field(
        10.0, gt=0, le=120, description="A POST waits this long for Kafka's acknowledgement"
    )
    retry_after_s: int = Field(1, ge=1, le=60, description="Retry-After of a 429")
    max_capture_ahead_s: float = Field(
        5.0, ge=0, le=3600, description="Client capture times past now + this are clamped to it"
    )
    browser_origins: BrowserOrigins = _browser_origins(
        "Other origins whose pages may upload over the WebSocket (your app's), e.g. "
        '["https://app.example.com"]; /capture, served here, needs none'
    )
    aggregator_url: str = Field(
        "http://127.0.0.1:8000",
        description="The aggregator the capture page reads live results from (its origin must "
        "be in the aggregator's EMOSTREAM_API__BROWSER_ORIGINS)",
    )


class HealthOptions(BaseModel):
    """The /metrics, /livez, /readyz server of ingest and the worker (the API serves its own)."""

    metrics_port: int = Field(
        0, ge=0, le=65535, description="/metrics, /livez, /readyz; 0 (default) disables"
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Interface for the health/metrics port: "
        "loopback by default; containers set 0.0.0.0 (compose, Kubernetes)",
    )
    liveness_timeout_s: float = Field(
        60.0, gt=0, description="/livez fails past this without progress"
    )


class IngestOptions(HealthOptions):
    source: str = Field(
        "sample",
        description="sample | video path | image folder | webcam index | rtsp/http URL | "
        "http (no pull source: frames over HTTP only) | fleet (the cameras of the registry, "
        "EMOSTREAM_FLEET__*; what `emostream ingest` without --source runs)",
    )
    stream_id: str | None = Field(None, description="Default: derived from the source")
    fps: float = Field(10.0, gt=0, le=120, description="Frames per second read and published")
    max_frames: int | None = Field(
        None, ge=1, description="Stop after this many frames; default: no limit"
    )
    loop: bool = Field(False, description="Restart files and folders at the end")
    jpeg_quality: int = Field(85, ge=30, le=100, description="JPEG quality of published frames")
    max_width_px: int = Field(
        1280, ge=64, description="Wider frames are downscaled before publishing"
    )
    max_in_flight: int = Field(64, ge=1, description="Frames published but not yet acknowledged")
    reconnect_delay_s: float = Field(
        2.0, ge=0.1, description="Wait before reopening a live source that failed"
    )
    http: IngestHttpOptions = IngestHttpOptions()
    stream_metrics: StreamMetricsOptions = StreamMetricsOptions()
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description="X-API-Key values that may write frames over HTTP (a scope of their own)",
    )


class WorkerOptions(HealthOptions):
    group_id: str = Field(
        "emostream-worker", description="The workers' consumer group (KEDA scales on its lag)"
    )
    max_batch_frames: int = Field(16, ge=1, description="Frames per micro-batch")
    max_wait_ms: int = Field(200, ge=1, description="Longest wait to fill a micro-batch")
    target_latency_ms: int = Field(
        200,
        ge=10,
        description="Latency target (capture to event) the worker steers by: a micro-batch may "
        "keep it busy for half of this (the batch limit, up to max_batch_frames, follows what "
        "batches took); a worker that is behind takes full batches and drops stale frames",
    )
    max_frame_age_ms: int = Field(2000, ge=1, description="Live frames older than this are dropped")
    metrics_port: int = Field(
        9102, ge=0, le=65535, description="/metrics, /livez, /readyz; 0 disables"
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="On SIGTERM, time to finish the batch in hand"
    )
    track_min_hits: int = Field(
        3,
        ge=1,
        le=30,
        description="A face yields events once its track is detected in this many consecutive "
        "frames (SORT's min_hits): one-frame false detections never become events",
    )
    dead_letter_images: bool = Field(
        False,
        description="Keep a rejected frame's image bytes in its dead letter (for replay); off: "
        "only the reason, offsets, size and SHA-256 (dead letters are kept 7 days)",
    )
    path: Literal["auto", "cpu", "device"] = Field(
        "auto",
        description="Processing path: cpu (OpenCV decode and detection per stream in threads), "
        "device (decode, detection and crops batched as torch ops on the model's device: the "
        "GPU path, also runs on a CPU), auto (device when CUDA is available, else cpu)",
    )


class ApiOptions(BaseModel):
    host: str = Field("127.0.0.1", description="Binding beyond loopback requires API keys")
    port: int = Field(8000, ge=1, le=65535, description="HTTP API port")
    max_events_limit: int = Field(500, ge=1, description="Largest limit of /v1/streams/{id}/events")
    read_keys: list[ApiKey] = Field(default_factory=list, description="X-API-Key values for reads")
    admin_keys: list[ApiKey] = Field(default_factory=list, description="Keys with admin scope")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Larger request bodies get 413")
    browser_origins: BrowserOrigins = _browser_origins(
        "Other origins whose pages may open /v1/live, e.g. the ingest capture page "
        '["http://127.0.0.1:8001"]'
    )
    max_live_clients: int = Field(
        200,
        ge=1,
        description="WebSocket + SSE clients at once; more "
        "are refused (WebSocket close 1013, SSE 503)",
    )
    reads: ReadBudgetOptions = ReadBudgetOptions()
    metrics: ApiMetricsOptions = ApiMetricsOptions()


# One section, EMOSTREAM_AGGREGATOR__*: the consumer's options plus the retention its stores use
# (a subclass, so the stores take only the retention part).
class AggregatorOptions(RetentionOptions):
    group_id: str = Field("emostream-aggregator", description="The aggregators' consumer group")
    max_batch_events: int = Field(500, ge=1, description="Events per Redis write")
    max_wait_ms: int = Field(200, ge=1, description="Longest wait to fill a batch")
    max_capture_ahead_s: float = Field(
        5.0, ge=0, le=3600, description="Event capture times past now + this are clamped to it"
    )


class ServiceSettings(BaseSettings):
    """What every service reads: the Kafka connection, logging, its HTTP servers' limits."""

    model_config = _CONFIG
    kafka: KafkaOptions = KafkaOptions()
    log: LogOptions = LogOptions()
    http_server: HttpServerOptions = HttpServerOptions()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        """``EMOSTREAM_X_FILE=/path`` too (emostream.secret_files): after the environment,
        before ``.env``."""
        files = SecretFilesSource(settings_cls)
        return (init_settings, env_settings, files, dotenv_settings, file_secret_settings)

    def reached_hosts(self) -> list[str]:
        """Hosts this service binds or connects to (placeholder secrets need all on loopback)."""
        return self.kafka.hosts()


class IngestSettings(ServiceSettings):
    ingest: IngestOptions = IngestOptions()
    fleet: FleetOptions = FleetOptions()
    redis: RedisOptions = RedisOptions()  # the fleet's camera status

    def reached_hosts(self) -> list[str]:
        http = self.ingest.http
        return [*super().reached_hosts(), *([http.host] if http.port else [])]


class WorkerSettings(ServiceSettings):
    worker: WorkerOptions = WorkerOptions()
    detector: DetectorOptions = DetectorOptions()
    model: ModelOptions = ModelOptions()
    smoothing: SmoothingOptions = SmoothingOptions()


class AggregatorSettings(ServiceSettings):
    redis: RedisOptions = RedisOptions()
    aggregator: AggregatorOptions = AggregatorOptions()
    api: ApiOptions = ApiOptions()
    alerts: AlertOptions = AlertOptions()
    fleet: FleetOptions = FleetOptions()

    def reached_hosts(self) -> list[str]:
        return [*super().reached_hosts(), self.redis.host(), self.api.host]


class DemoSettings(IngestSettings, WorkerSettings, AggregatorSettings):
    """Everything the demo runs in one process: each service's sections, and its own."""

    kafka: KafkaOptions = KafkaOptions(topic_partitions=2)
    redis_mode: Literal["auto", "external", "embedded"] = Field(
        "auto",
        description="Demo only: auto uses REDIS_URL when it answers, else starts a Redis; "
        "external or embedded force one",
    )

    def reached_hosts(self) -> list[str]:
        # Its own broker; the capture page is always served; Redis is REDIS_URL's or its own
        # (the runner adds REDIS_URL's host).
        return [self.api.host, self.ingest.http.host]


def masked_dump(settings: BaseSettings) -> dict:
    """Effective config with secrets masked, for the one start-up log line."""
    return settings.model_dump(mode="json")
