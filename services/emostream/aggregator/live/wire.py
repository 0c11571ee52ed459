"""The live channel's wire format, written by the stores and read by ``LiveHub``.

One message carries many items, one a line: ``{kind}\\t{stream_id}\\t{JSON document}`` (the
document is compact JSON, so it holds no raw newline or tab). A batch is one PUBLISH on one
node (``{p}:live``) and one SPUBLISH per shard channel it touches on a cluster
(``{p}:live:{i}``), so the hub filters by stream and kind without parsing a document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from emostream.aggregator.state.keys import live_channel, partition

Item = tuple[str, str, str]  # kind ("event", "change", "alert"), stream id, JSON document


def encode(items: list[Item]) -> str:
    return "\n".join(f"{kind}\t{sid}\t{doc}" for kind, sid, doc in items)


def decode(message: str) -> Iterator[Item]:
    for line in message.split("\n"):
        kind, _, rest = line.partition("\t")
        sid, _, doc = rest.partition("\t")
        if doc:
            yield kind, sid, doc


def queue_publish(pipe: Any, prefix: str, cluster: bool, items: list[Item]) -> None:
    """Queue the messages for ``items`` on a (non-transactional) pipeline."""
    if not items:
        return
    if not cluster:
        pipe.publish(live_channel(prefix, None), encode(items))
        return
    by_part: dict[int, list[Item]] = {}
    for item in items:
        by_part.setdefault(partition(item[1]), []).append(item)
    for part, group in by_part.items():
        pipe.execute_command("SPUBLISH", live_channel(prefix, part), encode(group))
