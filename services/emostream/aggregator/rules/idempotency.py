"""``Idempotency-Key`` on ``POST /v1/rules``: a retried create gets the rule it made the first time.

The first request with a key stores ``{fingerprint of the body, the rule}`` under the key for
24 h (``SET NX``, so two concurrent requests cannot both create). A repeat with the same body
gets that rule again (201, ``Idempotent-Replayed: true``), even when it was deleted since: the
same answer as the first time. The same key with another body is a client error (422). Keys are
scoped by the caller's API key, so two clients cannot collide or read each other's rules.

Key: ``{p}:idempotency:rules:{sha256(api key)[:16]}:{sha256(idempotency key)}``, STRING, TTL 24 h.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from redis.asyncio import Redis

from emostream.aggregator.rules.model import RULE, Rule, RuleSpec

IDEMPOTENCY_TTL_S = 24 * 3600
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # printable ASCII, no spaces


class IdempotencyConflict(Exception):
    """The key was used before with a different request body."""


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: ``rule`` to create (``replayed`` False) or to return."""

    rule: Rule
    replayed: bool


def fingerprint(spec: RuleSpec) -> str:
    """The request body as validated, so formatting and key order do not count."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()


class RuleIdempotency:
    """Claims and releases idempotency keys of rule creation in Redis."""

    def __init__(self, redis: Redis, prefix: str, ttl_s: int = IDEMPOTENCY_TTL_S) -> None:
        self.redis = redis
        self.key_prefix = prefix
        self.ttl_s = ttl_s

    def _key(self, scope: str | None, key: str) -> str:
        scope_hash = hashlib.sha256((scope or "").encode()).hexdigest()[:16]
        key_hash = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.key_prefix}:idempotency:rules:{scope_hash}:{key_hash}"

    async def claim(self, scope: str | None, key: str, spec: RuleSpec, rule: Rule) -> Claim:
        """Claim ``key`` for ``rule`` (made from ``spec``), or find the rule it was used for.

        Raises:
            IdempotencyConflict: ``key`` was used with a different body in the last 24 h.
        """
        record = json.dumps({"fingerprint": fingerprint(spec), "rule": rule.model_dump_json()})
        redis_key = self._key(scope, key)
        if await self.redis.set(redis_key, record, nx=True, ex=self.ttl_s):
            return Claim(rule, replayed=False)
        stored = await self.redis.get(redis_key)
        if stored is None:  # expired between the two commands: claim it afresh
            return await self.claim(scope, key, spec, rule)
        doc = json.loads(stored)
        if doc["fingerprint"] != fingerprint(spec):
            raise IdempotencyConflict(key)
        return Claim(RULE.validate_json(doc["rule"]), replayed=True)

    async def release(self, scope: str | None, key: str) -> None:
        """Forget a claim whose rule was not created (the client may retry with the key)."""
        await self.redis.delete(self._key(scope, key))
