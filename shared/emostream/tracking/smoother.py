"""Per-track temporal smoothing: EMA of probabilities plus hysteresis on the reported emotion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emostream.labels import UNCERTAIN


@dataclass
class SmoothedState:
    probs: np.ndarray
    votes: np.ndarray  # EMA of per-frame votes: each emotion, then "uncertain" last
    last_s: float
    stable: str
    stable_since_s: float
    candidate: str | None = None
    candidate_since_s: float = 0.0


@dataclass(frozen=True)
class Smoothed:
    label: str  # an emotion, or "uncertain"
    confidence: float
    probabilities: np.ndarray
    stable_for_s: float
    changed: bool  # the stable label changed on this update
    previous: str | None = None  # the label it changed from (None for a new track)
    previous_held_s: float | None = None  # how long the previous label was held


class EmotionSmoother:
    """Time-based EMA (``half_life_s``) with hysteresis.

    The stable label switches only after another label has led the smoothed probabilities for
    ``hold_s``; below ``min_confidence`` for ``uncertain_hold_factor`` times that (twice by
    default), the track abstains (``uncertain``). ``SmoothingOptions`` configures all four.
    """

    def __init__(
        self,
        labels: tuple[str, ...],
        half_life_s: float = 0.25,
        hold_s: float = 0.3,
        min_confidence: float = 0.35,
        uncertain_hold_factor: float = 2.0,
    ) -> None:
        self.labels = labels
        self.uncertain_hold_factor = uncertain_hold_factor
        self.half_life_s = half_life_s
        self.hold_s = hold_s
        self.min_confidence = min_confidence
        self.states: dict[str, SmoothedState] = {}

    def _lead(self, probs: np.ndarray) -> str:
        best = int(np.argmax(probs))
        return self.labels[best] if probs[best] >= self.min_confidence else UNCERTAIN

    def _vote(self, probs: np.ndarray) -> np.ndarray:
        """One frame's vote: its top emotion, or "uncertain" below ``min_confidence``."""
        vote = np.zeros(len(self.labels) + 1)
        best = int(np.argmax(probs))
        vote[best if probs[best] >= self.min_confidence else -1] = 1.0
        return vote

    def _leading_vote(self, votes: np.ndarray) -> str:
        best = int(np.argmax(votes))
        return UNCERTAIN if best == len(self.labels) else self.labels[best]

    def update(self, track_id: str, probs: np.ndarray, t_s: float) -> Smoothed:
        probs = np.asarray(probs, dtype=np.float64)
        st = self.states.get(track_id)
        if st is None:
            lead = self._lead(probs)
            self.states[track_id] = SmoothedState(probs.copy(), self._vote(probs), t_s, lead, t_s)
            return Smoothed(lead, float(probs.max()), probs.copy(), 0.0, True)
        if t_s < st.last_s:  # the capture clock went backwards (a camera reset): rebase the state
            shift = t_s - st.last_s
            st.last_s += shift
            st.stable_since_s += shift
            st.candidate_since_s += shift
        dt = t_s - st.last_s
        alpha = 1.0 - 0.5 ** (dt / self.half_life_s) if self.half_life_s > 0 else 1.0
        st.probs = (1 - alpha) * st.probs + alpha * probs
        st.probs /= st.probs.sum()
        st.votes = (1 - alpha) * st.votes + alpha * self._vote(probs)
        st.last_s = t_s
        lead = self._leading_vote(st.votes)
        changed = False
        previous: str | None = None
        previous_held_s: float | None = None
        if lead == st.stable:
            st.candidate = None
        elif lead != st.candidate:
            st.candidate, st.candidate_since_s = lead, t_s
        # Abstaining needs twice the hold: the probabilities dip under ``min_confidence`` briefly
        # whenever one emotion gives way to another, and that is not the model being unsure.
        hold = self.hold_s * (self.uncertain_hold_factor if st.candidate == UNCERTAIN else 1)
        if st.candidate is not None and t_s - st.candidate_since_s >= hold:
            previous, previous_held_s = st.stable, t_s - st.stable_since_s
            st.stable, st.stable_since_s, st.candidate = st.candidate, t_s, None
            changed = True
        conf = (
            float(st.probs[self.labels.index(st.stable)])
            if st.stable != UNCERTAIN
            else float(st.probs.max())
        )
        return Smoothed(
            st.stable,
            conf,
            st.probs.copy(),
            t_s - st.stable_since_s,
            changed,
            previous,
            previous_held_s,
        )

    def forget(self, track_id: str) -> None:
        self.states.pop(track_id, None)
