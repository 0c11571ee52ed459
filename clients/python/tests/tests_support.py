"""Messages as the aggregator publishes them (version 1), for the client's tests."""

PROBS = (
    '{"angry": 0.8, "disgust": 0.0, "fear": 0.0, "happy": 0.0, "sad": 0.2, "surprise": 0.0, '
    '"neutral": 0.0}'
)
EVENT_JSON = (
    '{"schema_version": 1, "event_id": "e1", "stream_id": "cam-1", "frame_seq": 41, '
    '"captured_at": "2026-11-28T14:02:03.120000Z", "processed_at": "2026-11-28T14:02:03.310000Z", '
    '"latency_ms": 190, "face": {"index": 0, "box": {"x": 177, "y": 66, "w": 95, "h": 95}, '
    '"detector_score": 0.997, "track_id": "cam-1-0"}, '
    f'"emotion": {{"label": "angry", "confidence": 0.8, "probabilities": {PROBS}}}, '
    '"smoothed": null, "model": {"name": "rmn", "version": "1", "trained": true}}'
)
CHANGE_JSON = (
    '{"schema_version": 1, "kind": "stable_change", "event_id": "e1", "stream_id": "cam-1", '
    '"track_id": "cam-1-0", "frame_seq": 41, "captured_at": "2026-11-28T14:02:03.120000Z", '
    '"from_label": null, "to_label": "angry", "confidence": 0.8, "previous_held_s": null, '
    '"model": {"name": "rmn", "version": "1", "trained": true}}'
)
ALERT_JSON = (
    '{"schema_version": 1, "alert_id": "a1", "rule_id": "r1", "rule_name": "upset", '
    '"kind": "probability_above", "stream_id": "cam-1", "track_id": "cam-1-0", '
    '"episode_started_at": "2026-11-28T14:02:01Z", "fired_at": "2026-11-28T14:02:03Z", '
    '"event_id": "e1", "frame_seq": 41, "summary": {"source": "smoothed", "label": "angry", '
    f'"confidence": 0.8, "probabilities": {PROBS}, "emotions": ["angry"], "score": 0.8, '
    '"threshold": 0.6, "above_for_s": 2.0}}'
)
