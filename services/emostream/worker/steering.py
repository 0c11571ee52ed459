"""Latency steering: how many frames the next micro-batch may take, and how long a fetch may wait.

A frame's latency is roughly its wait in the topic (while the batch before it is worked on)
plus its own batch's time; both grow with the batch size. So a batch may keep the worker busy
for at most ``share`` of the target (half: one batch ahead of a frame, then its own). The limit
is found by feedback on what batches took, not by a cost model: a batch over the budget cuts the
limit in proportion (its frames times budget over time taken); a full batch within the budget
raises it by a quarter. Per-batch costs (a thread hop, a classifier call, a commit round trip)
need no estimate: the limit settles where a batch's time meets the budget, however its time
splits between fixed and per-frame costs.

A worker that is behind (its frames already waited in the topic longer than the budget) is not
held to short batches: they would cost it throughput (per-batch overheads) exactly when it needs
it, so full batches raise the limit then. While the load is light batches are small anyway (each
takes what arrived during the last one) and the limit matters for bursts; under overload the
frames that age past the freshness limit are dropped, counted, by the worker as before.

The limit counts frames worked on. Frames dropped as stale cost only a header read, so while a
share of each fetch is dropped the fetch takes that much more (up to ``MAX_OVERFETCH`` times the
limit): a worker behind then reads past its stale backlog in a few fetches instead of spending
a whole batch cycle on every ``limit`` stale frames while the topic keeps filling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_OVERFETCH = 8


@dataclass
class LatencySteer:
    """Batch limit and fetch wait that keep frames within ``target_ms`` while the load allows.

    Args:
        target_ms: the latency target (capture to event), ``EMOSTREAM_WORKER__TARGET_LATENCY_MS``.
        max_frames: the configured largest batch (``max_batch_frames``): never exceeded.
        max_wait_ms: the configured longest fetch wait: never exceeded.
        min_frames: the smallest limit, so a slow spell (a pause, a burst of full-frame scans)
            cannot shrink batches to single frames and their per-batch overheads.
        share: the part of the target one batch may keep the worker busy.
        alpha: weight of the newest batch in the moving average of the time per frame.
    """

    target_ms: float
    max_frames: int
    max_wait_ms: int
    min_frames: int = 2
    share: float = 0.5
    alpha: float = 0.3
    limit: int = field(init=False)
    frame_ms: float | None = field(init=False, default=None)  # busy ms per frame, averaged
    dropped_share: float = field(init=False, default=0.0)  # of fetched frames, averaged

    def __post_init__(self) -> None:
        self.min_frames = max(1, min(self.min_frames, self.max_frames))
        self.limit = self.max_frames

    @property
    def budget_ms(self) -> float:
        """How long one batch may keep the worker busy: ``share`` of the target."""
        return self.target_ms * self.share

    def observe(
        self, frames: int, busy_ms: float, queue_wait_ms: float = 0.0, dropped: int = 0
    ) -> None:
        """Record a batch of ``frames`` worked on (``dropped`` more were stale) that took
        ``busy_ms`` from fetch to commit (its wait for the batch ahead excluded), whose frames
        had waited ``queue_wait_ms`` on average from capture to fetch; adjust the limit."""
        a = self.alpha
        if frames + dropped > 0 and dropped >= 0:
            share = dropped / (frames + dropped)
            self.dropped_share = (1 - a) * self.dropped_share + a * share
        if frames <= 0 or busy_ms < 0:
            return
        per_frame = busy_ms / frames
        self.frame_ms = (
            per_frame if self.frame_ms is None else (1 - a) * self.frame_ms + a * per_frame
        )
        if busy_ms > self.budget_ms and queue_wait_ms <= self.budget_ms:
            fits = int(frames * self.budget_ms / busy_ms)
            self.limit = max(self.min_frames, min(self.limit, fits))
        elif frames >= self.limit:
            self.limit = min(self.max_frames, self.limit + max(1, self.limit // 4))

    def batch_frames(self) -> int:
        """Frames the next batch may work on."""
        return self.limit

    def fetch_records(self) -> int:
        """Records the next fetch may take: the limit, plus the share expected to be stale."""
        kept = max(1.0 - self.dropped_share, 1.0 / MAX_OVERFETCH)
        return max(self.limit, min(int(self.limit / kept), self.limit * MAX_OVERFETCH))

    def wait_ms(self) -> int:
        """Longest fetch wait: at most a quarter of the target, less what a full batch takes.

        ``getmany`` returns as soon as records are buffered, so this only bounds how long an idle
        worker waits to fill a batch; a long wait there ages the first frame that arrives.
        """
        expected = (self.frame_ms or 0.0) * self.limit
        left = (self.target_ms - 2 * expected) / 2
        return int(max(1, min(self.max_wait_ms, self.target_ms / 4, left)))
