import numpy as np
import pytest

from emostream.models import EMOTIONS
from emostream.tracking import UNCERTAIN, EmotionSmoother, IoUTracker, iou


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_track_id_stable_while_face_moves_across_frame():
    tr = IoUTracker(prefix="cam")
    ids = set()
    for i in range(60):  # 10 fps, 8 px per frame: 480 px across in 6 s
        (tid,), _ = tr.update([(20 + 8 * i, 100, 80, 80)], i / 10)
        ids.add(tid)
    assert ids == {"cam-0"}


def test_track_survives_brief_miss_and_ends_after_long_one():
    tr = IoUTracker(prefix="s", max_missed_s=1.0)
    (a,), _ = tr.update([(100, 100, 60, 60)], 0.0)
    tr.update([(104, 100, 60, 60)], 0.1)
    tr.update([], 0.2)  # 0.4 s without detections
    tr.update([], 0.4)
    (b,), _ = tr.update([(112, 100, 60, 60)], 0.6)
    assert b == a
    _, ended = tr.update([], 2.0)
    assert [t.track_id for t in ended] == [a]
    (c,), _ = tr.update([(112, 100, 60, 60)], 2.1)
    assert c != a


def test_two_faces_keep_their_ids_when_order_swaps():
    tr = IoUTracker(prefix="s")
    ids0, _ = tr.update([(0, 0, 50, 50), (300, 0, 50, 50)], 0.0)
    ids1, _ = tr.update([(305, 0, 50, 50), (5, 0, 50, 50)], 0.1)
    assert ids1 == [ids0[1], ids0[0]]


def test_tracks_are_bounded():
    tr = IoUTracker(prefix="s", max_tracks=3)
    tr.update([(i * 100, 0, 50, 50) for i in range(5)], 0.0)
    assert len(tr.tracks) == 3


def onehot(label: str, p: float = 0.9) -> np.ndarray:
    v = np.full(7, (1 - p) / 6)
    v[EMOTIONS.index(label)] = p
    return v


def test_smoother_ignores_single_frame_flicker():
    sm = EmotionSmoother(EMOTIONS, half_life_s=0.4, hold_s=0.4)
    labels = []
    for i in range(30):
        raw = "sad" if i % 7 == 3 else "happy"  # one-frame flickers
        labels.append(sm.update("t", onehot(raw), i / 10).label)
    assert set(labels) == {"happy"}


def test_smoother_follows_real_change_within_a_second():
    sm = EmotionSmoother(EMOTIONS, half_life_s=0.4, hold_s=0.4)
    for i in range(20):
        sm.update("t", onehot("happy"), i / 10)
    changed_at = None
    for i in range(20, 40):
        out = sm.update("t", onehot("angry"), i / 10)
        if out.changed:
            changed_at = i / 10
            assert out.label == "angry" and out.stable_for_s == 0.0
            assert out.previous == "happy" and out.previous_held_s == pytest.approx(i / 10)
            break
    assert changed_at is not None and changed_at - 2.0 <= 1.0


def test_smoother_abstains_when_unsure():
    sm = EmotionSmoother(EMOTIONS, min_confidence=0.35)
    out = sm.update("t", np.full(7, 1 / 7), 0.0)
    assert out.label == UNCERTAIN
    assert out.probabilities.sum() == pytest.approx(1.0)


def test_capture_clock_going_backwards_neither_breaks_smoothing_nor_keeps_stale_tracks():
    sm = EmotionSmoother(EMOTIONS, half_life_s=0.4, hold_s=0.4)
    for i in range(10):
        sm.update("t", onehot("happy"), 1000 + i / 10)
    out = sm.update("t", onehot("happy"), 5.0)  # camera clock reset
    assert out.label == "happy" and out.stable_for_s >= 0 and not out.changed
    for i in range(1, 11):
        out = sm.update("t", onehot("angry"), 5.0 + i / 10)
        assert out.stable_for_s >= 0
    assert out.label == "angry"  # follows again at the normal pace

    tr = IoUTracker(prefix="s", max_missed_s=1.0)
    (a,), _ = tr.update([(100, 100, 60, 60)], 1000.0)
    (b,), ended = tr.update([(100, 100, 60, 60)], 5.0)
    assert [t.track_id for t in ended] == [a] and b != a


def test_tracks_confirm_after_min_hits_consecutive_detections():
    tr = IoUTracker(prefix="s", min_hits=3)
    face, phantom = (100, 100, 60, 60), (400, 50, 40, 40)
    (f0, p0), _ = tr.update([face, phantom], 0.0)  # the phantom is seen once
    assert not tr.is_confirmed(f0) and not tr.is_confirmed(p0)
    (f1,), _ = tr.update([face], 0.1)
    assert f1 == f0 and not tr.is_confirmed(f1)
    (f2,), _ = tr.update([face], 0.2)
    assert tr.is_confirmed(f2)
    (f3,), _ = tr.update([face], 0.3)
    assert tr.is_confirmed(f3), "confirmed tracks stay confirmed"
    assert not tr.is_confirmed(p0)


def test_a_missed_frame_restarts_the_count_of_an_unconfirmed_track():
    tr = IoUTracker(prefix="s", min_hits=3)
    box = (100, 100, 60, 60)
    (a,), _ = tr.update([box], 0.0)
    tr.update([box], 0.1)
    tr.update([], 0.2)
    tr.update([box], 0.3)
    assert not tr.is_confirmed(a)
    tr.update([box], 0.4)
    tr.update([box], 0.5)
    assert tr.is_confirmed(a)


def test_min_hits_one_confirms_at_once():
    tr = IoUTracker(prefix="s")
    (a,), _ = tr.update([(0, 0, 50, 50)], 0.0)
    assert tr.is_confirmed(a)


def test_frames_a_few_ms_apart_do_not_make_jitter_a_huge_speed():
    from emostream.tracking.tracker import MAX_SPEED_BOX_WIDTHS_PER_S, IoUTracker

    tracker = IoUTracker("t")
    tracker.update([(100, 100, 80, 80)], 0.000)
    ids, _ = tracker.update([(104, 100, 80, 80)], 0.002)  # 4 px of jitter, 2 ms later
    track = tracker.tracks[ids[0]]
    assert abs(track.velocity[0]) <= MAX_SPEED_BOX_WIDTHS_PER_S * 80
    # Half a second on, the prediction stays near the face instead of hundreds of px away.
    x, _, _, _ = track.predicted(0.5)
    assert abs(x - 104) < 80
