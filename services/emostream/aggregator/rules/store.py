"""Alert rules, their per-track state and webhook delivery logs in Redis (next to ``EventStore``).

Retention comes from the aggregator options (``EMOSTREAM_AGGREGATOR__*``).

Keys (``{p}`` is the configured prefix):
  {p}:rules                             HASH rule id -> rule JSON; configuration, so no TTL
  {p}:rule:{id}:state:{stream}:{track}  STRING TrackState JSON; TTL max(cooldown, 5 s) + 5 min
  {{p}:rules}:deliveries:{id}           LIST newest-first delivery records, trimmed to
                                        max_deliveries_per_rule; TTL stream_ttl_s (on the
                                        rules hash's slot: one script touches both)
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from pydantic import ValidationError

from emostream.aggregator.rules.model import (
    MAX_EVENT_GAP_S,
    RULE,
    Rule,
    TrackState,
)
from emostream.aggregator.state.connect import get_many
from emostream.aggregator.state.keys import deliveries_key
from emostream.aggregator.state.part import StorePart

log = structlog.get_logger(__name__)

MAX_RULES = 1000
STATE_TTL_MARGIN_S = 300
StateKey = tuple[str, str, str]  # rule id, stream id, track id


_RECORD_IF_RULE_EXISTS = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
return 1
"""


class RuleStore(StorePart):
    """Rule CRUD and rule state on a Redis client (e.g. a started ``EventStore``'s ``redis``)."""

    def _state_key(self, key: StateKey) -> str:
        rule_id, stream_id, track_id = key
        return f"{self.key_prefix}:rule:{rule_id}:state:{stream_id}:{track_id}"

    def _deliveries_key(self, rule_id: str) -> str:
        return deliveries_key(self.key_prefix, rule_id)

    async def count(self) -> int:
        return int(await self.redis.hlen(f"{self.key_prefix}:rules"))

    async def create(self, rule: Rule) -> None:
        await self.redis.hset(f"{self.key_prefix}:rules", rule.id, rule.model_dump_json())

    async def get(self, rule_id: str) -> Rule | None:
        doc = await self.redis.hget(f"{self.key_prefix}:rules", rule_id)
        return RULE.validate_json(doc) if doc else None

    async def list(self) -> list[Rule]:
        """Every valid rule, oldest first; a stored rule that no longer validates is skipped."""
        docs = await self.redis.hgetall(f"{self.key_prefix}:rules")
        out = []
        for rule_id, doc in docs.items():
            try:
                out.append(RULE.validate_json(doc))
            except ValidationError as exc:
                log.warning("skipping invalid stored rule", rule_id=rule_id, error=str(exc)[:200])
        return sorted(out, key=lambda r: (r.created_at, r.id))

    async def delete(self, rule_id: str) -> bool:
        """Remove a rule and its delivery log; its per-track state expires on its own."""
        async with self.redis.pipeline(transaction=not self.cluster) as pipe:
            pipe.hdel(
                f"{self.key_prefix}:rules", rule_id
            )  # first: a late delivery then logs nothing
            pipe.delete(self._deliveries_key(rule_id))
            removed, _ = await pipe.execute()
        return bool(removed)

    async def load_states(self, keys: list[StateKey]) -> dict[StateKey, TrackState]:
        if not keys:
            return {}
        docs = await get_many(self.redis, [self._state_key(k) for k in keys])
        return {k: TrackState.loads(d) for k, d in zip(keys, docs)}

    async def save_states(self, states: dict[StateKey, TrackState], rules: dict[str, Rule]) -> None:
        """Write states back; each lives as long as its cooldown or gap can still matter."""
        if not states:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, state in states.items():
                rule = rules[key[0]]
                ttl = int(max(rule.cooldown_seconds, MAX_EVENT_GAP_S)) + STATE_TTL_MARGIN_S
                pipe.set(self._state_key(key), state.dumps(), ex=ttl)
            await pipe.execute()

    async def exists(self, rule_id: str) -> bool:
        return bool(await self.redis.hexists(f"{self.key_prefix}:rules", rule_id))

    async def record_delivery(self, rule_id: str, record: dict[str, Any]) -> bool:
        """Log a delivery, atomically only while the rule exists (a deleted rule's log stays
        deleted); False when the rule is gone."""
        settings = self.retention
        written = await self.redis.eval(
            _RECORD_IF_RULE_EXISTS,
            2,
            f"{self.key_prefix}:rules",
            self._deliveries_key(rule_id),
            rule_id,
            json.dumps(record, separators=(",", ":")),
            settings.max_deliveries_per_rule - 1,
            settings.stream_ttl_s,
        )
        return bool(written)

    async def deliveries(self, rule_id: str, limit: int) -> list[dict[str, Any]]:
        docs = await self.redis.lrange(self._deliveries_key(rule_id), 0, limit - 1)
        return [json.loads(d) for d in docs]
