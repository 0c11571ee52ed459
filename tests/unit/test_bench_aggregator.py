"""`emostream bench aggregator`'s backlog and arithmetic (the run itself needs servers)."""

from __future__ import annotations

import math
import os
from collections import Counter

from emostream.bench.aggregator_backlog import BacklogShape, backlog
from emostream.bench.aggregator_measure import (
    command_delta,
    histogram,
    key_kind,
    process_cpu_s,
    quantile,
)
from emostream.bench.aggregator_redis import master_addresses
from emostream.schemas import EmotionEventV1


def test_backlog_is_schema_valid_with_tracks_changes_and_capture_order():
    shape = BacklogShape(events=600, streams=4)
    items = list(backlog(shape))
    assert len(items) == 600
    events = [EmotionEventV1.model_validate_json(v) for _, v in items]
    assert Counter(e.stream_id for e in events) == {f"bench-{i:04d}": 150 for i in range(4)}
    assert len({e.event_id for e in events}) == 600
    assert all(e.face.track_id and e.smoothed for e in events)
    assert sum(e.smoothed.changed for e in events) > 4  # stable-label changes, not only the first
    one = [e for e in events if e.stream_id == "bench-0000"]
    assert len(one) / len({e.frame_seq for e in one}) == 1.5  # faces a frame
    assert [e.captured_at for e in one] == sorted(e.captured_at for e in one)


def test_quantile_interpolates_inside_the_bucket_like_promql():
    buckets = [(0.1, 50.0), (0.2, 90.0), (0.5, 100.0), (math.inf, 100.0)]
    assert quantile(buckets, 0.5) == 0.1
    assert abs(quantile(buckets, 0.7) - 0.15) < 1e-9
    assert abs(quantile(buckets, 0.99) - 0.47) < 1e-9
    assert quantile([], 0.5) is None


def test_histogram_sums_replicas_and_command_delta_drops_own_probes():
    name = "emostream_aggregator_store_seconds"
    one = {
        f'{name}_bucket{{le="0.1"}}': 2.0,
        f'{name}_bucket{{le="+Inf"}}': 3.0,
        f"{name}_count": 3,
    }
    buckets, count = histogram([one, one], name)
    assert buckets == [(0.1, 4.0), (math.inf, 6.0)] and count == 6
    before = {"hset": 10, "info": 3, "ping": 1}
    after = {"hset": 25, "info": 9, "ping": 2, "lpush": 4, "client|setinfo": 2}
    assert command_delta(before, after) == {"hset": 15, "lpush": 4, "client|setinfo": 2}


def test_key_kind_groups_keys_of_every_stream_and_second():
    sids = ["bench-0001", "bench-0002"]
    assert key_kind("<p>:stream:{bench-0002}:sec:1765", sids) == "<p>:stream:{<sid>}:sec:<n>"
    assert key_kind("<p>:seen:" + "ab" * 16, sids) == "<p>:seen:<id>"


def test_process_cpu_counts_this_process_and_nothing_for_a_gone_one():
    before = process_cpu_s(os.getpid())
    sum(i * i for i in range(300_000))
    assert process_cpu_s(os.getpid()) > before
    assert process_cpu_s(None) == 0.0


def test_master_addresses_from_cluster_nodes_text_or_dict():
    text = (
        "a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460\n"
        "b2 127.0.0.1:7002@17002,node-2 master - 0 0 2 connected 5461-10922\n"
        "c3 127.0.0.1:7003@17003 slave a1 0 0 1 connected\n"
        "d4 127.0.0.1:7004@17004 master,fail - 0 0 3 disconnected\n"
    )
    assert master_addresses(text) == [("127.0.0.1", 7001), ("127.0.0.1", 7002)]
    parsed = {"127.0.0.1:7001": {"flags": "myself,master"}, "127.0.0.1:7003": {"flags": "slave"}}
    assert master_addresses(parsed) == [("127.0.0.1", 7001)]
