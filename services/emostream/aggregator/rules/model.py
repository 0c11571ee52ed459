"""Alert rules: declarative conditions on one face track's emotions, evaluated event by event.

Two kinds:

* ``probability_above``: the summed probability of ``emotions`` (the smoothed distribution when
  the event has one, else the raw one) stays above ``threshold`` for ``for_seconds``. Fires once
  per episode; the rule re-arms when the sum drops to or below the threshold (or the track is not
  seen for ``MAX_EVENT_GAP_S``).
* ``stable_change``: the track's smoothed stable emotion changed (a new track's first stable
  label counts), optionally only ``to`` some labels.

All timing is event time (``captured_at``), never wall-clock, so replays and tests are
deterministic. ``cooldown_seconds`` (per rule, stream and track) delays a ``probability_above``
episode's alert until the cooldown has passed and drops ``stable_change`` alerts inside it.
The functions here are pure; the aggregator keeps each (rule, stream, track) state in Redis.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from emostream.aggregator.webhooks.urls import parse_webhook_url
from emostream.frames import STREAM_ID_RE
from emostream.labels import EMOTIONS, EmotionLabel, StableLabel
from emostream.schemas import AlertSummary, AlertV1, DistributionSource, EmotionEventV1, RuleKind

MAX_EVENT_GAP_S = 5.0  # a track unseen this long (event time) ends its episode
RULE_ID_PATTERN = r"^[0-9a-f]{32}$"


class _RuleFields(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=100)
    stream_id: str | None = Field(
        None, pattern=STREAM_ID_RE.pattern, description="Only this stream (default: every stream)"
    )
    webhook_url: str | None = Field(
        None, max_length=2048, description="http(s) URL to POST alerts to"
    )
    cooldown_seconds: float = Field(
        60.0, ge=0, le=86_400, description="Least time between two alerts of one track"
    )

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None:
            parse_webhook_url(v)  # the sender's own parser: what passes here can be sent
        return v


class ProbabilityAboveSpec(_RuleFields):
    kind: Literal["probability_above"]
    emotions: list[EmotionLabel] = Field(min_length=1, max_length=len(EMOTIONS))
    threshold: float = Field(ge=0.0, le=1.0)
    for_seconds: float = Field(gt=0, le=3600)

    @field_validator("emotions")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("emotions must not repeat")
        return v


class StableChangeSpec(_RuleFields):
    kind: Literal["stable_change"]
    to: list[StableLabel] | None = Field(
        None, min_length=1, max_length=len(EMOTIONS) + 1, description="Only changes to these labels"
    )


class _Stored(BaseModel):
    id: str = Field(pattern=RULE_ID_PATTERN)
    created_at: datetime


class ProbabilityAboveRule(ProbabilityAboveSpec, _Stored):
    pass


class StableChangeRule(StableChangeSpec, _Stored):
    pass


# The one union of each: the API's request body (RuleSpec), the stored and returned rule (Rule).
# Annotated keeps them plain unions to type checkers; pydantic picks the member by ``kind``.
RuleSpec = Annotated[ProbabilityAboveSpec | StableChangeSpec, Field(discriminator="kind")]
Rule = Annotated[ProbabilityAboveRule | StableChangeRule, Field(discriminator="kind")]
RULE = TypeAdapter(Rule)
_STORED: dict[RuleKind, type[ProbabilityAboveRule] | type[StableChangeRule]] = {
    "probability_above": ProbabilityAboveRule,
    "stable_change": StableChangeRule,
}


def new_rule(spec: RuleSpec, now: datetime | None = None) -> Rule:
    """A stored rule from a validated spec: a fresh random id and the creation time."""
    created = now or datetime.now(UTC)
    return _STORED[spec.kind](**spec.model_dump(), id=uuid.uuid4().hex, created_at=created)


@dataclass
class TrackState:
    """One (rule, stream, track)'s memory between events (times in capture ms)."""

    last_seen_ms: int | None = None
    above_since_ms: int | None = None  # start of the current episode
    fired: bool = False  # the current episode has fired
    last_fired_ms: int | None = None
    label: str | None = None  # stable_change: the last stable label

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, doc: str | None) -> TrackState:
        return cls(**json.loads(doc)) if doc else cls()


def applies(rule: Rule, ev: EmotionEventV1) -> bool:
    return rule.stream_id is None or rule.stream_id == ev.stream_id


def distribution(ev: EmotionEventV1) -> tuple[DistributionSource, dict[str, float]]:
    if ev.smoothed is not None:
        return "smoothed", dict(ev.smoothed.probabilities)
    return "raw", dict(ev.emotion.probabilities)


def _cooled(rule: Rule, state: TrackState, t_ms: int) -> bool:
    return state.last_fired_ms is None or t_ms - state.last_fired_ms >= rule.cooldown_seconds * 1000


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _alert(rule: Rule, ev: EmotionEventV1, start_ms: int, summary: AlertSummary) -> AlertV1:
    track = ev.track_key
    return AlertV1(
        alert_id=AlertV1.make_id(rule.id, ev.stream_id, track, start_ms),
        rule_id=rule.id,
        rule_name=rule.name,
        kind=rule.kind,
        stream_id=ev.stream_id,
        track_id=track,
        episode_started_at=_ms_to_dt(start_ms),
        fired_at=ev.captured_at,
        event_id=ev.event_id,
        frame_seq=ev.frame_seq,
        summary=summary,
    )


def _probability_above(
    rule: ProbabilityAboveRule, st: TrackState, ev: EmotionEventV1, t: int
) -> AlertV1 | None:
    source, probs = distribution(ev)
    score = sum(probs[e] for e in rule.emotions)
    if score <= rule.threshold:
        st.above_since_ms, st.fired = None, False  # re-arm
        return None
    if st.above_since_ms is None:
        st.above_since_ms, st.fired = t, False
    held_ms = t - st.above_since_ms
    if st.fired or held_ms < rule.for_seconds * 1000 or not _cooled(rule, st, t):
        return None
    st.fired, st.last_fired_ms = True, t
    label = max(probs, key=probs.__getitem__)
    return _alert(
        rule,
        ev,
        st.above_since_ms,
        AlertSummary(
            source=source,
            label=label,
            confidence=probs[label],
            probabilities=probs,
            emotions=list(rule.emotions),
            score=round(score, 6),
            threshold=rule.threshold,
            above_for_s=held_ms / 1000,
        ),
    )


def _stable_change(
    rule: StableChangeRule, st: TrackState, ev: EmotionEventV1, t: int
) -> AlertV1 | None:
    sm = ev.smoothed
    if sm is None:
        return None
    previous, st.label = st.label, sm.label
    wanted = rule.to is None or sm.label in rule.to
    if not sm.changed or not wanted or not _cooled(rule, st, t):
        return None
    st.last_fired_ms = t
    return _alert(
        rule,
        ev,
        t,
        AlertSummary(
            source="smoothed",
            label=sm.label,
            confidence=sm.confidence,
            probabilities=dict(sm.probabilities),
            from_label=previous,
            to_label=sm.label,
        ),
    )


def evaluate(rule: Rule, state: TrackState, ev: EmotionEventV1) -> AlertV1 | None:
    """Advance ``state`` (in place) by one event of its track; the alert if the rule fires.

    Events older than the last one seen for the track (reordering) are ignored.
    """
    t = ev.captured_ms
    if state.last_seen_ms is not None:
        if t < state.last_seen_ms:
            return None
        if t - state.last_seen_ms > MAX_EVENT_GAP_S * 1000:
            state.above_since_ms, state.fired = None, False  # the track went away: new episode
    state.last_seen_ms = t
    if isinstance(rule, ProbabilityAboveRule):
        return _probability_above(rule, state, ev, t)
    return _stable_change(rule, state, ev, t)


def state_key(rule_id: str, ev: EmotionEventV1) -> tuple[str, str, str]:
    return rule_id, ev.stream_id, ev.track_key


class RuleIndex:
    """Rules by the stream they watch: an event meets only its stream's rules and the
    rules for every stream, not every rule there is."""

    def __init__(self, rules: list[Rule]) -> None:
        self.every_stream = [r for r in rules if r.stream_id is None]
        self.by_stream: dict[str, list[Rule]] = {}
        for r in rules:
            if r.stream_id is not None:
                self.by_stream.setdefault(r.stream_id, []).append(r)

    def for_event(self, ev: EmotionEventV1) -> list[Rule]:
        return self.by_stream.get(ev.stream_id, []) + self.every_stream


def evaluate_events(
    rules: list[Rule] | RuleIndex,
    events: list[EmotionEventV1],
    states: dict[tuple[str, str, str], TrackState],
) -> list[AlertV1]:
    """Run every applicable rule over ``events`` in capture order; ``states`` (keyed by
    ``state_key``) are created or advanced in place. Returns the alerts in firing order."""
    index = rules if isinstance(rules, RuleIndex) else RuleIndex(rules)
    alerts = []
    for ev in sorted(events, key=lambda e: e.capture_order):
        for rule in index.for_event(ev):
            state = states.setdefault(state_key(rule.id, ev), TrackState())
            alert = evaluate(rule, state, ev)
            if alert is not None:
                alerts.append(alert)
    return alerts
