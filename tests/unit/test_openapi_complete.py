"""The aggregator's OpenAPI document is complete (issue 36, 6): the API-key scheme, each route's
error statuses with the ``ErrorBody`` model, typed events, the live endpoints described; the
statuses are found from the routes' code, so a new ``raise HTTPException(...)`` is documented."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, HTTPException

from emostream.aggregator import create_app
from emostream.aggregator.api.deps import ReadScope
from emostream.aggregator.api.openapi_doc import install_openapi
from emostream.aggregator.state.store import EventStore
from emostream.settings import RedisOptions


def _teapot() -> None:
    raise HTTPException(418, detail="short and stout")


def test_statuses_raised_in_helpers_and_dependencies_are_documented():
    router = APIRouter()

    @router.get("/brew", dependencies=[ReadScope])
    async def brew(strength: int = 1) -> dict:
        _teapot()
        return {}

    app = FastAPI()
    app.include_router(router)
    install_openapi(app, "test")
    op = app.openapi()["paths"]["/brew"]["get"]
    assert {"401", "418", "421", "422"} <= set(op["responses"])
    assert "403" not in op["responses"]  # a read scope never answers 403
    assert op["security"] == [{"ApiKey": []}, {"Bearer": []}]
    body = op["responses"]["418"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ErrorBody"}


def test_aggregator_document_declares_keys_errors_events_and_live():
    doc = create_app(EventStore(RedisOptions())).openapi()
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        **doc["components"]["securitySchemes"]["ApiKey"],
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert doc["components"]["securitySchemes"]["Bearer"]["scheme"] == "bearer"
    rules = doc["paths"]["/v1/rules"]
    assert {"401", "403", "409", "413", "422", "503"} <= set(rules["post"]["responses"])
    assert {"401", "422", "429", "503"} <= set(rules["get"]["responses"])
    assert "security" not in doc["paths"]["/healthz"]["get"]
    events = doc["components"]["schemas"]["RecentEvents"]["properties"]["events"]
    assert events["items"] == {"$ref": "#/components/schemas/EmotionEventV1"}
    assert "EmotionEventV1" in doc["components"]["schemas"]
    assert "text/event-stream" in doc["paths"]["/v1/live/sse"]["get"]["responses"]["200"]["content"]
    assert "WebSocket /v1/live" in doc["info"]["description"]


def test_ingest_document_declares_the_key_the_image_body_and_every_status():
    from pydantic import SecretStr

    from emostream.config import IngestOptions
    from emostream.ingest.http_app import create_ingest_app

    class Publisher:
        max_message_bytes = 1_048_576
        run_id = "r"

    app = create_ingest_app(Publisher(), IngestOptions(api_keys=[SecretStr("k" * 20)]))
    doc = app.openapi()
    op = doc["paths"]["/v1/streams/{stream_id}/frames"]["post"]
    assert op["security"] == [{"ApiKey": []}]
    assert set(op["requestBody"]["content"]) == {"image/jpeg", "image/png"}
    assert {"401", "413", "415", "421", "422", "429", "503", "504"} <= set(op["responses"])
    assert doc["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert "/v1/streams/{stream_id}/ingest" in doc["info"]["description"]


async def test_a_bearer_token_is_the_same_key():
    import httpx
    from pydantic import SecretStr

    app = create_app(
        EventStore(RedisOptions()), read_keys=[SecretStr("rk")], admin_keys=[SecretStr("ak")]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:

        async def post(headers: dict) -> int:
            return (await c.post("/v1/rules", json={"kind": "x"}, headers=headers)).status_code

        assert await post({}) == 401
        assert await post({"Authorization": "Bearer wrong"}) == 401
        assert await post({"Authorization": "Basic rk"}) == 401
        assert await post({"Authorization": "Bearer rk"}) == 403  # a read key: known, no scope
        assert await post({"Authorization": "bearer ak"}) == 422  # admin: on to the body check
        assert await post({"X-API-Key": "rk", "Authorization": "Bearer ak"}) == 403  # X-API-Key
