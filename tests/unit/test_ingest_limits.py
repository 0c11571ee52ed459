"""Ingest's frame limit is what one Kafka record holds (issue 33, item 5)."""

from __future__ import annotations

import pytest

from emostream.config import IngestHttpOptions
from emostream.errors import ConfigError
from emostream.ingest.http_frames import RECORD_OVERHEAD_BYTES, frame_limit


def test_the_frame_limit_follows_kafka_and_a_larger_setting_is_refused():
    assert frame_limit(IngestHttpOptions(), 1_048_576) == 1_048_576 - RECORD_OVERHEAD_BYTES
    assert frame_limit(IngestHttpOptions(), 4_194_304) == 4_194_304 - RECORD_OVERHEAD_BYTES
    assert frame_limit(IngestHttpOptions(max_frame_bytes=200_000), 1_048_576) == 200_000
    with pytest.raises(ConfigError, match="EMOSTREAM_KAFKA__MAX_MESSAGE_BYTES"):
        frame_limit(IngestHttpOptions(max_frame_bytes=8 * 1024 * 1024), 1_048_576)
