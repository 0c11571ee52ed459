"""Keep API keys out of logs: uvicorn logs every WebSocket handshake with its query string."""

from __future__ import annotations

import logging
import re

_LIVE_QUERY = re.compile(r"(/v1/live(?:/sse)?)\?[^\s\"']*")
_API_KEY = re.compile(r"(api_key=)[^&\s\"']*", re.I)
LOGGERS = ("uvicorn.error", "uvicorn.access", "uvicorn")


def redact(text: str) -> str:
    return _API_KEY.sub(r"\1***", _LIVE_QUERY.sub(r"\1?***", text))


class RedactApiKeys(logging.Filter):
    """Rewrites a record's message and arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install() -> None:
    """Idempotent: one filter on each uvicorn logger."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactApiKeys) for f in logger.filters):
            logger.addFilter(RedactApiKeys())
