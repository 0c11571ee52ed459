"""A stream's stable-emotion changes and alerts, a page at a time, newest first."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from emostream.aggregator.api.deps import Context, KnownStream, ReadBudgetScope, ReadScope, StreamId
from emostream.aggregator.api.responses import AlertsPage, ChangesPage
from emostream.aggregator.feeds import FeedStore
from emostream.aggregator.rules.store import RuleStore

Before = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{1,16}:[0-9a-f]{0,64}$",
        description="next_cursor of the previous page (``<ms>:<id>``): older entries",
    ),
]
After = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{1,16}:[0-9a-f]{0,64}$",
        description="Page forward: entries newer than ``<ms>:<id>`` (an entry's capture or "
        "fire ms and id; ``0:`` from the oldest kept), oldest first; next_cursor is null once "
        "caught up",
    ),
]
Page = tuple[int, str | None, str | None]  # limit, before, after


def feeds_router(max_limit: int) -> APIRouter:
    """``max_limit``: the largest ``limit`` (the entries kept per stream)."""
    router = APIRouter(prefix="/v1/streams/{stream_id}", dependencies=[ReadScope, ReadBudgetScope])
    Limit = Annotated[int, Query(ge=1, le=max_limit)]

    async def paging(limit: Limit = 50, before: Before = None, after: After = None) -> Page:
        if before is not None and after is not None:
            raise HTTPException(422, detail="before and after page opposite ways: give one")
        return limit, before, after

    Paging = Annotated[Page, Depends(paging)]

    @router.get("/changes")
    async def changes(
        stream_id: StreamId, ctx: Context, known: KnownStream, page: Paging
    ) -> ChangesPage:
        """Stable-emotion changes of the stream's tracks (EmotionChangeV1), newest first
        (``after``: oldest first, forward)."""
        return ChangesPage.model_validate(await _page(ctx, known, stream_id, "changes", page))

    @router.get("/alerts")
    async def alerts(
        stream_id: StreamId, ctx: Context, known: KnownStream, page: Paging
    ) -> AlertsPage:
        """Alerts fired on the stream (AlertV1), newest first (``after``: oldest first), each
        with its webhook delivery."""
        doc = await _page(ctx, known, stream_id, "alerts", page)
        await _with_deliveries(ctx.rules(), doc["alerts"])
        return AlertsPage.model_validate(doc)

    return router


def _feeds(ctx: Any) -> FeedStore:
    store = ctx.store
    return FeedStore(store.redis, store.key_prefix, store.retention)


async def _with_deliveries(rules: RuleStore, alerts: list[dict[str, Any]]) -> None:
    """Each alert's ``delivery``: its entry in the rule's delivery log (the log's bounds)."""
    by_rule: dict[str, dict[str, dict[str, Any]]] = {}
    webhook: dict[str, bool] = {}
    for rule_id in {a["rule_id"] for a in alerts}:
        log = await rules.deliveries(rule_id, rules.retention.max_deliveries_per_rule)
        by_rule[rule_id] = {}
        for entry in reversed(log):  # newest last, so it wins
            by_rule[rule_id][entry.get("alert_id", "")] = entry
        rule = await rules.get(rule_id)
        webhook[rule_id] = bool(rule is not None and rule.webhook_url)
    for alert in alerts:
        entry = by_rule[alert["rule_id"]].get(alert["alert_id"])
        if entry is None:
            state = "pending" if webhook[alert["rule_id"]] else "none"
            alert["delivery"] = {
                "state": state,
                "attempts": 0,
                "status_code": None,
                "delivered_at": None,
            }
            continue
        delivered = bool(entry.get("delivered"))
        alert["delivery"] = {
            "state": "delivered" if delivered else "failed",
            "attempts": int(entry.get("attempts") or 0),
            "status_code": entry.get("status_code"),
            "delivered_at": entry.get("delivered_at"),
        }


async def _page(ctx: Any, known: Any, stream_id: str, kind: str, page: Page) -> dict[str, Any]:
    """One page of a stream's ``kind`` feed (404 for an unknown stream), as the response's dict."""
    await known(stream_id)
    limit, before, after = page
    feeds = _feeds(ctx)
    if after is not None:
        items, cursor = await feeds.page_after(stream_id, kind, limit, after)  # type: ignore[arg-type]
    else:
        items, cursor = await feeds.page(stream_id, kind, limit, before)  # type: ignore[arg-type]
    return {"stream_id": stream_id, kind: items, "count": len(items), "next_cursor": cursor}
