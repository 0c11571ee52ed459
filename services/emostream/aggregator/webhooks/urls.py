"""Webhook URLs, parsed exactly as the sender (httpx) will parse them when it posts.

Rules are validated with this at creation, so a URL the sender cannot use (an invalid IDNA
host, a control character, a broken port) is a 422 for the rule's author instead of an
exception in a webhook sender.
"""

from __future__ import annotations

import httpx


def parse_webhook_url(url: str) -> httpx.URL:
    """The URL as httpx sends it.

    Args:
        url: An absolute ``http://`` or ``https://`` URL.

    Returns:
        The parsed ``httpx.URL``.

    Raises:
        ValueError: With a one-line reason when httpx cannot parse it (``httpx.InvalidURL``,
            IDNA and Unicode errors alike) or it is not an absolute http(s) URL with a host.
    """
    try:
        parsed = httpx.URL(url)
        host = parsed.host  # decoded lazily: an invalid A-label ("xn--zz") only fails here
        httpx.Request("POST", parsed)  # what the client builds before it connects
    except Exception as exc:  # noqa: BLE001 - InvalidURL, idna.IDNAError, UnicodeError, ...
        reason = f"webhook_url cannot be parsed: {type(exc).__name__}: {exc}"[:300]
        raise ValueError(reason) from None
    if parsed.scheme not in ("http", "https") or not host:
        raise ValueError("webhook_url must be an absolute http:// or https:// URL")
    return parsed


def masked_url(url: str) -> str:
    """``url`` with its credentials (user info) and query string replaced by ``***``."""
    try:
        parsed = httpx.URL(url)
    except Exception:  # noqa: BLE001 - stored before validation: show nothing of it
        return "***"
    if parsed.userinfo:
        parsed = parsed.copy_with(username="***", password=None)
    if parsed.query:
        parsed = parsed.copy_with(query=b"***")
    return str(parsed)
