"""Rules over HTTP: admin keys create and delete rules; read keys list them and their deliveries."""

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response

from emostream.aggregator.api.deps import (
    AdminScope,
    ApiContext,
    Context,
    PresentedKey,
    ReadBudgetScope,
    ReadScope,
)
from emostream.aggregator.api.responses import Deliveries, RuleList
from emostream.aggregator.rules.idempotency import (
    IDEMPOTENCY_KEY_PATTERN,
    IdempotencyConflict,
    RuleIdempotency,
)
from emostream.aggregator.rules.model import RULE_ID_PATTERN, Rule, RuleSpec, new_rule
from emostream.aggregator.rules.store import MAX_RULES, RuleStore
from emostream.aggregator.webhooks.urls import masked_url

RuleId = Annotated[str, Path(pattern=RULE_ID_PATTERN, description="Rule id (32 hex digits)")]
ApiKey = PresentedKey  # X-API-Key or a bearer token
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Retry-safe creation: the same key and body within 24 h give the same rule "
        "(201, Idempotent-Replayed: true); the same key with another body gets 422",
    ),
]


def rules_router(max_deliveries: int) -> APIRouter:
    """``max_deliveries``: the largest ``limit`` of a rule's delivery log (the entries kept)."""
    router = APIRouter(prefix="/v1/rules", tags=["rules"])
    router.add_api_route(
        "",
        create_rule,
        methods=["POST"],
        status_code=201,
        response_model=Rule,
        dependencies=[AdminScope],
    )
    router.add_api_route("", list_rules, methods=["GET"], dependencies=[ReadScope, ReadBudgetScope])
    router.add_api_route(
        "/{rule_id}",
        get_rule,
        methods=["GET"],
        response_model=Rule,
        dependencies=[ReadScope, ReadBudgetScope],
    )
    router.add_api_route(
        "/{rule_id}",
        delete_rule,
        methods=["DELETE"],
        status_code=204,
        dependencies=[AdminScope],
    )

    @router.get("/{rule_id}/deliveries", dependencies=[ReadScope, ReadBudgetScope])
    async def deliveries(
        rule_id: RuleId,
        ctx: Context,
        limit: Annotated[int, Query(ge=1, le=max_deliveries)] = 50,
        x_api_key: ApiKey = None,
    ) -> Deliveries:
        """Newest-first webhook deliveries: alert id, attempts, status or error, delivered_at."""
        rules = ctx.rules()
        await _get(ctx, rule_id)
        items = [_shown(ctx, d, x_api_key) for d in await rules.deliveries(rule_id, limit)]
        return Deliveries(rule_id=rule_id, deliveries=items, count=len(items))

    return router


def _shown(ctx: ApiContext, doc: dict, key: str | None) -> dict:
    """Callers without admin scope see webhook URLs without credentials."""
    if doc.get("webhook_url") and not ctx.is_admin(key):
        doc = doc | {"webhook_url": masked_url(doc["webhook_url"])}
    if doc.get("url") and not ctx.is_admin(key):
        doc = doc | {"url": masked_url(doc["url"])}
    return doc


async def _get(ctx: ApiContext, rule_id: str) -> Rule:
    found = await ctx.rules().get(rule_id)
    if found is None:
        raise HTTPException(404, detail=f"unknown rule {rule_id!r}")
    return found


async def create_rule(
    spec: RuleSpec,
    ctx: Context,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    x_api_key: ApiKey = None,
) -> Rule:
    """Create a rule (admin). Alerts go to the alerts topic and, if set, to ``webhook_url``."""
    if spec.webhook_url and not ctx.webhooks_enabled:
        raise HTTPException(
            400,
            detail="webhook_url needs a signing secret on the aggregator: "
            "set EMOSTREAM_ALERTS__WEBHOOK_SECRET",
        )
    rules, rule = ctx.rules(), new_rule(spec)
    if idempotency_key is None:
        await _create(rules, rule)
        return rule
    keys = RuleIdempotency(ctx.store.redis, ctx.store.key_prefix)
    try:
        claim = await keys.claim(x_api_key, idempotency_key, spec, rule)
    except IdempotencyConflict:
        raise HTTPException(
            422, detail="this Idempotency-Key was used with a different request body"
        ) from None
    if claim.replayed:
        response.headers["Idempotent-Replayed"] = "true"
        return claim.rule
    try:
        await _create(rules, rule)
    except Exception:
        await keys.release(x_api_key, idempotency_key)  # not created: a retry may try again
        raise
    return rule


async def _create(rules: RuleStore, rule: Rule) -> None:
    if await rules.count() >= MAX_RULES:
        raise HTTPException(409, detail=f"at most {MAX_RULES} rules; delete some first")
    await rules.create(rule)


async def list_rules(ctx: Context, x_api_key: ApiKey = None) -> RuleList:
    shown = [_masked(ctx, r, x_api_key) for r in await ctx.rules().list()]
    return RuleList(rules=shown, count=len(shown))


async def get_rule(rule_id: RuleId, ctx: Context, x_api_key: ApiKey = None) -> Rule:
    return _masked(ctx, await _get(ctx, rule_id), x_api_key)


def _masked(ctx: ApiContext, rule: Rule, key: str | None) -> Rule:
    """Callers without admin scope see the rule's webhook URL without credentials."""
    if rule.webhook_url and not ctx.is_admin(key):
        return rule.model_copy(update={"webhook_url": masked_url(rule.webhook_url)})
    return rule


async def delete_rule(rule_id: RuleId, ctx: Context) -> Response:
    if not await ctx.rules().delete(rule_id):
        raise HTTPException(404, detail=f"unknown rule {rule_id!r}")
    return Response(status_code=204)
