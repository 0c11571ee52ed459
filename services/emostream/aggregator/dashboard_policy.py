"""The dashboard's Content-Security-Policy: only its own inline script and style, by hash.

Nothing else runs or loads: no other scripts, no inline handlers or style attributes, no
frames, forms or other origins. Even if an event field slipped into the page as markup, it
could not run code or send the API key anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache


def _hashes(page: str, tag: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.S)
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks
    )


@lru_cache(maxsize=4)
def dashboard_csp(page: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_hashes(page, 'script')}",
            f"style-src {_hashes(page, 'style')}",
            "connect-src 'self'",
            "img-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
