"""The dashboard's page logic (static/js, ES modules without DOM access) run in Node: history then
live without double counting, attention order, the redraw cap, bounded memory, the rule form's
error placement and a session's timeline."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "services" / "emostream" / "aggregator" / "static" / "js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node not installed")


def run_js(body: str, *args) -> dict:
    """``body`` runs with ``m`` (model.js), ``rules`` and ``feeds`` imported and ``args``;
    it prints one JSON line. The modules are copied next to a ``package.json`` that marks them
    as ES modules (Node before 20.10 has no flag for that)."""
    with tempfile.TemporaryDirectory() as tmp:
        for f in JS.glob("*.js"):
            shutil.copy(f, tmp)
        (Path(tmp) / "package.json").write_text('{"type": "module"}')
        prelude = (
            "const [m, rules, feeds] = await Promise.all("
            "['model.js', 'rules.js', 'feeds.js']"
            f".map(f => import({json.dumps(Path(tmp).as_uri())} + '/' + f)));"
            "const args = JSON.parse(process.argv[process.argv.length - 1]);"
        )
        done = subprocess.run(
            [NODE, "--input-type=module", "-", json.dumps(args)],
            input=prelude + body,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def event(event_id: str, ago_s: float, label: str, stream: str = "cam-1", **smoothed) -> dict:
    at = (datetime.now(UTC) - timedelta(seconds=ago_s)).isoformat()
    return {
        "event_id": event_id,
        "stream_id": stream,
        "frame_seq": int(event_id.strip("e") or 0),
        "captured_at": at,
        "latency_ms": 120,
        "face": {"index": 0, "track_id": f"{stream}-0"},
        "emotion": {"label": label, "confidence": 0.9},
        "smoothed": {"label": label, "stable_for_s": 1.0, **smoothed},
    }


def test_history_first_then_live_without_double_counting():
    history = [event("e3", 1, "happy"), event("e2", 2, "sad"), event("e1", 3, "sad")]
    live = [event("e3", 1, "happy"), event("e4", 0, "angry")]  # e3 is both history and live
    out = run_js(
        """
        const model = new m.Model();
        for (const ev of [...args[0]].reverse()) model.apply("event", ev);
        const afterLoad = model.stream("cam-1").total;
        const changed = args[1].map(ev => model.apply("event", ev));
        const s = model.stream("cam-1");
        console.log(JSON.stringify({afterLoad, changed, total: s.total,
          labels: s.points.map(p => p.label), face: s.faces.get("cam-1-0").emotion.label,
          latency: s.latencyMs}));
        """,
        history,
        live,
    )
    assert out["afterLoad"] == 3, "the page starts with the stream's recent events"
    assert out["changed"] == [False, True] and out["total"] == 4, "no event counted twice"
    assert out["labels"] == ["sad", "sad", "happy", "angry"], "oldest first on the timeline"
    assert out["face"] == "angry" and out["latency"] == 120


def test_streams_needing_attention_come_first():
    now = datetime.now(UTC)
    alert = {"alert_id": "a1", "stream_id": "alerted", "fired_at": now.isoformat()}
    events = [
        event("e1", 0, "happy", stream="calm"),
        event("e2", 1, "sad", stream="sad-long", stable_for_s=120.0),
        event("e3", 2, "happy", stream="alerted"),
    ]
    out = run_js(
        """
        const model = new m.Model();
        for (const ev of args[0]) model.apply("event", ev);
        model.apply("alert", args[1]);
        const now = Date.now();
        console.log(JSON.stringify({order: model.ordered(now).map(s => s.id),
          why: model.stream("sad-long").attention(now).map(r => r.text)}));
        """,
        events,
        alert,
    )
    assert out["order"] == ["alerted", "sad-long", "calm"]
    assert out["why"] == ["cam-1-0: sad for 120 s".replace("cam-1", "sad-long")]


def test_redraws_are_capped_at_ten_a_second_however_fast_events_come():
    out = run_js(
        """
        let draws = 0;
        const r = new m.Redraw(() => { draws += 1; }, 10);
        const start = Date.now();
        let requests = 0;
        await new Promise(done => {
          const spin = () => {
            for (let i = 0; i < 50; i++) { r.request(); requests += 1; }
            if (Date.now() - start < 2000) setImmediate(spin); else setTimeout(done, 150);
          };
          spin();
        });
        console.log(JSON.stringify({draws, requests}));
        """
    )
    assert out["requests"] > 10_000
    assert 15 <= out["draws"] <= 22  # 2 s at most 10/s, plus the last pending one


def test_a_stream_model_stays_bounded_over_ten_minutes_of_events():
    out = run_js(
        """
        const model = new m.Model();
        const t0 = Date.now() - 600e3;
        let n = 0;
        for (let f = 0; f < 600 * 15; f++) {            // 10 min at 15 fps, 4 faces
          for (let face = 0; face < 4; face++) {
            const at = new Date(t0 + f * (1000 / 15)).toISOString();
            model.apply("event", {event_id: `e${n++}`, stream_id: "s", frame_seq: f,
              captured_at: at, latency_ms: 5, face: {index: face, track_id: `t${face}`},
              emotion: {label: "happy", confidence: 1}, smoothed: null});
          }
          if (f % 15 === 0) model.apply("change", {event_id: `c${f}`, stream_id: "s",
            captured_at: new Date(t0 + f * (1000 / 15)).toISOString()});
        }
        const s = model.stream("s");
        console.log(JSON.stringify({points: s.points.length, frames: s.frames.length,
          faces: s.faces.size, changes: s.changes.length, ids: model.dedupe.ids.size,
          fps: s.fps(), timeline: s.timeline(Date.now()).filter(Boolean).length}));
        """
    )
    assert out["points"] <= 4000 and out["frames"] <= 5 * 15 + 1
    assert out["faces"] == 4 and out["changes"] <= 200 and out["ids"] <= 5000
    assert 14 <= out["fps"] <= 16
    assert out["timeline"] >= 55  # one label per second of the last minute


def test_validation_errors_go_to_their_field():
    detail = [
        {"loc": ["body", "probability_above", "threshold"], "msg": "Input should be <= 1"},
        {"loc": ["body", "probability_above", "emotions", 0], "msg": "Input should be 'angry'"},
        {"loc": ["body"], "msg": "bad body"},
    ]
    out = run_js("console.log(JSON.stringify(rules.fieldErrors(args[0])));", detail)
    assert out == {
        "threshold": "Input should be <= 1",
        "emotions": "Input should be 'angry'",
        "": "bad body",
    }


def test_a_session_timeline_shows_each_tracks_stable_emotion_over_the_session():
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    at = lambda s: (start + timedelta(seconds=s)).isoformat()  # noqa: E731
    changes = [
        {"track_id": "t1", "captured_at": at(0), "to_label": "happy"},
        {"track_id": "t1", "captured_at": at(30), "to_label": "sad"},
        {"track_id": "t2", "captured_at": at(-7200), "to_label": "fear"},  # long before
    ]
    out = run_js(
        """
        const rows = feeds.sessionTimeline(args[0], Date.parse(args[1]), Date.parse(args[2]));
        console.log(JSON.stringify(rows));
        """,
        changes,
        at(0),
        at(60),
    )
    assert [r["track"] for r in out] == ["t1"]
    cells = out[0]["cells"]
    assert len(cells) == 60 and cells[:30] == ["happy"] * 30 and cells[30:] == ["sad"] * 30
