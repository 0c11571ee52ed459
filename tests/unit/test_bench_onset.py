import argparse
import json

import cv2
import numpy as np
import pytest

from emostream.bench.onset import FRAME_H, FRAME_W, ClipSeen, clip_frames, photos_of, summarise
from emostream.errors import ConfigError


def test_clip_frames_fit_the_photo_and_drift():
    rng = np.random.default_rng(0)
    photo = np.zeros((600, 400, 3), np.uint8)
    photo[:, :, 2] = 255  # a red photo on a grey canvas
    frames = clip_frames(photo, 15, rng)
    assert len(frames) == 15 and all(f.shape == (FRAME_H, FRAME_W, 3) for f in frames)
    lefts = [int(np.argmax(f[FRAME_H // 2, :, 2] > 200)) for f in frames]
    assert max(lefts) - min(lefts) >= 4  # the photo moves a few pixels
    assert all(f[FRAME_H // 2, lefts[i] + 5, 2] > 200 for i, f in enumerate(frames))


def test_summary_counts_what_the_tracks_report():
    clips = [
        ClipSeen("a", 15, 0.1, ["neutral"] * 5, ["neutral"] * 5),
        ClipSeen("b", 15, 0.2, ["sad", "neutral", "neutral"], ["sad", "sad", "neutral"]),
        ClipSeen("c", 15, 0.1, ["angry", "angry"], ["uncertain", "uncertain"]),
        ClipSeen("d", 15),  # no face found
    ]
    s = summarise(clips, "neutral")
    assert s["clips"] == 4 and s["clips_with_face"] == 3
    assert s["first_event_raw_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["raw_frame_recall"] == pytest.approx(7 / 10)
    assert s["smoothed_end_recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["smoothed_end_uncertain"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["smoothed_every_frame_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["smoothed_ever_other"] == pytest.approx(1 / 3, abs=1e-4)  # b said sad
    assert s["first_event_raw_labels"] == {"neutral": 1, "sad": 1, "angry": 1}
    assert s["first_event_s_median"] == 0.1


def test_summary_of_no_faces_has_no_rates():
    s = summarise([ClipSeen("a", 15)], "neutral")
    assert s["clips_with_face"] == 0 and s["smoothed_end_recall"] is None


def test_photos_of_a_missing_label_is_a_clear_error(tmp_path):
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert [p.name for p in photos_of(tmp_path, "happy")] == ["x.jpg"]
    with pytest.raises(ConfigError, match="no images of 'neutral'"):
        photos_of(tmp_path, "neutral")


def test_onset_bench_runs_the_worker_processor_over_a_photo(tmp_path, capsys):
    from emostream.bench.onset import run_bench_onset
    from emostream.sample_photo import astronaut_bgr

    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "astronaut.jpg"), astronaut_bgr())
    args = argparse.Namespace(
        photos=str(tmp_path),
        label="happy",
        checkpoint=None,
        seconds=1.0,
        fps=10,
        batch_frames=4,
        limit=0,
        seed=0,
        json=True,
    )
    assert run_bench_onset(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["clips"] == 1 and report["clips_with_face"] == 1
    assert report["path"] == "cpu" and report["first_event_s_median"] < 0.5
    assert sum(report["smoothed_end_labels"].values()) == 1
