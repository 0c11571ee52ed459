"""The dashboard loads each stream's recent history before live events (its script run in Node
against a stub DOM, fetch and WebSocket); live events it already has are not counted twice."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

PAGE = (
    Path(__file__).resolve().parents[2]
    / "services"
    / "emostream"
    / "aggregator"
    / "static"
    / "dashboard.html"
)
NODE = shutil.which("node")

HARNESS = r"""
const script = require("fs").readFileSync(0, "utf8");
const [history, live] = JSON.parse(process.argv[1]);
function stub() {
  const target = function () { return stub(); };
  return new Proxy(target, {
    get(t, k) {
      if (k === Symbol.toPrimitive) return () => "";
      if (k === Symbol.iterator) return undefined;
      if (!(k in t)) t[k] = stub();
      return t[k];
    },
    set(t, k, v) { t[k] = v; return true; },
    apply() { return stub(); },
  });
}
const elements = {};
const document = {
  getElementById: id => (elements[id] ||= stub()),
  createElement: () => stub(),
};
const requested = [];
async function fetch(url) {
  requested.push(url);
  if (url === "/v1/streams") {
    return {ok: true, json: async () => ({streams: [{stream_id: "cam-1"}]})};
  }
  if (url.startsWith("/v1/streams/cam-1/events")) {
    return {ok: true, json: async () => ({events: history})};
  }
  return {ok: false, status: 404, json: async () => ({})};
}
let socket = null;
class WebSocket { constructor(url) { socket = this; this.url = url; } send() {} close() {} }
const localStorage = {getItem: () => null, setItem() {}};
const run = new Function("document", "fetch", "WebSocket", "localStorage", "setInterval",
                         "setTimeout", "location", script + "\n;return {state};");
const pageLocation = {protocol: "http:", host: "h"};
const {state} = run(document, fetch, WebSocket, localStorage, () => 0, () => 0, pageLocation);
setTimeout(() => {
  const afterLoad = state["cam-1"] ? state["cam-1"].total : 0;
  for (const ev of live) socket.onmessage({data: JSON.stringify(ev)});
  console.log(JSON.stringify({afterLoad, afterLive: state["cam-1"].total, requested,
                              labels: state["cam-1"].points.map(p => p.label)}));
}, 100);
"""


def event(event_id: str, ago_s: float, label: str) -> dict:
    at = (datetime.now(UTC) - timedelta(seconds=ago_s)).isoformat()
    return {
        "event_id": event_id,
        "stream_id": "cam-1",
        "captured_at": at,
        "face": {"index": 0, "track_id": "cam-1-0"},
        "emotion": {"label": label, "confidence": 0.9},
        "smoothed": {"label": label, "stable_for_s": 1.0},
    }


@pytest.mark.skipif(NODE is None, reason="node not installed")
def test_history_first_then_live_without_double_counting():
    script = re.search(r"<script>(.*?)</script>", PAGE.read_text(), re.S).group(1)
    history = [
        event("e3", 1, "happy"),
        event("e2", 2, "sad"),
        event("e1", 3, "sad"),
    ]  # newest first
    live = [event("e3", 1, "happy"), event("e4", 0, "angry")]  # e3 is both history and live
    done = subprocess.run(
        [NODE, "-e", HARNESS, json.dumps([history, live])],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert any(u.startswith("/v1/streams/cam-1/events?limit=") for u in result["requested"])
    assert result["afterLoad"] == 3, "the page starts with the stream's recent events"
    assert result["afterLive"] == 4, "an event already loaded is not counted again"
    assert result["labels"] == ["sad", "sad", "happy", "angry"], "oldest first on the timeline"
