"""Headless Chromium for the dashboard tests and the dashboard benchmark: the driver, its console
errors and every request it made (from Chrome's performance log: HTTP and WebSocket)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from emostream.bench.browser import missing_browser, start_chromium


@contextmanager
def chromium(monkeypatch, size: tuple[int, int]) -> Iterator[Any]:
    """A headless Chromium with the viewport pinned to ``size``; skips the test without one."""
    missing = missing_browser()
    if missing:
        pytest.skip(f"{' and '.join(missing)} missing (apt-get install chromium chromium-driver)")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser
    driver = start_chromium(size)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver) -> list[str]:
    """Every URL the browser requested since the last call (HTTP and WebSocket)."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
        elif msg["method"] == "Network.webSocketCreated":
            urls.append(msg["params"]["url"])
    return urls


def offsite_requests(driver, base: str) -> list[str]:
    """Requested URLs whose host and port are not ``base``'s (about:blank and data: aside)."""
    origin = urlsplit(base)
    out = []
    for url in requested_urls(driver):
        parts = urlsplit(url)
        if parts.scheme in ("about", "data", "blob"):
            continue
        if (parts.hostname, parts.port) != (origin.hostname, origin.port):
            out.append(url)
    return out


def console_errors(logs: list[dict], allowed: dict[str, str] | None = None) -> list[dict]:
    """SEVERE console entries, except a stage's expected HTTP status (``{stage: "401"}``)."""
    allowed = allowed or {}
    out = []
    for e in logs:
        if e["level"] != "SEVERE":
            continue
        status = allowed.get(e.get("stage", ""))
        if status and f"status of {status}" in e["message"]:
            continue
        out.append(e)
    return out
