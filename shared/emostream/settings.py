"""Settings *sections* shared by every service; ``emostream.config`` (services/) has the settings.

Sections are plain ``BaseModel`` named ``*Options``; each service composes them into its own
``*Settings`` (a ``BaseSettings`` in ``emostream.config``, which reads the environment:
``EMOSTREAM_``, ``__`` nesting) built in ``main()``, never at import time. Variable names come
from field names (``EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS``), not from class names. Names that look
alike: docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator


class KafkaOptions(BaseModel):
    """Broker connection and topic names."""

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Brokers to start from: host:port, several comma-separated"
    )
    frames_topic: str = Field(
        "emostream.frames", description="JPEG frames, from ingest to the workers"
    )
    events_topic: str = Field(
        "emostream.events", description="Emotion events (schema v1), from the workers"
    )
    dlq_topic: str = Field(
        "emostream.dlq",
        description="Dead letters: rejected frames and events, the reason in headers",
    )
    changes_topic: str = Field(
        "emostream.changes", description="Changes of a track's stable emotion"
    )
    alerts_topic: str = Field("emostream.alerts", description="Alerts fired by rules")
    topic_partitions: int = Field(
        6,
        ge=1,
        description="Partitions of the topics the services create (create_topics); "
        "existing topics keep theirs",
    )
    replication_factor: int = Field(
        1, ge=1, description="Replication of the topics the services create"
    )
    create_topics: bool = Field(
        True,
        description="Create missing topics at start and after a broker lost them; false "
        "where an operator creates them",
    )
    client_id: str = Field("emostream", description="Prefix of the Kafka client ids")
    # Security: validated together (below) so that a half-configured cluster fails at start-up
    # with the variable to fix, not at the first connection.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="SSL and SASL_SSL encrypt (TLS); SASL_* authenticate with the SASL settings",
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, validate_default=True, description="Required with SASL_PLAINTEXT and SASL_SSL"
    )
    sasl_username: SecretStr | None = Field(None, validate_default=True, description="SASL user")
    sasl_password: SecretStr | None = Field(
        None, validate_default=True, description="SASL password"
    )
    ssl_ca_file: str | None = Field(
        None,
        validate_default=True,
        description="PEM file of the CA(s) that signed the brokers' certificates; default: the "
        "system's trusted CAs",
    )
    ssl_cert_file: str | None = Field(
        None,
        validate_default=True,
        description="PEM client certificate (mutual TLS), with ssl_key_file",
    )
    ssl_key_file: str | None = Field(
        None, validate_default=True, description="PEM private key of ssl_cert_file"
    )
    ssl_key_password: SecretStr | None = Field(
        None, description="Password of an encrypted ssl_key_file"
    )
    ssl_check_hostname: bool = Field(
        True,
        description="The broker's certificate must name the "
        "address connected to; turn off only for a test cluster",
    )
    max_message_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="Largest record produced (dead letters are cut to it); "
        "the topics' max.message.bytes must allow it",
    )
    fetch_max_bytes: int = Field(
        8_388_608,
        ge=65_536,
        description="Cap on one fetch response: what a consumer buffers ahead of processing",
    )
    fetch_max_wait_ms: int = Field(
        50,
        ge=1,
        le=5000,
        description="Longest a fetch waits for new data; bounds the delay a fetch adds to a frame",
    )
    request_timeout_ms: int = Field(30_000, ge=1000, description="Kafka request timeout")
    session_timeout_ms: int = Field(
        6_000,
        ge=1000,
        description="A consumer silent this long leaves its group and its partitions move: a "
        "killed worker's streams wait this long (the broker's group.min.session.timeout.ms, "
        "6000 on Kafka by default, is the floor)",
    )
    heartbeat_interval_ms: int = Field(
        1_000,
        ge=100,
        description="Consumer group heartbeat interval; members learn of a rebalance within it "
        "(at most a third of session_timeout_ms)",
    )

    @field_validator("sasl_mechanism", "sasl_username", "sasl_password")
    @classmethod
    def _sasl_fits_protocol(cls, value: object, info: ValidationInfo) -> object:
        protocol = info.data.get("security_protocol", "PLAINTEXT")
        sasl = protocol.startswith("SASL_")
        if sasl and value is None:
            what = (
                "set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                if info.field_name == "sasl_mechanism"
                else "set it (from a secret)"
            )
            raise ValueError(f"required with security_protocol {protocol}: {what}")
        if not sasl and value is not None:
            raise ValueError(
                f"only used with SASL_PLAINTEXT or SASL_SSL, not {protocol}: "
                "set EMOSTREAM_KAFKA__SECURITY_PROTOCOL"
            )
        return value

    @field_validator("ssl_ca_file", "ssl_cert_file", "ssl_key_file")
    @classmethod
    def _ssl_fits_protocol(cls, value: str | None, info: ValidationInfo) -> str | None:
        protocol = info.data.get("security_protocol", "PLAINTEXT")
        if value is not None and protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(
                f"only used with SSL or SASL_SSL, not {protocol}: "
                "set EMOSTREAM_KAFKA__SECURITY_PROTOCOL"
            )
        if info.field_name == "ssl_key_file" and (value is None) != (
            info.data.get("ssl_cert_file") is None
        ):
            raise ValueError("a client certificate needs both ssl_cert_file and ssl_key_file")
        return value

    def hosts(self) -> list[str]:
        """The host part of each bootstrap server (``[::1]:9092`` gives ``::1``)."""
        found = []
        for server in self.bootstrap_servers.split(","):
            server = server.strip()
            if server.startswith("["):
                found.append(server[1:].partition("]")[0])
            elif server.count(":") == 1:
                found.append(server.partition(":")[0])
            else:
                found.append(server)  # a bare name or IPv6 address, no port
        return found


class RedisOptions(BaseModel):
    """Redis connection (what the aggregator keeps there is bounded by its own options)."""

    url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL (may carry a password)"
    )
    key_prefix: str = Field("emostream", description="Prefix of every Redis key")

    def host(self) -> str:
        """The URL's host; ``localhost`` for a Unix socket (``unix:///run/redis.sock``)."""
        return urlsplit(self.url.get_secret_value()).hostname or "localhost"


class HttpServerOptions(BaseModel):
    """Timeouts and the connection cap of every HTTP server (ingest, API, health and metrics)."""

    idle_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="A connection with no request under way closes after this",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="From a request's first byte to the end of its headers",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="From the end of a request's headers to its body's end",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections (WebSockets too) per server; more are closed at once, "
        "and requests at the cap get 503",
    )


class LogOptions(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level of the service"
    )
    json_output: bool | None = Field(None, description="None: JSON unless stdout is a TTY")
