"""The aggregator's HTTP API: paged reads with cursor iteration, rules, and the live push (SSE)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

from emostream_client.models import Alert, EmotionChange, EmotionEvent, LiveMessage

LIVE_TYPES = {"event": EmotionEvent, "change": EmotionChange, "alert": Alert}
SSE_TYPES = {"emotion": "event", "change": "change", "alert": "alert"}  # SSE ``event:`` names


class ApiError(Exception):
    """An HTTP error answer: ``status_code`` and the server's ``detail``."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class EmostreamClient:
    """A client of one aggregator. ``with EmostreamClient(url, api_key) as c: ...``.

    ``transport``: an httpx transport (tests pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout_s, transport=transport
        )
        self.last_event_id: str | None = None  # of the live push, to resume with

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EmostreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:200]
            raise ApiError(response.status_code, detail)
        return response.json() if response.content else None

    def _pages(
        self, path: str, items: str, cursor_param: str, params: dict[str, Any]
    ) -> Iterator[dict]:
        """Every item of every page: each page's ``next_cursor`` is sent back as
        ``cursor_param`` until it is null."""
        params = {k: v for k, v in params.items() if v is not None}
        while True:
            page = self._request("GET", path, params=params)
            yield from page[items]
            cursor = page.get("next_cursor")
            if not cursor:
                return
            params[cursor_param] = cursor

    def streams(self, page_size: int = 100) -> Iterator[dict]:
        """Every stream, most recently active first (``stream_id``, ``events_total``...)."""
        return self._pages("/v1/streams", "streams", "cursor", {"limit": page_size})

    def events(self, stream_id: str, limit: int = 100) -> list[EmotionEvent]:
        """The stream's newest events, newest first."""
        doc = self._request("GET", f"/v1/streams/{stream_id}/events", params={"limit": limit})
        return [EmotionEvent.model_validate(e) for e in doc["events"]]

    def changes(
        self, stream_id: str, page_size: int = 100, before: str | None = None
    ) -> Iterator[EmotionChange]:
        """The stream's stable-emotion changes, newest first, page after page."""
        params = {"limit": page_size, "before": before}
        for doc in self._pages(f"/v1/streams/{stream_id}/changes", "changes", "before", params):
            yield EmotionChange.model_validate(doc)

    def alerts(
        self, stream_id: str, page_size: int = 100, before: str | None = None
    ) -> Iterator[Alert]:
        """The stream's alerts, newest first, page after page."""
        params = {"limit": page_size, "before": before}
        for doc in self._pages(f"/v1/streams/{stream_id}/alerts", "alerts", "before", params):
            yield Alert.model_validate(doc)

    def rules(self) -> list[dict]:
        return self._request("GET", "/v1/rules")["rules"]

    def create_rule(self, rule: dict, idempotency_key: str | None = None) -> dict:
        """Create a rule (admin key); with ``idempotency_key`` a retry cannot make a second."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._request("POST", "/v1/rules", json=rule, headers=headers)

    def delete_rule(self, rule_id: str) -> None:
        self._request("DELETE", f"/v1/rules/{rule_id}")

    def live(
        self,
        stream_id: str | None = None,
        kinds: Iterable[str] = ("event", "change", "alert"),
        last_event_id: str | None = None,
    ) -> Iterator[LiveMessage]:
        """Newly stored events, changes and alerts as they happen (Server-Sent Events), until
        the caller stops iterating. ``last_event_id`` (or the one seen last) resumes after it
        where the server keeps ids."""
        params: list[tuple[str, str]] = [("kind", k) for k in kinds]
        if stream_id:
            params.append(("stream_id", stream_id))
        resume = last_event_id or self.last_event_id
        headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": resume} if resume else {})
        timeout = httpx.Timeout(10.0, read=60.0)  # the server sends a heartbeat every 15 s
        with self._http.stream(
            "GET", "/v1/live/sse", params=params, headers=headers, timeout=timeout
        ) as response:
            if response.is_error:
                response.read()
                raise ApiError(response.status_code, response.text[:200])
            for event_id, name, data in parse_sse(response.iter_lines()):
                if event_id:
                    self.last_event_id = event_id
                message = live_message(name, data)
                if message is not None:
                    yield message


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str | None, str, str]]:
    """``(id, event name, data)`` of each Server-Sent Events record; comments are skipped."""
    event_id, name, data = None, "message", []
    for line in lines:
        if not line:
            if data:
                yield event_id, name, "\n".join(data)
            event_id, name, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id":
            event_id = value


def live_message(name: str, data: str) -> LiveMessage | None:
    """A typed live message from one SSE record (typed ``{"type", "stream_id", "data"}`` or a
    bare document named by ``event:``); None for kinds this client does not know."""
    doc = json.loads(data)
    if isinstance(doc, dict) and {"type", "data"} <= doc.keys():
        kind, body = doc["type"], doc["data"]
    else:
        kind, body = SSE_TYPES.get(name, name), doc
    model = LIVE_TYPES.get(kind)
    if model is None:
        return None  # a newer kind: ignored, as unknown fields are
    parsed = model.model_validate(body)
    return LiveMessage(type=kind, stream_id=parsed.stream_id, data=parsed)
