"""The live hub's recent messages, so an SSE client that reconnects with ``Last-Event-ID``
gets what it missed (issue 36, 5).

Every message the hub fans out gets an id ``<epoch>-<seq>``: ``epoch`` names one unbroken run
of the hub's subscription (a new one after the subscription closed or was lost, when messages
may have gone by unseen), ``seq`` counts its messages. The last ``max_items`` are kept; the hub
keeps its subscription ``linger_s`` after the last client left, so a lone client's reconnect
misses nothing. A resume from another epoch (another replica, a restart, a lost subscription)
or from before the oldest kept message is a gap: the client is told, and reads the paged API.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterator

from emostream.aggregator.live.wire import Item

MAX_ITEMS = 10_000  # messages kept for resumes, all streams and kinds together
LINGER_S = 60.0  # the subscription (and the replay) outlives the last client by this
MAX_ID_CHARS = 64


class ReplayLog:
    """A bounded log of ``(seq, item)`` of the current epoch."""

    def __init__(self, max_items: int = MAX_ITEMS) -> None:
        self._items: deque[tuple[int, Item]] = deque(maxlen=max_items)
        self.epoch = secrets.token_hex(4)
        self.seq = 0

    def reset(self) -> None:
        """A new epoch: what the old one kept may have a hole after it."""
        self._items.clear()
        self.epoch = secrets.token_hex(4)

    def append(self, item: Item) -> int:
        self.seq += 1
        self._items.append((self.seq, item))
        return self.seq

    def event_id(self, seq: int) -> str:
        return f"{self.epoch}-{seq}"

    def since(self, last_event_id: str) -> Iterator[tuple[int, Item]] | None:
        """The kept messages after ``last_event_id``; None when they cannot all be given."""
        epoch, _, seq_text = last_event_id.strip()[:MAX_ID_CHARS].partition("-")
        if epoch != self.epoch or not seq_text.isdigit():
            return None
        seq = int(seq_text)
        oldest = self._items[0][0] if self._items else self.seq + 1
        if seq > self.seq or seq + 1 < oldest:
            return None
        return ((s, item) for s, item in self._items if s > seq)
