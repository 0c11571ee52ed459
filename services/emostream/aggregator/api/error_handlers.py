"""The API's answers to invalid input (a 422 that JSON can carry) and to Redis being away (503)."""

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisClusterException, RedisError


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(RedisError, redis_down)
    app.add_exception_handler(RedisClusterException, redis_down)  # no cluster node answers


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    # The default handler echoes the input, and JSON cannot carry NaN or Infinity, nor UTF-8 a
    # lone surrogate ("\\ud800" in a JSON body): either was a 500.
    return JSONResponse({"detail": _sendable(jsonable_encoder(exc.errors()))}, status_code=422)


async def redis_down(request: Request, exc: RedisError | RedisClusterException) -> JSONResponse:
    return JSONResponse(
        {"detail": "state store (Redis) unavailable, retry shortly"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


def _sendable(value: Any) -> Any:
    """``value`` with NaN and infinities as strings and strings UTF-8 can encode (a lone
    surrogate as its escape, ``\\ud800``), so that it can be sent as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_sendable(k): _sendable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sendable(v) for v in value]
    return value
