"""Rules over HTTP: admin keys create and delete rules; read keys list them and their deliveries."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response
from fastapi.params import Depends

from emostream.aggregator.rules.model import RULE_ID_PATTERN, Rule, RuleSpec, new_rule
from emostream.aggregator.rules.store import MAX_RULES, RuleStore
from emostream.aggregator.webhooks.urls import masked_url

RuleId = Annotated[str, Path(pattern=RULE_ID_PATTERN, description="Rule id (32 hex digits)")]
ApiKey = Annotated[str | None, Header(include_in_schema=False)]


def rules_router(
    rules: RuleStore,
    read: Depends,
    admin: Depends,
    webhooks_enabled: bool,
    max_deliveries: int,
    is_admin: Callable[[str | None], bool] = lambda key: True,
) -> APIRouter:
    """``is_admin(key)``: callers without admin scope see webhook URLs without credentials."""
    router = APIRouter(prefix="/v1/rules", tags=["rules"])

    def shown(doc: dict, key: str | None) -> dict:
        if doc.get("webhook_url") and not is_admin(key):
            doc = doc | {"webhook_url": masked_url(doc["webhook_url"])}
        if doc.get("url") and not is_admin(key):
            doc = doc | {"url": masked_url(doc["url"])}
        return doc

    async def _get(rule_id: str):
        found = await rules.get(rule_id)
        if found is None:
            raise HTTPException(404, detail=f"unknown rule {rule_id!r}")
        return found

    @router.post("", status_code=201, response_model=Rule, dependencies=[admin])
    async def create_rule(spec: RuleSpec):
        """Create a rule (admin). Alerts go to the alerts topic and, if set, to ``webhook_url``."""
        if spec.webhook_url and not webhooks_enabled:
            raise HTTPException(
                400,
                detail="webhook_url needs a signing secret on the aggregator: "
                "set EMOSTREAM_ALERTS__WEBHOOK_SECRET",
            )
        if await rules.count() >= MAX_RULES:
            raise HTTPException(409, detail=f"at most {MAX_RULES} rules; delete some first")
        rule = new_rule(spec)
        await rules.create(rule)
        return rule

    @router.get("", dependencies=[read])
    async def list_rules(x_api_key: ApiKey = None) -> dict:
        items = await rules.list()
        return {
            "rules": [shown(r.model_dump(mode="json"), x_api_key) for r in items],
            "count": len(items),
        }

    @router.get("/{rule_id}", response_model=Rule, dependencies=[read])
    async def get_rule(rule_id: RuleId, x_api_key: ApiKey = None):
        rule = await _get(rule_id)
        if rule.webhook_url and not is_admin(x_api_key):
            return rule.model_copy(update={"webhook_url": masked_url(rule.webhook_url)})
        return rule

    @router.delete("/{rule_id}", status_code=204, dependencies=[admin])
    async def delete_rule(rule_id: RuleId) -> Response:
        if not await rules.delete(rule_id):
            raise HTTPException(404, detail=f"unknown rule {rule_id!r}")
        return Response(status_code=204)

    @router.get("/{rule_id}/deliveries", dependencies=[read])
    async def deliveries(
        rule_id: RuleId,
        limit: Annotated[int, Query(ge=1, le=max_deliveries)] = 50,
        x_api_key: ApiKey = None,
    ) -> dict:
        """Newest-first webhook deliveries: alert id, attempts, status or error, delivered_at."""
        await _get(rule_id)
        items = [shown(d, x_api_key) for d in await rules.deliveries(rule_id, limit)]
        return {"rule_id": rule_id, "deliveries": items, "count": len(items)}

    return router
