"""The worker's latency steer: batch limits follow what batches took against the target."""

from __future__ import annotations

import pytest

from emostream.worker.steering import LatencySteer


def steer(**kw) -> LatencySteer:
    return LatencySteer(**{"target_ms": 200, "max_frames": 16, "max_wait_ms": 50, **kw})


def test_starts_at_the_configured_limits():
    s = steer()
    assert s.batch_frames() == 16
    assert s.wait_ms() == 50  # nothing measured yet: the configured wait, under target / 4


def test_a_batch_over_the_budget_cuts_the_limit_in_proportion():
    s = steer()
    s.observe(16, 400.0)  # 25 ms a frame; the budget is 100 ms
    assert s.batch_frames() == 4
    s.observe(4, 50.0)  # within budget and full: grows again, by a quarter at least one
    assert s.batch_frames() == 5


def test_the_limit_settles_where_a_batch_meets_the_budget_with_fixed_costs():
    # 40 ms per batch whatever its size (a classifier call, a commit) + 10 ms a frame:
    # 6 frames fit 100 ms. A per-frame average would charge the fixed cost to frames and
    # shrink batches further each time; the feedback finds 6 and stays near it.
    s = steer()
    for _ in range(60):
        n = s.batch_frames()  # overloaded: every fetch fills the limit
        s.observe(n, 40.0 + 10.0 * n)
    assert s.batch_frames() in (6, 7)


def test_small_batches_under_light_load_do_not_raise_the_limit():
    s = steer(max_frames=32)
    s.observe(32, 400.0)  # 12.5 ms a frame: 8 fit
    assert s.batch_frames() == 8
    for _ in range(10):
        s.observe(2, 25.0)  # light load: fetches return fewer frames than the limit
    assert s.batch_frames() == 8


@pytest.mark.parametrize("busy_ms", [0.0, 1.0, 1e6])
def test_limits_stay_within_the_configured_bounds(busy_ms):
    s = steer(max_frames=8, min_frames=3)
    for _ in range(20):
        s.observe(s.batch_frames(), busy_ms)
        assert 3 <= s.batch_frames() <= 8
        assert 1 <= s.wait_ms() <= 50


def test_min_frames_never_exceeds_max_frames():
    s = steer(max_frames=1, min_frames=4)
    s.observe(1, 10_000.0)
    assert s.batch_frames() == 1


def test_the_fetch_wait_shrinks_as_batches_take_longer():
    s = steer(target_ms=200, max_wait_ms=200)
    assert s.wait_ms() == 50  # a quarter of the target at most
    s.observe(16, 80.0)  # 5 ms a frame, a full batch 80 ms: (200 - 160) / 2 left
    assert s.wait_ms() == 20
    s.observe(16, 96.0)  # 6 ms a frame: the average 5.3 ms, a full batch 85 ms
    assert s.wait_ms() == 15


def test_empty_or_negative_observations_are_ignored():
    s = steer()
    s.observe(0, 100.0)
    s.observe(4, -1.0)
    assert s.batch_frames() == 16 and s.frame_ms is None


def test_a_worker_behind_is_not_held_to_short_batches():
    s = steer()
    s.observe(16, 400.0)  # frames fresh at fetch: a burst, cut to 4
    assert s.batch_frames() == 4
    for _ in range(8):  # frames 600 ms old at fetch: behind, so full batches grow the limit
        s.observe(s.batch_frames(), 25.0 * s.batch_frames(), queue_wait_ms=600.0)
    assert s.batch_frames() == 16


def test_fetches_take_more_records_while_most_are_dropped_as_stale():
    s = steer(max_frames=8)
    assert s.fetch_records() == 8
    for _ in range(10):  # behind: 3 of 4 fetched frames stale
        s.observe(2, 30.0, queue_wait_ms=600.0, dropped=6)
    assert 24 <= s.fetch_records() <= 32  # about limit / (1 - 3/4)
    for _ in range(10):  # all stale: capped
        s.observe(0, 5.0, queue_wait_ms=900.0, dropped=64)
    assert s.fetch_records() == 8 * 8
    for _ in range(30):  # caught up: fresh frames, back to the limit
        s.observe(8, 40.0, queue_wait_ms=20.0)
    assert s.fetch_records() == 8
