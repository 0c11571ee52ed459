import numpy as np

from emostream.bench.smoothing import (
    FRAME_H,
    FRAME_W,
    Segment,
    count_changes,
    face_frame,
    follow_latencies,
    recognised,
    schedule,
)


def test_count_changes():
    assert count_changes([]) == 0
    assert count_changes(["happy", "happy", "sad", "sad", "happy"]) == 2


def test_follow_latency_per_boundary_and_misses():
    face = np.zeros((48, 48), np.uint8)
    segs = [Segment(face, "happy", 0, 2), Segment(face, "sad", 2, 4), Segment(face, "angry", 4, 6)]
    times = [0.5, 1.5, 2.1, 2.6, 3.0, 4.5, 5.5]
    labels = ["happy", "happy", "happy", "sad", "sad", "sad", "sad"]
    lat = follow_latencies(times, labels, segs)
    assert lat[0] is not None and abs(lat[0] - 0.6) < 1e-9
    assert lat[1] is None  # never reported angry


def test_a_boundary_counts_as_recognised_when_the_raw_majority_is_the_true_label():
    face = np.zeros((48, 48), np.uint8)
    segs = [Segment(face, "happy", 0, 2), Segment(face, "sad", 2, 4), Segment(face, "angry", 4, 6)]
    times = [0.5, 2.1, 2.6, 3.0, 4.5, 5.0, 5.5]
    raw = ["happy", "fear", "sad", "sad", "angry", "sad", "sad"]
    assert recognised(times, raw, segs) == [True, False]


def test_schedule_changes_label_at_every_boundary():
    rng = np.random.default_rng(1)
    faces = {
        "happy": [np.zeros((48, 48), np.uint8)],
        "sad": [np.ones((48, 48), np.uint8)],
        "angry": [],
        "neutral": [np.full((48, 48), 2, np.uint8)],
    }
    segs = schedule(faces, 20, 3.0, rng)
    assert len(segs) == 20 and segs[-1].end_s == 60.0
    assert all(a.label != b.label for a, b in zip(segs, segs[1:]))
    assert {s.label for s in segs} <= {"happy", "sad", "neutral"}


def test_face_frame_moves_the_face():
    rng = np.random.default_rng(0)
    face = np.full((48, 48), 255, np.uint8)
    a = face_frame(face, 0.0, 10.0, rng)
    b = face_frame(face, 5.0, 10.0, rng)
    assert a.shape == (FRAME_H, FRAME_W, 3)
    xa = np.argmax(a[:, :, 0].mean(axis=0))
    xb = np.argmax(b[:, :, 0].mean(axis=0))
    assert xb - xa > 200  # half-way through, the face is on the other side


def test_detect_bench_scores_and_finds_labelled_images(tmp_path):
    import cv2

    from emostream.bench.detect import find_images, score

    (tmp_path / "happy").mkdir()
    (tmp_path / "misc").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "a.jpg"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "misc" / "b.png"), np.zeros((10, 10, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    assert [(p.name, lb) for p, lb in find_images(tmp_path)] == [
        ("a.jpg", "happy"),
        ("b.png", None),
    ]
    s = score([1, 1, 0, 2], [1.0, 2.0, 3.0, 4.0])
    assert s["exactly_one"] == 0.5 and s["no_spurious"] == 0.75
    assert s["missed"] == 1 and s["spurious_images"] == 1 and s["ms_per_image_p50"] == 2.5
