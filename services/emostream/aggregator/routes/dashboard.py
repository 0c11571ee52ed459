"""The dashboard page (no data in it: its script reads the API with a read key)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from emostream.aggregator.dashboard_policy import dashboard_csp

DASHBOARD = Path(__file__).parents[1] / "static" / "dashboard.html"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard")


@router.get("/dashboard")
async def dashboard() -> HTMLResponse:
    """Live per-stream timelines and current tracks; no images. Data needs a read key."""
    page = DASHBOARD.read_text()
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": dashboard_csp(page),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
