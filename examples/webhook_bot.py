"""A toy customer-service bot: receives emostream alerts by webhook and decides what to do.

    EMOSTREAM_ALERTS__WEBHOOK_SECRET=whsec_... python examples/webhook_bot.py --port 8080

Then, with the aggregator running with the same secret, create a rule that calls it:

    curl -X POST localhost:8000/v1/rules -H 'X-API-Key: <admin key>' \\
      -H 'Content-Type: application/json' -d '{"kind": "probability_above",
      "name": "upset customer", "emotions": ["angry", "disgust", "sad"], "threshold": 0.6,
      "for_seconds": 3, "webhook_url": "http://127.0.0.1:8080/alerts"}'

Requests whose Standard Webhooks signature does not verify (wrong secret, tampered body,
timestamp older than 5 minutes, headers missing) get 401. Standard library only, besides the
emostream package for the verifier (``standardwebhooks.Webhook(secret).verify`` does the same).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from emostream.webhooks import DEFAULT_TOLERANCE_S, verify

UPSET = {"angry", "disgust", "fear", "sad"}
MAX_BODY_BYTES = 1 << 20


def reply_for(alert: dict) -> str:
    """What the bot says about one alert."""
    summary = alert.get("summary") or {}
    stream = alert.get("stream_id")
    mood = summary.get("to_label") or summary.get("label")
    emotions = set(summary.get("emotions") or [mood])
    if emotions & UPSET:
        return f"Customer on stream {stream} seems upset; escalating to a human"
    return f"Customer on stream {stream} seems {mood}; no action needed"


class BotServer(ThreadingHTTPServer):
    """The bot's HTTP server; ``received`` keeps (alert, raw body, headers) of accepted alerts."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], secret: str, tolerance_s: float = DEFAULT_TOLERANCE_S
    ) -> None:
        super().__init__(address, BotHandler)
        self.secret = secret
        self.tolerance_s = tolerance_s
        self.received: list[tuple[dict, bytes, dict[str, str]]] = []
        self.rejected = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def accept(self, alert: dict, body: bytes, headers: dict[str, str]) -> bool:
        """Record an alert; False if its id was seen before (a retried delivery)."""
        with self._lock:
            if alert.get("alert_id") in self._seen:
                return False
            self._seen.add(alert.get("alert_id"))
            self.received.append((alert, body, headers))
            return True


class BotHandler(BaseHTTPRequestHandler):
    server: BotServer

    def _answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(413, {"error": "body too large"})
            return
        body = self.rfile.read(length)
        if not verify(self.server.secret, self.headers, body, self.server.tolerance_s):
            with self.server._lock:
                self.server.rejected += 1
            self._answer(401, {"error": "bad or missing signature"})
            return
        try:
            alert = json.loads(body)
        except ValueError:
            self._answer(400, {"error": "body is not JSON"})
            return
        if not self.server.accept(alert, body, dict(self.headers.items())):
            self._answer(200, {"reply": "already handled"})
            return
        reply = reply_for(alert)
        print(reply, flush=True)
        self._answer(200, {"reply": reply})

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet access log
        pass


def make_server(secret: str, host: str = "127.0.0.1", port: int = 8080) -> BotServer:
    return BotServer((host, port), secret)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--secret",
        default=os.environ.get("EMOSTREAM_ALERTS__WEBHOOK_SECRET"),
        help="default: $EMOSTREAM_ALERTS__WEBHOOK_SECRET",
    )
    a = p.parse_args()
    if not a.secret:
        p.error("a secret is required (--secret or EMOSTREAM_ALERTS__WEBHOOK_SECRET)")
    server = make_server(a.secret, a.host, a.port)
    print(f"webhook bot listening on http://{a.host}:{a.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
