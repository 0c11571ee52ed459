"""Topic names of one run: a test's or a benchmark's own topics on a shared broker."""

from __future__ import annotations

import uuid

# Every ``KafkaOptions`` field ``<name>_topic``, in the order the pipeline uses them.
TOPICS = ("frames", "events", "dlq", "changes", "alerts")


def run_topics(tag: str | None = None, prefix: str = "") -> dict[str, str]:
    """``{"frames_topic": "<prefix>frames-<tag>", ...}`` for every topic, as ``KafkaOptions``
    keyword arguments; ``tag`` defaults to a fresh random one."""
    tag = tag if tag is not None else uuid.uuid4().hex[:8]
    return {f"{name}_topic": f"{prefix}{name}-{tag}" for name in TOPICS}
