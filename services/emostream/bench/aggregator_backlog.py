"""The backlog `emostream bench aggregator` drains: schema-valid emotion events as workers publish
them (tracked faces, smoothed emotions with stable-label changes, capture times a camera's frame
rate apart, ending now), produced to the events topic keyed by stream."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from emostream.labels import EMOTIONS
from emostream.schemas import EmotionEventV1
from emostream.settings import KafkaOptions

MODEL = {"name": "rmn-bench", "version": "1", "trained": True}


@dataclass(frozen=True)
class BacklogShape:
    """``events`` over ``streams`` cameras at ``fps``; faces a frame alternate so that they
    average ``faces_per_frame``; a track's stable label changes every ``change_every`` frames."""

    events: int = 20_000
    streams: int = 50
    fps: float = 5.0
    faces_per_frame: float = 1.5
    change_every: int = 25
    seed: int = 0

    def stream_ids(self) -> list[str]:
        return [f"bench-{i:04d}" for i in range(self.streams)]


def probabilities(rng: random.Random, top: str) -> dict[str, float]:
    """Seven probabilities (6 places, summing to exactly 1) with ``top`` the most probable."""
    raw = {label: rng.uniform(0.01, 0.2) for label in EMOTIONS}
    raw[top] = sum(raw.values())  # at least half: the argmax
    total = sum(raw.values())
    out = {label: round(v / total, 6) for label, v in raw.items()}
    out[top] = round(out[top] + 1.0 - sum(out.values()), 6)
    return out


def _faces_in(frame: int, mean: float) -> int:
    """1 or more faces, so that a run of frames averages ``mean`` (Bresenham-style)."""
    return math.floor((frame + 1) * mean) - math.floor(frame * mean)


def _event(
    rng: random.Random, sid: str, seq: int, index: int, at: datetime, shape: BacklogShape
) -> EmotionEventV1:
    track = f"{sid}-t{index}"
    phase, age = divmod(seq, shape.change_every)
    stable = EMOTIONS[(phase + index) % len(EMOTIONS)]
    raw = EMOTIONS[(phase + index + (seq % 3 == 0)) % len(EMOTIONS)]
    probs = probabilities(rng, raw)
    return EmotionEventV1(
        event_id=EmotionEventV1.make_id(sid, seq, index),
        stream_id=sid,
        frame_seq=seq,
        captured_at=at,
        processed_at=at + timedelta(milliseconds=rng.randint(40, 120)),
        latency_ms=rng.randint(40, 120),
        face={
            "index": index,
            "box": {"x": 40 + 90 * index, "y": 60, "w": 80, "h": 80},
            "detector_score": round(rng.uniform(0.7, 0.99), 4),
            "track_id": track,
        },
        emotion={"label": raw, "confidence": probs[raw], "probabilities": probs},
        smoothed={
            "label": stable,
            "confidence": round(rng.uniform(0.5, 0.9), 6),
            "probabilities": probabilities(rng, stable),
            "stable_for_s": round(age / shape.fps, 3),
            "changed": age == 0,
        },
        model=MODEL,
    )


def backlog(shape: BacklogShape) -> Iterator[tuple[str, bytes]]:
    """(stream id, event JSON) in the order cameras would produce them, ``shape.events`` in all.

    Each stream's frames are ``1 / fps`` apart and its last frame was captured about now.
    """
    rng = random.Random(shape.seed)
    sids = shape.stream_ids()
    per_stream = math.ceil(shape.events / shape.streams)
    frames = math.ceil(per_stream / shape.faces_per_frame) + 1
    start = datetime.now(UTC) - timedelta(seconds=frames / shape.fps)
    left = {sid: per_stream for sid in sids}
    sent = 0
    for seq in range(frames):
        at = start + timedelta(seconds=seq / shape.fps)
        for sid in sids:
            captured = at + timedelta(milliseconds=rng.randint(0, 30))  # cameras are not in step
            for index in range(min(_faces_in(seq, shape.faces_per_frame), left[sid])):
                if sent == shape.events:
                    return
                ev = _event(rng, sid, seq, index, captured, shape)
                yield sid, ev.model_dump_json().encode()
                left[sid] -= 1
                sent += 1


async def produce(kafka: KafkaOptions, shape: BacklogShape) -> dict[str, float]:
    """Produce the backlog to the events topic; its event count and mean size in bytes."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        acks="all",
        linger_ms=20,
        max_batch_size=256 * 1024,
        max_request_size=kafka.max_message_bytes,
    )
    await producer.start()
    count = size = 0
    try:
        pending = []
        for sid, value in backlog(shape):
            pending.append(await producer.send(kafka.events_topic, value, key=sid.encode()))
            count += 1
            size += len(value)
            if len(pending) >= 2000:
                for fut in pending:
                    await fut
                pending.clear()
        await producer.flush()
        for fut in pending:
            await fut
    finally:
        await producer.stop()
    return {"events": count, "event_bytes_mean": round(size / max(count, 1), 1)}
