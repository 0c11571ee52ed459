"""Property-based tests: codecs round-trip, and no input makes the frame decoder crash."""

import string
from datetime import UTC, datetime

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emostream.errors import InvalidFrame
from emostream.frames import FrameMeta, decode_frame, encode_frame, frame_headers, parse_headers
from emostream.labels import EMOTIONS
from emostream.schemas import EmotionEventV1

stream_ids = st.text(
    alphabet=string.ascii_letters + string.digits + "._:-", min_size=1, max_size=128
).filter(lambda s: s[0].isalnum())


@given(sid=stream_ids, seq=st.integers(0, 2**62), ms=st.integers(0, 2**45), live=st.booleans())
def test_headers_round_trip(sid, seq, ms, live):
    meta = FrameMeta(sid, seq, ms, live)
    assert parse_headers(frame_headers(meta)) == meta


@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(["emostream-stream-id", "emostream-seq", "emostream-captured-ms", "x"]),
            st.binary(max_size=40),
        ),
        max_size=6,
    )
)
def test_arbitrary_headers_parse_or_invalid(headers):
    try:
        meta = parse_headers(headers)
    except InvalidFrame as exc:
        assert exc.reason in {"missing_headers", "bad_headers"}
    else:
        assert meta.seq >= 0 and meta.captured_ms >= 0


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=4096))
def test_decoder_never_crashes_on_random_bytes(payload):
    try:
        image = decode_frame(payload)
    except InvalidFrame:
        return
    assert image.ndim == 3 and image.dtype == np.uint8


_JPEG = encode_frame(np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8))


@settings(max_examples=200)
@given(
    pos=st.integers(0, len(_JPEG) - 1), value=st.integers(0, 255), cut=st.integers(1, len(_JPEG))
)
def test_decoder_handles_mutated_and_truncated_jpegs(pos, value, cut):
    mutated = bytearray(_JPEG)
    mutated[pos] = value
    for payload in (bytes(mutated), _JPEG[:cut]):
        try:
            image = decode_frame(payload)
        except InvalidFrame:
            continue
        assert image.shape[2] == 3


probs = st.lists(st.floats(0.001, 1.0), min_size=7, max_size=7).map(
    lambda v: [x / sum(v) for x in v]
)


@given(
    sid=stream_ids,
    seq=st.integers(0, 2**40),
    index=st.integers(0, 50),
    p=probs,
    box=st.tuples(
        st.integers(0, 4000), st.integers(0, 4000), st.integers(1, 4000), st.integers(1, 4000)
    ),
)
def test_event_json_round_trip(sid, seq, index, p, box):
    probabilities = {e: v for e, v in zip(EMOTIONS, p)}
    label = max(probabilities, key=probabilities.get)
    now = datetime.now(UTC)
    ev = EmotionEventV1(
        event_id=EmotionEventV1.make_id(sid, seq, index),
        stream_id=sid,
        frame_seq=seq,
        captured_at=now,
        processed_at=now,
        face={"index": index, "box": dict(zip("xywh", box)), "detector_score": 0.5},
        emotion={
            "label": label,
            "confidence": probabilities[label],
            "probabilities": probabilities,
        },
        model={"name": "m", "version": "1", "trained": True},
    )
    assert EmotionEventV1.model_validate_json(ev.model_dump_json()) == ev
