"""Synthetic emotion events for rule, session and alert tests (capture time chosen by the test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emostream.labels import EMOTIONS
from emostream.schemas import EmotionEventV1

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def probs_with(label: str, p: float) -> dict[str, float]:
    """``label`` at ``p``, the rest spread evenly (sums to 1)."""
    rest = (1.0 - p) / (len(EMOTIONS) - 1)
    return {e: (p if e == label else rest) for e in EMOTIONS}


def make_event(
    t_s: float,
    *,
    stream: str = "cam-1",
    seq: int | None = None,
    track: str | None = "t1",
    label: str = "angry",
    p: float = 0.8,
    smoothed: dict | None = None,
    face_index: int = 0,
    base: datetime = T0,
) -> EmotionEventV1:
    """One face event at ``base + t_s`` whose raw distribution peaks at ``label`` with ``p``.

    ``smoothed``: {"label", "p", "changed"} to attach a smoothed distribution.
    """
    seq = int(round(t_s * 10)) if seq is None else seq
    probs = probs_with(label, p)
    top = max(probs, key=probs.__getitem__)
    at = base + timedelta(seconds=t_s)
    doc = {
        "event_id": EmotionEventV1.make_id(stream, seq, face_index),
        "stream_id": stream,
        "frame_seq": seq,
        "captured_at": at,
        "processed_at": at,
        "face": {
            "index": face_index,
            "box": {"x": 1, "y": 1, "w": 40, "h": 40},
            "detector_score": 0.9,
            "track_id": track,
        },
        "emotion": {"label": top, "confidence": probs[top], "probabilities": probs},
        "model": {"name": "test", "version": "1", "trained": True},
    }
    if smoothed is not None:
        sp = probs_with(smoothed["label"], smoothed.get("p", 0.6))
        stable = smoothed.get("stable", smoothed["label"])
        doc["smoothed"] = {
            "label": stable,
            "confidence": sp[smoothed["label"]],
            "probabilities": sp,
            "stable_for_s": 0.0,
            "changed": smoothed.get("changed", False),
        }
    return EmotionEventV1.model_validate(doc)


def webhook_bot():
    """``examples/webhook_bot.py`` as a module (examples are scripts, not a package)."""
    import importlib.util
    import sys
    from pathlib import Path

    if "webhook_bot" in sys.modules:
        return sys.modules["webhook_bot"]
    path = Path(__file__).resolve().parents[1] / "examples" / "webhook_bot.py"
    spec = importlib.util.spec_from_file_location("webhook_bot", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["webhook_bot"] = module
    spec.loader.exec_module(module)
    return module
