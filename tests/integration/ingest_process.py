"""`emostream ingest --source http` as a child process on the test broker (edge tests)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from emostream.local.servers import ServiceProcess, free_port, settings_env
from emostream.settings import KafkaOptions


@contextmanager
def ingest_process(kafka: KafkaOptions, log_dir: Path, **env: str):
    """The HTTP-only ingest for the block; yields its base URL. ``env``: more variables."""
    port = free_port()
    variables = settings_env("kafka", kafka) | {
        "EMOSTREAM_INGEST__SOURCE": "http",
        "EMOSTREAM_INGEST__HTTP__PORT": str(port),
        "EMOSTREAM_LOG__LEVEL": "INFO",
        "EMOSTREAM_LOG__JSON_OUTPUT": "true",
        **env,
    }
    proc = ServiceProcess("ingest", variables, log_dir / "ingest.log")
    try:
        proc.start(port)
        yield f"http://127.0.0.1:{port}"
    except BaseException:
        print((log_dir / "ingest.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        proc.stop()


async def read_topic(bootstrap: str, topic: str, enough: int, timeout_s: float = 20.0) -> list:
    """Up to ``enough`` records of ``topic`` from the start (or what came within ``timeout_s``)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
        parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in parts])
        found: list = []
        deadline = time.monotonic() + timeout_s
        while len(found) < enough and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                found.extend(records)
        return found
    finally:
        await consumer.stop()
