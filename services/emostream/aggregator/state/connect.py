"""A Redis client for ``EMOSTREAM_REDIS__URL``: a plain one, or a cluster one when the server
says it is a Redis Cluster node (``INFO cluster``: ``cluster_enabled:1``). No other setting."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from emostream.errors import DependencyUnavailable

AnyRedis = aioredis.Redis | RedisCluster


async def is_cluster(url: str) -> bool:
    """Whether the node at ``url`` has cluster mode enabled (one short-lived connection)."""
    probe = aioredis.from_url(url, decode_responses=True, socket_timeout=10, max_connections=1)
    try:
        info = await probe.info("cluster")
    except (RedisConnectionError, OSError) as exc:
        raise DependencyUnavailable(f"Redis not reachable: {exc}") from exc
    except RedisError:  # a server or proxy without INFO cluster: not a cluster node
        return False
    finally:
        await probe.aclose()
    return str(info.get("cluster_enabled", 0)) == "1"


async def connect(url: str, **options: Any) -> tuple[AnyRedis, bool]:
    """A started client for ``url`` and whether it is a cluster client; ``options`` go to the
    client (``decode_responses``, timeouts, ``max_connections``)."""
    cluster = await is_cluster(url)
    client: AnyRedis
    if cluster:
        client = RedisCluster.from_url(url, **options)
        try:
            await client.initialize()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise DependencyUnavailable(f"Redis Cluster not reachable: {exc}") from exc
    else:
        client = aioredis.from_url(url, **options)
    try:
        await client.ping()
    except (RedisConnectionError, OSError) as exc:
        await client.aclose()
        raise DependencyUnavailable(f"Redis not reachable: {exc}") from exc
    return client, cluster


async def get_many(client: AnyRedis, keys: list[str]) -> list[Any]:
    """GET of keys on any slots: one MGET on a node, per-slot MGETs on a cluster."""
    if not keys:
        return []
    if isinstance(client, RedisCluster):
        return await client.mget_nonatomic(keys)
    return await client.mget(keys)
