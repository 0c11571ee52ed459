"""Where a frame's time goes in the worker: per-stage costs and waits, summed for reports and
observed per batch in ``/metrics`` (``emostream_worker_frame_stage_seconds``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from emostream import metrics

# Work per frame: decode and detect (incl. tracking and crops) are timed per frame in the detect
# threads; classify, events (smoothing, building events), publish and commit per batch, charged
# to its frames evenly.
COST_STAGES = ("decode", "detect", "classify", "events", "publish", "commit")
# A frame's path in time: capture to fetch (in the topic, while earlier batches are worked on),
# its batch's prepare (decode + detect), the wait for the batch before it to be committed, its
# batch's finish (classify + events), publish, commit.
PATH_STAGES = ("queue_wait", "prepare", "pipeline_wait", "finish", "publish", "commit")


@dataclass
class BatchTimes:
    """One batch's timings, in seconds: ``stage_s`` summed over its frames' work (as
    ``BatchResult.stage_s``), the rest walls of the whole batch."""

    frames: int
    stage_s: dict[str, float]
    queue_wait_s: float  # summed over frames
    prepare_s: float
    pipeline_wait_s: float
    finish_s: float
    publish_s: float
    commit_s: float

    def path_s(self) -> dict[str, float]:
        """Seconds summed over frames for each of ``PATH_STAGES`` (a frame waits for its batch)."""
        n = self.frames
        return {
            "queue_wait": self.queue_wait_s,
            "prepare": self.prepare_s * n,
            "pipeline_wait": self.pipeline_wait_s * n,
            "finish": self.finish_s * n,
            "publish": self.publish_s * n,
            "commit": self.commit_s * n,
        }

    def cost_s(self) -> dict[str, float]:
        """Seconds of work for each of ``COST_STAGES``, summed over the batch."""
        out = {s: self.stage_s.get(s, 0.0) for s in ("decode", "detect", "classify", "events")}
        out["publish"], out["commit"] = self.publish_s, self.commit_s
        return out


@dataclass
class StageTotals:
    """Totals since start (or ``reset``): what the pipeline benchmark reports per frame."""

    frames: int = 0
    batches: int = 0
    cost_s: dict[str, float] = field(default_factory=dict)
    path_s: dict[str, float] = field(default_factory=dict)

    def add(self, t: BatchTimes) -> None:
        if t.frames <= 0:
            return
        self.frames += t.frames
        self.batches += 1
        for name, v in t.cost_s().items():
            self.cost_s[name] = self.cost_s.get(name, 0.0) + v
        for name, v in t.path_s().items():
            self.path_s[name] = self.path_s.get(name, 0.0) + v
        for name, v in t.cost_s().items():
            metrics.FRAME_STAGE_SECONDS.labels(name).observe(v / t.frames)
        for name in ("queue_wait", "pipeline_wait"):
            metrics.FRAME_STAGE_SECONDS.labels(name).observe(t.path_s()[name] / t.frames)

    def reset(self) -> None:
        self.frames = self.batches = 0
        self.cost_s.clear()
        self.path_s.clear()

    def mean_batch_frames(self) -> float:
        return round(self.frames / max(self.batches, 1), 1)

    def per_frame_ms(self) -> dict[str, dict[str, float]]:
        """Mean milliseconds per frame: ``cost`` (work) and ``path`` (a frame's latency, split)."""
        n = max(self.frames, 1)
        return {
            "cost": {s: round(1000 * self.cost_s.get(s, 0.0) / n, 2) for s in COST_STAGES},
            "path": {s: round(1000 * self.path_s.get(s, 0.0) / n, 1) for s in PATH_STAGES},
        }
