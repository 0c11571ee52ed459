"""``/healthz``: Redis answers, the consumer has partitions, the webhook senders are alive."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from emostream.aggregator.api.deps import Context
from emostream.aggregator.api.responses import Health

router = APIRouter()


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(ctx: Context) -> JSONResponse:
    """200 when ok; 503 (degraded) while Redis is away or a webhook sender died."""
    redis_ok = await ctx.store.ping()
    consuming = ctx.consumer is None or ctx.consumer.assigned
    webhooks = getattr(ctx.consumer, "webhooks", None)
    senders = webhooks.health() if webhooks is not None else {"ok": True}
    ok = redis_ok and senders["ok"]
    body = Health(
        status="ok" if ok else "degraded", redis=redis_ok, consuming=consuming, webhooks=senders
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
