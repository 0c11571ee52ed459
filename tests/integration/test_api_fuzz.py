"""Malformed input never makes the API answer 5xx (issue 33 item 13), against a real Redis.

A seeded fuzz over every read route's path and query parameters and the rule body: odd numbers,
score-like cursors, control and bidi characters, lone surrogates, long values. Each answer must
be below 500 (400/404/422 for bad input, 200 where it happens to be valid).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest

from emostream.aggregator import create_app
from emostream.aggregator.state.store import EventStore
from emostream.api_limits import ReadBudgetOptions
from emostream.models import EMOTIONS
from emostream.schemas import EmotionEventV1

pytestmark = pytest.mark.slow

STREAM = "fuzz-cam"
SEEDS = ["", "0", "-1", "1e", "e", ".", "-", "+", "1e999", "nan", "inf", "-inf", "1.5", "9" * 40]
SEEDS += ["e:x", "1e:x", ":", "1:", "-.:a", "..:..", "+-:-", "1e5:z", "\u202e\ud800x", "\x00"]
SEEDS += ["%00", "%ff", "a" * 300, "0123456789abcdef", "0" * 32, "ab" * 16, "\u0000\u202e", "[]"]
ALPHABET = "0123456789.e+-:_abcdefxyzAZ %/\\\"'<>{}[]\x00\x7f\u202e\u00e9\ud800\U0001f600"
QUERIES = {
    "/v1/streams": ["limit", "cursor"],
    f"/v1/streams/{STREAM}/events": ["limit"],
    f"/v1/streams/{STREAM}/windows": ["window_s"],
    f"/v1/streams/{STREAM}/tracks": ["active_within_s"],
    f"/v1/streams/{STREAM}/sessions": ["limit"],
    f"/v1/streams/{STREAM}/changes": ["limit", "before"],
    f"/v1/streams/{STREAM}/alerts": ["limit", "before"],
    f"/v1/rules/{'0' * 32}/deliveries": ["limit"],
}
PATHS = [
    "/v1/streams/{}/state",
    "/v1/streams/{}/events",
    "/v1/streams/{}/windows",
    "/v1/streams/{}/sessions",
    f"/v1/streams/{STREAM}/sessions/{{}}",
    "/v1/rules/{}",
    "/v1/rules/{}/deliveries",
    "/dashboard/streams/{}",
]


def values(rng: random.Random, n: int) -> list[str]:
    made = list(SEEDS)
    for _ in range(n):
        made.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))))
    return made


def safe(text: str) -> str:
    """``text`` as a URL component (lone surrogates as their escape: a URL carries bytes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def rule_bodies(rng: random.Random) -> list[bytes]:
    """Rule bodies with one field replaced, as a JSON string and as a raw (maybe invalid) token."""
    base = {"kind": "probability_above", "name": "n", "emotions": ["angry"], "threshold": 0.5}
    base["for_seconds"] = 3
    out = [b"\xff\xfe", b"{", b"[]", b"null", b'{"kind": "stable_change", "name": "\\ud800"}']
    for field in [*base, "stream_id", "webhook_url", "cooldown_seconds", "to"]:
        doc = json.dumps({k: v for k, v in base.items() if k != field})[:-1]
        for v in [*SEEDS, *values(rng, 4)[len(SEEDS) :]]:
            for literal in (json.dumps(v), v):
                out.append(f'{doc}, "{field}": {literal}}}'.encode("utf-8", "surrogatepass"))
    return out


def event(seq: int) -> EmotionEventV1:
    probs = dict.fromkeys(EMOTIONS, 0.1)
    probs["happy"] = 0.4
    now = datetime.now(UTC)
    return EmotionEventV1(
        event_id=EmotionEventV1.make_id(STREAM, seq, 0),
        stream_id=STREAM,
        frame_seq=seq,
        captured_at=now,
        processed_at=now,
        face={"index": 0, "box": {"x": 1, "y": 1, "w": 40, "h": 40}, "detector_score": 0.9},
        emotion={"label": "happy", "confidence": 0.4, "probabilities": probs},
        model={"name": "test", "version": "1", "trained": True},
    )


async def test_malformed_parameters_never_give_5xx(redis_settings):
    rng = random.Random(33)
    failures: list[str] = []
    async with EventStore(redis_settings) as store:
        await store.add_events([event(i) for i in range(5)])
        no_budget = ReadBudgetOptions(per_client_per_s=0, total_per_s=0)  # every request checked
        app = create_app(store, reads=no_budget)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:

            async def check(method: str, url: str, body: bytes | None = None) -> None:
                headers = {"content-type": "application/json"} if body is not None else {}
                r = await client.request(method, url, content=body, headers=headers)
                if r.status_code >= 500:
                    failures.append(f"{method} {url} {body!r:.80} -> {r.status_code} {r.text:.80}")

            for path, params in QUERIES.items():
                for name in params:
                    for v in values(rng, 40):
                        await check("GET", f"{path}?{name}={safe(v)}")
            for template in PATHS:
                for v in values(rng, 20):
                    await check("GET", template.format(safe(v) or "x"))
            for body in rule_bodies(rng):
                await check("POST", "/v1/rules", body)
    assert not failures, "\n".join(failures[:20])


async def test_bad_cursors_and_unencodable_names_are_422_with_a_reason(redis_settings):
    async with EventStore(redis_settings) as store:
        transport = httpx.ASGITransport(app=create_app(store), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            r = await client.get("/v1/streams", params={"cursor": "e:x"})
            assert r.status_code == 422, r.text
            assert r.json()["detail"] == "cursor must be the next_cursor of a previous page"
            body = b'{"kind": "stable_change", "name": "\\u202e\\ud800x"}'
            r = await client.post(
                "/v1/rules", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["input"] == "\u202e\\ud800x"
