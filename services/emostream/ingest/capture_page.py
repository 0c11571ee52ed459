"""``/capture``: a page that sends the camera to ingest and shows the pipeline's answer.

Static files, no build step, nothing external; the script is a file of its own so the page's
Content-Security-Policy allows no inline script at all. The aggregator's address comes from
``/capture/config.json`` (the page's only other origin, for its live feed).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import FileResponse


def _origins(url: str) -> str:
    """``http://h:p`` -> ``http://h:p ws://h:p`` (https -> wss): what connect-src must allow."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    ws = "wss" if parts.scheme == "https" else "ws"
    return f"{parts.scheme}://{parts.netloc} {ws}://{parts.netloc}"


def capture_csp(aggregator_url: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"connect-src 'self' {_origins(aggregator_url)}".rstrip(),
            "img-src 'self' blob: data:",
            "media-src 'self' blob: mediastream:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def capture_routes(static: Path, aggregator_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    headers = {
        "Content-Security-Policy": capture_csp(aggregator_url),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }

    @router.get("/capture")
    async def page() -> FileResponse:
        return FileResponse(static / "capture.html", media_type="text/html", headers=headers)

    @router.get("/capture.js")
    async def script() -> FileResponse:
        return FileResponse(static / "capture.js", media_type="text/javascript", headers=headers)

    @router.get("/capture.css")
    async def style() -> FileResponse:
        return FileResponse(static / "capture.css", media_type="text/css", headers=headers)

    @router.get("/capture/config.json")
    async def config() -> dict:
        return {"aggregator_url": aggregator_url.rstrip("/")}

    return router
