"""The camera registry over HTTP (issue 35): admin keys add, change and remove cameras; read keys
list them with the status their fleet ingest reports.

Cameras live in the compacted cameras topic (``emostream.cameras.topic``), which the fleet
ingests share through a consumer group; this API writes it and keeps a view of it. Status comes
from Redis, where the ingest running a camera refreshes it (None: no ingest runs it now).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from starlette.requests import HTTPConnection

from emostream.aggregator.api.deps import (
    AdminScope,
    ApiKeyHeader,
    Context,
    ReadBudgetScope,
    ReadScope,
)
from emostream.aggregator.webhooks.urls import masked_url
from emostream.cameras.model import (
    CameraPatch,
    CameraSpec,
    SourceRejected,
    check_source,
    patched,
)
from emostream.cameras.status import read_statuses
from emostream.cameras.topic import CameraLog
from emostream.fleet_options import FleetOptions
from emostream.frames import STREAM_ID_PATTERN

CameraId = Annotated[str, Path(pattern=STREAM_ID_PATTERN, description="The camera's stream id")]
router = APIRouter(prefix="/v1/cameras", tags=["cameras"])


def _registry(conn: HTTPConnection) -> tuple[CameraLog, FleetOptions]:
    log: CameraLog | None = getattr(conn.app.state, "cameras", None)
    if log is None:
        raise HTTPException(404, detail="this aggregator runs no camera registry")
    if not log.ready.is_set():
        raise HTTPException(
            503, detail="camera registry still loading, retry shortly", headers={"Retry-After": "2"}
        )
    return log, log.fleet


def _checked(source: str, fleet: FleetOptions) -> None:
    try:
        check_source(source, fleet)
    except SourceRejected as exc:
        detail = [{"type": "value_error", "loc": ["body", "source"], "msg": str(exc)}]
        raise HTTPException(422, detail=detail) from exc


def _shown(spec: CameraSpec, status: dict | None, admin: bool) -> dict[str, Any]:
    doc = spec.model_dump()
    if not admin and "://" in spec.source:
        doc["source"] = masked_url(spec.source)  # RTSP credentials stay with admins
    return doc | {"status": status}


def _found(log: CameraLog, stream_id: str) -> CameraSpec:
    spec = log.cameras.get(stream_id)
    if spec is None:
        raise HTTPException(404, detail=f"unknown camera {stream_id!r}")
    return spec


@router.post("", status_code=201, dependencies=[AdminScope])
async def add_camera(spec: CameraSpec, conn: HTTPConnection, ctx: Context) -> dict:
    """Register a camera; a fleet ingest starts it within seconds (see its status)."""
    log, fleet = _registry(conn)
    _checked(spec.source, fleet)
    if spec.stream_id in log.cameras:
        raise HTTPException(409, detail=f"camera {spec.stream_id!r} exists: PATCH or DELETE it")
    if len(log.cameras) >= fleet.max_cameras:
        raise HTTPException(409, detail=f"at most {fleet.max_cameras} cameras")
    await log.put(spec)
    return _shown(spec, None, True)


@router.get("", dependencies=[ReadScope, ReadBudgetScope])
async def list_cameras(conn: HTTPConnection, ctx: Context, x_api_key: ApiKeyHeader = None) -> dict:
    """Every camera, sorted by stream id, with its status (null: no ingest reports it now)."""
    if getattr(conn.app.state, "cameras", None) is None:  # no registry here: no camera
        return {"cameras": [], "count": 0}
    log, _ = _registry(conn)
    specs = sorted(log.cameras.values(), key=lambda s: s.stream_id)
    statuses = await read_statuses(
        ctx.store.redis, ctx.store.key_prefix, [s.stream_id for s in specs]
    )
    admin = ctx.is_admin(x_api_key)
    shown = [_shown(s, statuses.get(s.stream_id), admin) for s in specs]
    return {"cameras": shown, "count": len(shown)}


@router.get("/{stream_id}", dependencies=[ReadScope, ReadBudgetScope])
async def get_camera(
    stream_id: CameraId, conn: HTTPConnection, ctx: Context, x_api_key: ApiKeyHeader = None
) -> dict:
    log, _ = _registry(conn)
    spec = _found(log, stream_id)
    statuses = await read_statuses(ctx.store.redis, ctx.store.key_prefix, [stream_id])
    return _shown(spec, statuses.get(stream_id), ctx.is_admin(x_api_key))


@router.patch("/{stream_id}", dependencies=[AdminScope])
async def change_camera(
    stream_id: CameraId, patch: CameraPatch, conn: HTTPConnection, ctx: Context
) -> dict:
    """Change a camera's source or settings; its ingest applies them within seconds."""
    log, fleet = _registry(conn)
    spec = patched(_found(log, stream_id), patch)
    _checked(spec.source, fleet)
    await log.put(spec)
    return _shown(spec, None, True)


@router.delete("/{stream_id}", status_code=204, dependencies=[AdminScope])
async def delete_camera(stream_id: CameraId, conn: HTTPConnection) -> Response:
    """Remove a camera; its ingest stops it within seconds."""
    log, _ = _registry(conn)
    _found(log, stream_id)
    await log.delete(stream_id)
    return Response(status_code=204)
