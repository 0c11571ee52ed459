"""Frame numbers for HTTP clients that send none: a bounded counter per stream.

A frame's identity (and so its event ids) is (run id, stream id, seq). The counters are bounded:
beyond ``max_streams`` the least recently used stream is forgotten. A forgotten stream that comes
back starts at seq 0 again, so it is numbered in a run id of its own (the publisher's run id and
a number that only grows): no identity repeats within the server's life, and the aggregator never
takes a new frame's events for replays of stored ones.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import count

MAX_STREAMS = 10_000


class StreamCounters:
    """``take(stream, seq)`` -> (run id, seq) of the stream's next frame."""

    def __init__(self, run_id: str, max_streams: int = MAX_STREAMS) -> None:
        self.run_id = run_id
        self.max_streams = max_streams
        self._next: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._numbering = count()  # one run id per counter ever created

    def __len__(self) -> int:
        return len(self._next)

    def take(self, stream_id: str, seq: int | None = None) -> tuple[str, int]:
        """The run id and seq for the stream's next frame (``seq``: the client's own number)."""
        entry = self._next.pop(stream_id, None)
        if entry is None:
            if len(self._next) >= self.max_streams:
                self._next.popitem(last=False)
            entry = (f"{self.run_id}-{next(self._numbering)}", 0)
        run, next_seq = entry
        seq = next_seq if seq is None else seq
        self._next[stream_id] = (run, seq + 1)
        return run, seq
