import os

import pytest

from emostream.bench.soak import MB, _metric, growth_mb_per_min, rss_bytes, steady


def test_growth_is_the_least_squares_slope_of_the_second_half():
    # Warm-up jump in the first half is ignored; then 2 MB per minute.
    samples = [(0, 100 * MB), (10, 300 * MB)]
    samples += [(t, 300 * MB + t * 2 * MB / 60) for t in range(20, 130, 10)]
    assert growth_mb_per_min(samples) == pytest.approx(2.0)


def test_growth_of_a_flat_noisy_series_is_near_zero():
    noise = [0, 3, -2, 1, -3, 2, 0, -1, 2, -2, 1, 0]
    samples = [(t * 10, 200 * MB + n * 100_000) for t, n in enumerate(noise)]
    assert abs(growth_mb_per_min(samples)) < 0.5


def test_growth_needs_two_samples_in_the_second_half():
    assert growth_mb_per_min([]) is None
    assert growth_mb_per_min([(0, MB)]) is None
    assert growth_mb_per_min([(0, MB), (60, 2 * MB)]) is None  # only t=60 is in the second half
    assert growth_mb_per_min([(0, MB), (30, MB), (60, 2 * MB)]) == pytest.approx(2.0)


def test_steady_verdict_judges_the_services_only():
    flat = {"worker": 0.2, "aggregator": -0.1, "broker": 25.0, "redis": 3.0}
    assert steady(flat, 1.0, [])
    assert not steady(flat | {"worker": 1.5}, 1.0, [])
    assert not steady(flat | {"aggregator": None}, 1.0, [])  # not enough samples: no verdict
    assert not steady(flat, 1.0, [{"process": "worker", "exit_code": 1, "at_s": 30}])


def test_rss_of_this_process_and_of_no_process():
    assert rss_bytes(os.getpid()) > MB
    assert rss_bytes(None) is None
    assert rss_bytes(2**22 + 12345) is None  # above Linux's pid_max default


def test_metric_sums_labelled_samples():
    scraped = {
        'emostream_frames_total{outcome="ok"}': 5.0,
        'emostream_frames_total{outcome="dead_letter"}': 2.0,
        'emostream_frames_created{outcome="ok"}': 1.7e9,
        "emostream_faces_total": 4.0,
    }
    assert _metric(scraped, "emostream_frames_total") == 7
    assert _metric(scraped, "emostream_frames_total", outcome="dead_letter") == 2
    assert _metric(scraped, "emostream_faces_total") == 4
    assert _metric({}, "emostream_frames_total") == 0
