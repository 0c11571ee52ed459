"""The dashboard: one page for every view (its script reads the URL) and its static files.

No data is in the page: its scripts read the API with a read key. The static files are a fixed
list from the package (no directory listing, no path outside it).
"""

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from emostream.aggregator.api.dashboard_policy import dashboard_csp
from emostream.aggregator.api.deps import StreamId

STATIC = Path(__file__).parents[2] / "static"
DASHBOARD = STATIC / "dashboard.html"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    "": "text/plain; charset=utf-8",  # the vendored licence
}
SERVED = {
    str(p.relative_to(STATIC)): p
    for p in sorted(STATIC.rglob("*"))
    if p.is_file() and p.suffix in TYPES and p.name != "dashboard.html"
}
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard")


def _page() -> HTMLResponse:
    return HTMLResponse(
        DASHBOARD.read_text(),
        headers={"Content-Security-Policy": dashboard_csp(), "Cache-Control": "no-cache"} | HEADERS,
    )


@router.get("/dashboard")
async def dashboard() -> HTMLResponse:
    """Overview: a card per stream, those needing attention first. Data needs a read key."""
    return _page()


@router.get("/dashboard/streams/{stream_id}")
async def stream_page(stream_id: StreamId) -> HTMLResponse:
    """One stream: faces, rolling windows, changes, alerts, sessions (a link to share)."""
    return _page()


@router.get("/dashboard/rules")
async def rules_page() -> HTMLResponse:
    """Rules: list, create, delete (admin key), deliveries."""
    return _page()


@router.get("/dashboard/static/{path:path}")
async def static_file(path: str) -> Response:
    found = SERVED.get(path)
    if found is None:
        raise HTTPException(404, detail="not found")
    return Response(
        found.read_bytes(),
        media_type=TYPES[found.suffix],
        headers={"Cache-Control": "no-cache"} | HEADERS,
    )
