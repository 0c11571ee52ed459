"""Per-stream state of the worker: tracker, smoother and full-scan clock, least recent evicted."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from emostream.tracking import EmotionSmoother, IoUTracker
from emostream.vision_options import SmoothingOptions


@dataclass
class StreamState:
    tracker: IoUTracker
    smoother: EmotionSmoother
    last_full_scan_s: float = float("-inf")  # capture time of the last full-frame detection
    # Where in the full-scan interval this stream's scans fall (0..1): streams that started
    # together would otherwise all scan in the same batch, a latency spike every interval.
    scan_phase: float = 0.0


class StreamStates:
    """At most ``max_streams`` streams' state; the least recently seen is evicted first.

    Streams are keyed to partitions, so one worker sees a stream's frames in order; after a
    rebalance (or an eviction) a stream's tracks restart with new ids.
    """

    def __init__(
        self,
        labels: tuple[str, ...],
        smoothing: SmoothingOptions,
        track_min_hits: int = 1,
        max_streams: int = 1000,
    ) -> None:
        self.labels = labels
        self.smoothing = smoothing
        self.track_min_hits = track_min_hits
        self.max_streams = max_streams
        self._streams: OrderedDict[str, StreamState] = OrderedDict()
        # The detect stage of one batch and the classify stage of the one before may both look
        # streams up (the worker overlaps them).
        self._lock = threading.Lock()
        self._created = 0

    def get(self, stream_id: str) -> StreamState:
        with self._lock:
            return self._get(stream_id)

    def _get(self, stream_id: str) -> StreamState:
        st = self._streams.get(stream_id)
        if st is None:
            sm = self.smoothing
            st = StreamState(
                IoUTracker(prefix=stream_id, min_hits=self.track_min_hits),
                EmotionSmoother(
                    self.labels,
                    sm.half_life_s,
                    sm.hold_s,
                    sm.min_confidence,
                    sm.uncertain_hold_factor,
                ),
            )
            # Golden-ratio steps spread any number of streams evenly; the first stream gets 0.
            st.scan_phase = (self._created * 0.6180339887) % 1.0
            self._created += 1
            self._streams[stream_id] = st
            if len(self._streams) > self.max_streams:
                self._streams.popitem(last=False)
        self._streams.move_to_end(stream_id)
        return st

    def __len__(self) -> int:
        return len(self._streams)
