"""Real servers for integration tests: a Kafka-protocol broker (Tansu) and redis-server.

Each test gets unique topic names and consumer groups, so tests never see each other's data.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from emostream.local.servers import RedisServer, TansuBroker
from emostream.local.topics import run_topics
from emostream.settings import KafkaOptions, RedisOptions
from tests.integration.redis_cluster import redis_cluster  # noqa: F401 - a shared fixture


@pytest.fixture(scope="session")
def broker():
    with TansuBroker() as b:
        yield b


@pytest.fixture(scope="session")
def redis_url():
    if shutil.which("redis-server"):
        with RedisServer() as server:
            yield server.url
        return
    from testcontainers.redis import RedisContainer  # needs a Docker engine

    with RedisContainer("redis:7-alpine") as container:
        host = container.get_container_host_ip()
        yield f"redis://{host}:{container.get_exposed_port(6379)}/0"


@pytest.fixture
def kafka_settings(broker) -> KafkaOptions:
    return KafkaOptions(
        bootstrap_servers=broker.bootstrap,
        **run_topics(),
        topic_partitions=2,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


@pytest.fixture
def group_id(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Consumer group ids of this test alone: ``group_id("agg")`` is ``<test>-agg-<random>``.

    Named after the test so a broker's group listing says whose it is; the random tag keeps a
    rerun (or a parametrised sibling) from resuming another run's committed offsets.
    """
    test = re.sub(r"[^A-Za-z0-9._-]", "_", request.node.name)[:80]
    tag = uuid.uuid4().hex[:8]
    return lambda role: f"{test}-{role}-{tag}"


@pytest.fixture
def redis_settings(redis_url) -> RedisOptions:
    return RedisOptions(url=SecretStr(redis_url), key_prefix=f"t{uuid.uuid4().hex[:8]}")
