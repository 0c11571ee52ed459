"""The read budget: token buckets per API key (or client address) weighted by a request's cost.

A request's cost is the stored entries its parameters make Redis read, computed here from the
path and query (``read_cost``), never from the store's internals: ``/windows`` reads one entry
per second of its longest window (an hour: 3,600, in 61 per-minute hashes since the store's
per-minute buckets), a page of sessions one entry per session, and so on. Each client (a valid
API key, or the client's address in keyless mode) has a bucket of ``per_client_burst`` refilled
at ``per_client_per_s``; expensive requests (over ``cheap_cost``) also draw on one bucket shared
by all, so many clients together cannot flood Redis either, while cheap reads of other clients
go on. Over budget: 429 with ``Retry-After``, counted per route.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import Counter

from emostream.aggregator.state.store import MAX_WINDOW_S
from emostream.api_limits import ReadBudgetOptions

REFUSED = Counter(
    "emostream_api_reads_refused_total",
    "API reads refused with 429 because their client (or all clients) spent the read budget",
    ["route"],
)
DEFAULT_WINDOWS = (10, 60, 300)
SESSION_SCAN = 101  # one session by id: the default retention's sessions, and the current one


@dataclass
class TokenBucket:
    rate: float  # tokens a second
    burst: float
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` tokens are there (0: now)."""
        short = min(cost, self.burst) - self.tokens
        return 0.0 if short <= 1e-6 else short / self.rate


class ReadBudget:
    """Charge requests; ``charge`` answers 0 (allowed, tokens taken) or seconds to wait."""

    def __init__(
        self, options: ReadBudgetOptions, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.options = options
        self._clock = clock
        self._clients: OrderedDict[str, TokenBucket] = OrderedDict()
        self._total = self._bucket(options.total_per_s, options.total_burst)

    def _bucket(self, rate: float, burst: int) -> TokenBucket:
        return TokenBucket(rate, float(burst), float(burst), self._clock())

    def _client(self, who: str) -> TokenBucket:
        bucket = self._clients.pop(who, None)
        if bucket is None:
            bucket = self._bucket(self.options.per_client_per_s, self.options.per_client_burst)
            while len(self._clients) >= self.options.max_clients:
                self._clients.popitem(last=False)  # the least recently seen
        self._clients[who] = bucket
        return bucket

    def charge(self, who: str, cost: int) -> float:
        """Take ``cost`` reads from ``who``'s bucket (and the shared one, when expensive)."""
        now, opts = self._clock(), self.options
        buckets = []
        if opts.per_client_per_s > 0:
            buckets.append(self._client(who))
        if opts.total_per_s > 0 and cost > opts.cheap_cost:
            buckets.append(self._total)
        for bucket in buckets:
            bucket.refill(now)
        wait = max((b.wait_for(cost) for b in buckets), default=0.0)
        if wait > 0:
            return wait
        for bucket in buckets:
            bucket.tokens -= min(cost, bucket.burst)
        return 0.0


def read_cost(path: str, query: Mapping[str, str], windows: list[str]) -> int:
    """Redis reads a read request implies, from its path and query (``windows``: the
    ``window_s`` values); a malformed value counts as its default (the request gets 422)."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last == "windows":
        sizes = [int(w) for w in windows if w.isdigit() and 0 < int(w) <= MAX_WINDOW_S]
        return 1 + max(sizes or DEFAULT_WINDOWS)
    limit = _int(query.get("limit"), 50)
    if "/sessions/" in path:
        return 2 + SESSION_SCAN
    if last == "sessions":
        return 2 + limit
    if last in ("events", "changes", "alerts", "deliveries"):
        return 2 + limit // 10
    if path.rstrip("/") == "/v1/streams":
        return 1 + _int(query.get("limit"), 100) // 10
    if last == "tracks":
        return 10
    return 3


def _int(raw: str | None, default: int) -> int:
    return int(raw) if raw is not None and raw.isdigit() and len(raw) < 8 else default


def retry_after(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))
