"""Per-stream face tracking: greedy IoU association gives each face a stable track id."""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_VELOCITY_DT_S = 1 / 30  # the shortest time step a speed is estimated over
MAX_SPEED_BOX_WIDTHS_PER_S = 3.0  # faster "motion" is detection noise, not a moving head


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    track_id: str
    box: tuple[int, int, int, int]
    started_s: float
    last_seen_s: float
    hits: int = 1
    velocity: tuple[float, float] = (0.0, 0.0)
    streak: int = 1  # consecutive updates with a detection
    confirmed: bool = False  # reached the tracker's min_hits in a row; stays confirmed

    def predicted(self, t_s: float) -> tuple[int, int, int, int]:
        """Box moved by the last observed velocity (helps fast pans and short misses)."""
        dt = max(t_s - self.last_seen_s, 0.0)
        x, y, w, h = self.box
        return (int(x + self.velocity[0] * dt), int(y + self.velocity[1] * dt), w, h)


@dataclass
class IoUTracker:
    """Associates detections to tracks frame by frame.

    A track survives ``max_missed_s`` without a detection (brief misses keep their id); matching
    is greedy on IoU against each track's motion-predicted box, highest overlap first.
    As SORT's ``min_hits``: a track is ``confirmed`` once detected in ``min_hits`` consecutive
    updates; callers report only confirmed tracks, so a one-frame false detection (a face-like
    patch of background) never becomes an event.
    """

    prefix: str
    iou_threshold: float = 0.25
    max_missed_s: float = 1.0
    max_tracks: int = 64
    min_hits: int = 1
    tracks: dict[str, Track] = field(default_factory=dict)
    _next: int = 0

    def update(
        self, boxes: list[tuple[int, int, int, int]], t_s: float
    ) -> tuple[list[str], list[Track]]:
        """Return the track id of each box (same order) and the tracks that ended."""
        # Also ends tracks "seen in the future": the capture clock went backwards (a camera reset).
        ended = [t for t in self.tracks.values() if abs(t_s - t.last_seen_s) > self.max_missed_s]
        for t in ended:
            del self.tracks[t.track_id]
        pairs = sorted(
            (
                (iou(t.predicted(t_s), b), tid, i)
                for tid, t in self.tracks.items()
                for i, b in enumerate(boxes)
            ),
            reverse=True,
        )
        assigned: dict[int, str] = {}
        used: set[str] = set()
        for score, match, i in pairs:
            if score < self.iou_threshold:
                break
            if i in assigned or match in used:
                continue
            assigned[i] = match
            used.add(match)
        ids = []
        for i, box in enumerate(boxes):
            tid = assigned.get(i)
            if tid is None:
                tid = f"{self.prefix}-{self._next}"
                self._next += 1
                self.tracks[tid] = Track(tid, box, t_s, t_s, confirmed=self.min_hits <= 1)
                if len(self.tracks) > self.max_tracks:  # bounded: drop the stalest
                    stalest = min(self.tracks.values(), key=lambda t: t.last_seen_s)
                    ended.append(self.tracks.pop(stalest.track_id))
            else:
                t = self.tracks[tid]
                dt = t_s - t.last_seen_s
                if dt > 0:
                    # Frames captured a few ms apart (a burst, a file read fast) would turn a
                    # pixel of detection jitter into a huge speed and send the next search to the
                    # wrong place: the time step has a floor and the speed a cap.
                    dt = max(dt, MIN_VELOCITY_DT_S)
                    cap = MAX_SPEED_BOX_WIDTHS_PER_S * box[2]
                    cx = (box[0] + box[2] / 2) - (t.box[0] + t.box[2] / 2)
                    cy = (box[1] + box[3] / 2) - (t.box[1] + t.box[3] / 2)
                    vx = min(max(0.5 * t.velocity[0] + 0.5 * cx / dt, -cap), cap)
                    vy = min(max(0.5 * t.velocity[1] + 0.5 * cy / dt, -cap), cap)
                    t.velocity = (vx, vy)
                t.box, t.last_seen_s, t.hits, t.streak = box, t_s, t.hits + 1, t.streak + 1
                t.confirmed = t.confirmed or t.streak >= self.min_hits
            ids.append(tid)
        for tid, t in self.tracks.items():
            if tid not in used and t.last_seen_s != t_s:
                t.streak = 0
        return ids, ended

    def is_confirmed(self, track_id: str) -> bool:
        track = self.tracks.get(track_id)
        return track is not None and track.confirmed
