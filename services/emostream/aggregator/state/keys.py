"""The aggregator's Redis key layout, one slot per stream so that it runs on Redis Cluster too.

Every key of a stream carries the stream id as its hash tag (``{p}:stream:{cam-1}:state``), so
a stream's keys share one hash slot and its part of a batch is one script on one node. What
spans streams is split in ``INDEX_PARTS`` small keys, each on its own slot, written separately
and idempotently: the stream index (``{p}:streams:{3}``) and, on a cluster, the live channels
(``{p}:live:{3}``, sharded pub/sub). A stream's partition is ``crc32(stream_id) % INDEX_PARTS``.
"""

from __future__ import annotations

import zlib

INDEX_PARTS = 16  # stream-index keys and cluster live channels, spread over the masters


def stream_key(prefix: str, stream_id: str, part: str) -> str:
    """A per-stream key: ``{p}:stream:{stream_id}:{part}`` with the id as hash tag."""
    return f"{prefix}:stream:{{{stream_id}}}:{part}"


def partition(stream_id: str) -> int:
    """The stream's index partition (and, on a cluster, live channel)."""
    return zlib.crc32(stream_id.encode()) % INDEX_PARTS


def index_key(prefix: str, part: int) -> str:
    """ZSET stream id -> last event capture ms, for the streams of partition ``part``."""
    return f"{prefix}:streams:{{{part}}}"


def index_keys(prefix: str) -> list[str]:
    return [index_key(prefix, i) for i in range(INDEX_PARTS)]


def live_channel(prefix: str, part: int | None) -> str:
    """The live channel: ``{p}:live`` on one node, the partition's shard channel on a cluster."""
    return f"{prefix}:live" if part is None else f"{prefix}:live:{{{part}}}"


def rules_key(prefix: str) -> str:
    return f"{prefix}:rules"


def deliveries_key(prefix: str, rule_id: str) -> str:
    """A rule's delivery log, on the slot of the rules hash (the hash's name as hash tag): the
    script that logs only while the rule exists touches both."""
    return f"{{{rules_key(prefix)}}}:deliveries:{rule_id}"
