"""Activity sessions of a stream: a session starts at the first event after a gap and ends once
``gap_s`` of capture time passes without events. Pure functions; ``EventStore`` persists them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emostream.labels import EMOTIONS
from emostream.schemas import EmotionEventV1

MAX_TRACK_IDS = 100  # track ids listed per session; tracks_seen keeps counting past it


def emotion_summary(n: int, counts: dict[str, int], prob_sums: dict[str, float]) -> dict[str, Any]:
    """Label counts, mean probabilities and the dominant emotion (highest mean; None when
    ``n`` is 0) of ``n`` events: the summary of a session and of a window."""
    return {
        "counts": {e: counts.get(e, 0) for e in EMOTIONS},
        "mean_probabilities": {
            e: round(prob_sums.get(e, 0.0) / n, 6) if n else 0.0 for e in EMOTIONS
        },
        "dominant": max(EMOTIONS, key=lambda e: prob_sums.get(e, 0.0)) if n else None,
    }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


@dataclass
class Session:
    """Running totals of one session (times in capture ms)."""

    session_id: str
    stream_id: str
    started_ms: int
    last_ms: int
    events: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    prob_sums: dict[str, float] = field(default_factory=dict)
    track_ids: list[str] = field(default_factory=list)
    tracks_seen: int = 0
    max_faces_per_frame: int = 0

    @staticmethod
    def make_id(stream_id: str, first_event_id: str) -> str:
        return hashlib.sha256(f"{stream_id}\x00{first_event_id}".encode()).hexdigest()[:16]

    @classmethod
    def open(cls, ev: EmotionEventV1) -> Session:
        t = ev.captured_ms
        return cls(cls.make_id(ev.stream_id, ev.event_id), ev.stream_id, t, t)

    def add(self, ev: EmotionEventV1) -> None:
        t = ev.captured_ms
        self.started_ms, self.last_ms = min(self.started_ms, t), max(self.last_ms, t)
        self.events += 1
        self.counts[ev.emotion.label] = self.counts.get(ev.emotion.label, 0) + 1
        for label, p in ev.emotion.probabilities.items():
            self.prob_sums[label] = self.prob_sums.get(label, 0.0) + p
        track = ev.track_key
        if track not in self.track_ids:
            self.tracks_seen += 1  # past the cap an id may be counted again; an estimate then
            if len(self.track_ids) < MAX_TRACK_IDS:
                self.track_ids.append(track)
        self.max_faces_per_frame = max(self.max_faces_per_frame, ev.face.index + 1)

    def dumps(self) -> str:
        return json.dumps(vars(self), separators=(",", ":"))  # fields are plain JSON values

    @classmethod
    def loads(cls, doc: str | None) -> Session | None:
        return cls(**json.loads(doc)) if doc else None

    def view(self, ended: bool) -> dict[str, Any]:
        """The API shape: ``ended_at`` is None while the session is active."""
        n = self.events
        return {
            "session_id": self.session_id,
            "stream_id": self.stream_id,
            "started_at": _iso(self.started_ms),
            "ended_at": _iso(self.last_ms) if ended else None,
            "last_event_at": _iso(self.last_ms),
            "active": not ended,
            "duration_s": round((self.last_ms - self.started_ms) / 1000, 3),
            "events": n,
            "tracks_seen": self.tracks_seen,
            "track_ids": self.track_ids,
            "max_faces_per_frame": self.max_faces_per_frame,
            "summary": emotion_summary(n, self.counts, self.prob_sums),
        }


def apply_events(
    current: Session | None, events: list[EmotionEventV1], gap_s: float
) -> tuple[list[Session], Session | None]:
    """Add one stream's new events (any order) to its current session.

    Returns the sessions that closed (oldest first) and the new current one. Every event is
    counted exactly once: an event later than the gap opens a new session; one arriving late
    (before the current session's last event) joins the current session.
    """
    closed: list[Session] = []
    for ev in sorted(events, key=lambda e: e.capture_order):
        if current is not None and ev.captured_ms - current.last_ms > gap_s * 1000:
            closed.append(current)
            current = None
        if current is None:
            current = Session.open(ev)
        current.add(ev)
    return closed, current


def is_ended(session: Session, now_ms: int, gap_s: float) -> bool:
    """A current session ends once ``gap_s`` passes after its last event (now: wall-clock ms)."""
    return now_ms - session.last_ms > gap_s * 1000
