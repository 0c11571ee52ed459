"""`emostream aggregator` as a child process on the test's topics and Redis prefix."""

from __future__ import annotations

from pathlib import Path

from emostream.local.servers import ServiceProcess
from emostream.settings import KafkaOptions, RedisOptions


def aggregator_process(
    kafka: KafkaOptions, redis: RedisOptions, port: int, log_dir: Path, **extra: str
) -> ServiceProcess:
    """Not started; ``extra`` adds environment variables (``EMOSTREAM_...``)."""
    env = {
        "EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "EMOSTREAM_KAFKA__EVENTS_TOPIC": kafka.events_topic,
        "EMOSTREAM_KAFKA__DLQ_TOPIC": kafka.dlq_topic,
        "EMOSTREAM_KAFKA__ALERTS_TOPIC": kafka.alerts_topic,
        "EMOSTREAM_KAFKA__FRAMES_TOPIC": kafka.frames_topic,
        "EMOSTREAM_REDIS__URL": redis.url.get_secret_value(),
        "EMOSTREAM_REDIS__KEY_PREFIX": redis.key_prefix,
        "EMOSTREAM_AGGREGATOR__GROUP_ID": f"{redis.key_prefix}-agg",
        "EMOSTREAM_API__HOST": "127.0.0.1",
        "EMOSTREAM_API__PORT": str(port),
        "EMOSTREAM_LOG__LEVEL": "WARNING",
    } | extra
    return ServiceProcess("aggregator", env, log_path=log_dir / "aggregator.log")
