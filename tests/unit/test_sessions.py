"""Activity sessions: splitting on gaps, counting each event once, summaries."""

import pytest

from emostream.aggregator.state.sessions import Session, apply_events, is_ended
from tests.synthetic import T0, make_event

GAP = 30.0


def ms(t_s: float) -> int:
    return int(T0.timestamp() * 1000 + t_s * 1000)


def test_one_session_while_events_keep_coming():
    events = [make_event(t) for t in range(0, 100, 10)]  # every 10 s, gap 30 s
    closed, current = apply_events(None, events, GAP)
    assert closed == [] and current.events == 10
    assert current.started_ms == ms(0) and current.last_ms == ms(90)


def test_gap_splits_and_batches_chain():
    first = [make_event(t, label="angry") for t in (0, 1, 2)]
    second = [make_event(t, label="happy", track="t2") for t in (40, 41)]  # 38 s later
    closed, current = apply_events(None, first, GAP)
    closed2, current2 = apply_events(Session.loads(current.dumps()), second, GAP)
    assert closed == [] and len(closed2) == 1
    ended = closed2[0]
    assert ended.events == 3 and ended.last_ms == ms(2) and ended.session_id == current.session_id
    assert current2.events == 2 and current2.started_ms == ms(40)
    assert current2.session_id != ended.session_id
    assert ended.view(ended=True)["summary"]["dominant"] == "angry"
    assert current2.view(ended=False)["summary"]["dominant"] == "happy"


def test_exactly_the_gap_is_still_one_session():
    closed, current = apply_events(None, [make_event(0), make_event(30)], GAP)
    assert closed == [] and current.events == 2


def test_several_gaps_in_one_batch_unsorted():
    events = [make_event(t) for t in (200, 0, 100, 1, 101)]
    closed, current = apply_events(None, events, GAP)
    assert [s.events for s in closed] == [2, 2] and current.events == 1
    assert sum(s.events for s in closed) + current.events == len(events)


def test_late_event_joins_the_current_session():
    _, current = apply_events(None, [make_event(100), make_event(101)], GAP)
    closed, current = apply_events(current, [make_event(50, seq=5000)], GAP)
    assert closed == [] and current.events == 3 and current.started_ms == ms(50)


def test_view_summary_and_tracks():
    events = [
        make_event(0, label="angry", p=0.6, track="a"),
        make_event(0, label="sad", p=0.8, track="b", face_index=1),
        make_event(1, label="angry", p=0.6, track="a"),
    ]
    _, current = apply_events(None, events, GAP)
    v = current.view(ended=False)
    assert v["ended_at"] is None and v["active"] and v["events"] == 3
    assert v["tracks_seen"] == 2 and v["track_ids"] == ["a", "b"] and v["max_faces_per_frame"] == 2
    assert v["summary"]["counts"]["angry"] == 2 and v["summary"]["counts"]["sad"] == 1
    assert sum(v["summary"]["mean_probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    expected_angry = (0.6 + 0.6 + 0.2 / 6) / 3
    assert v["summary"]["mean_probabilities"]["angry"] == pytest.approx(expected_angry, abs=1e-6)
    assert v["summary"]["dominant"] == "angry"


def test_ended_after_the_gap_of_wall_clock():
    _, current = apply_events(None, [make_event(0)], GAP)
    assert not is_ended(current, ms(30), GAP)
    assert is_ended(current, ms(31), GAP)
    assert current.view(ended=True)["ended_at"] == current.view(ended=True)["last_event_at"]


def test_session_id_is_deterministic():
    a = apply_events(None, [make_event(0), make_event(1)], GAP)[1]
    b = apply_events(None, [make_event(1), make_event(0)], GAP)[1]
    assert a.session_id == b.session_id and len(a.session_id) == 16
