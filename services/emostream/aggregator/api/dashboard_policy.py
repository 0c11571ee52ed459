"""The dashboard's Content-Security-Policy: its own files only, from this origin.

Scripts and style sheets load from ``/dashboard/static`` (this origin); there is no inline
script, no inline handler and no style attribute in the markup (scripts set styles through the
CSSOM, which the policy allows). Nothing loads from or connects to another origin, and no form
posts anywhere: even if an event field slipped into the page as markup, it could not run code
or send the API key elsewhere.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def dashboard_csp() -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "img-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
