"""The key layout puts each stream on one Redis Cluster slot; the live wire format round-trips."""

from __future__ import annotations

from redis.crc import key_slot

from emostream.aggregator.live.wire import decode, encode
from emostream.aggregator.state.keys import (
    INDEX_PARTS,
    deliveries_key,
    index_keys,
    rules_key,
    stream_key,
)
from emostream.aggregator.state.write_script import STREAM_PARTS, window_key


def test_a_streams_keys_share_one_slot_and_streams_spread():
    for sid in ("cam-1", "a:b.c-d", "Z" * 128):
        keys = [stream_key("emostream", sid, part) for part in STREAM_PARTS]
        keys += [window_key("emostream", sid, 29_000_000), stream_key("emostream", sid, "changes")]
        assert len({key_slot(k.encode()) for k in keys}) == 1
    slots = {key_slot(stream_key("p", f"cam-{i}", "state").encode()) for i in range(200)}
    assert len(slots) == 200  # distinct streams land on distinct slots
    assert len({key_slot(k.encode()) for k in index_keys("p")}) == INDEX_PARTS


def test_a_delivery_log_shares_the_rules_slot():
    assert key_slot(deliveries_key("p", "r1").encode()) == key_slot(rules_key("p").encode())


def test_live_messages_round_trip():
    items = [("event", "cam-1", '{"a":"x\\ty\\nz"}'), ("change", "cam:2", "{}")]
    assert list(decode(encode(items))) == items
