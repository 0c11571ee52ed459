"""`emostream bench dashboard`: the dashboard open in headless Chromium for minutes while synthetic
live events of several streams arrive; JS heap, DOM size and redraws per second over time.

Everything is local: a throwaway redis-server, the aggregator's API in this process (uvicorn on
127.0.0.1) and Chromium. Events go straight into the store (which publishes them to the live
channel), with a stable-emotion change every few seconds and an alert now and then per stream,
so the page gets every message type. Every ``sample_s`` the page's heap is read through the
DevTools protocol after a forced garbage collection (``HeapProfiler.collectGarbage``), so the
series shows retained memory, not garbage not yet collected.
"""

from __future__ import annotations

import asyncio
import json
import platform
import time
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from emostream.aggregator import create_app
from emostream.aggregator.feeds import FeedStore
from emostream.aggregator.state.store import EventStore
from emostream.bench import add_bench
from emostream.bench.browser import missing_browser, start_chromium
from emostream.labels import EMOTIONS
from emostream.local.servers import RedisServer, free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.schemas import AlertSummary, AlertV1, EmotionEventV1
from emostream.settings import RedisOptions

HELP = "the dashboard in headless Chromium under live load: JS heap and redraws over time"
MB = 1024 * 1024
CHANGE_EVERY_S = 4.0
ALERT_EVERY_S = 30.0
STATS_JS = "return Object.assign({}, window.emostreamStats || {});"


def register(subparsers) -> None:
    """Add `bench dashboard`."""
    b = add_bench(subparsers, "dashboard", run_bench_dashboard, HELP)
    b.add_argument("--minutes", type=float, default=10.0)
    b.add_argument("--streams", type=int, default=4)
    b.add_argument("--fps", type=float, default=15.0, help="per stream, one face per frame")
    b.add_argument("--sample-s", type=float, default=15.0)
    b.add_argument("--view", choices=["overview", "stream"], default="overview")


def _probs(label: str, p: float) -> dict[str, float]:
    rest = (1.0 - p) / (len(EMOTIONS) - 1)
    return {e: (p if e == label else rest) for e in EMOTIONS}


def synthetic_event(stream: str, seq: int, at: datetime, started: datetime) -> EmotionEventV1:
    """Frame ``seq`` of ``stream``: one face whose stable label moves on every few seconds."""
    phase = int((at - started).total_seconds() // CHANGE_EVERY_S)
    label = EMOTIONS[(phase + hash(stream)) % len(EMOTIONS)]
    since = started + timedelta(seconds=phase * CHANGE_EVERY_S)
    first_of_phase = (at - since).total_seconds() < 1e-9 or seq == 0
    probs = _probs(label, 0.7)
    return EmotionEventV1.model_validate(
        {
            "event_id": EmotionEventV1.make_id(stream, seq, 0, "bench"),
            "stream_id": stream,
            "frame_seq": seq,
            "captured_at": at,
            "processed_at": at,
            "latency_ms": 40,
            "face": {
                "index": 0,
                "box": {"x": 10, "y": 10, "w": 80, "h": 80},
                "detector_score": 0.9,
                "track_id": f"{stream}-0",
            },
            "emotion": {"label": label, "confidence": 0.7, "probabilities": probs},
            "smoothed": {
                "label": label,
                "confidence": 0.7,
                "probabilities": probs,
                "stable_for_s": round((at - since).total_seconds(), 3),
                "changed": first_of_phase,
            },
            "model": {"name": "bench", "version": "1", "trained": True},
        }
    )


def synthetic_alert(ev: EmotionEventV1) -> AlertV1:
    ms = int(ev.captured_at.timestamp() * 1000)
    return AlertV1(
        alert_id=AlertV1.make_id("b" * 32, ev.stream_id, "t", ms),
        rule_id="b" * 32,
        rule_name="bench rule",
        kind="stable_change",
        stream_id=ev.stream_id,
        track_id=ev.face.track_id or "t",
        episode_started_at=ev.captured_at,
        fired_at=ev.captured_at,
        event_id=ev.event_id,
        frame_seq=ev.frame_seq,
        summary=AlertSummary(
            source="smoothed",
            label=ev.emotion.label,
            confidence=0.7,
            probabilities=ev.emotion.probabilities,
        ),
    )


async def publish(store: EventStore, streams: list[str], fps: float, stop: asyncio.Event) -> int:
    """Frames for every stream at ``fps`` until ``stop``; returns the events stored."""
    feeds = FeedStore(store.redis, store.key_prefix, store.retention)
    started = datetime.now(UTC).replace(microsecond=0)
    period_s, seq, sent = 1.0 / fps, 0, 0
    next_at = time.monotonic()
    alert_every = max(1, int(ALERT_EVERY_S * fps))
    while not stop.is_set():
        at = started + timedelta(seconds=seq * period_s)
        events = [synthetic_event(s, seq, at, started) for s in streams]
        fresh = await store.add_new_events(events)
        await feeds.add_changes(fresh)
        if seq % alert_every == alert_every - 1:
            await feeds.add_alerts([synthetic_alert(ev) for ev in fresh])
        sent += len(fresh)
        seq += 1
        next_at += period_s
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return sent


def sample(driver) -> dict:
    """Retained JS heap (after a forced GC), DOM nodes and the page's own counters."""
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    metrics = {
        m["name"]: m["value"]
        for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    }
    stats = driver.execute_script(STATS_JS)
    return {
        "t_s": time.monotonic(),
        "heap_used_mb": round(metrics["JSHeapUsedSize"] / MB, 2),
        "dom_nodes": int(metrics["Nodes"]),
        "listeners": int(metrics["JSEventListeners"]),
        "redraws": int(stats.get("redraws", 0)),
        "messages": int(stats.get("messages", 0)),
    }


async def watch(driver, minutes: float, sample_s: float) -> list[dict]:
    samples = [await asyncio.to_thread(sample, driver)]
    end = time.monotonic() + minutes * 60
    while time.monotonic() < end:
        await asyncio.sleep(min(sample_s, max(0.0, end - time.monotonic())))
        samples.append(await asyncio.to_thread(sample, driver))
    return samples


def summary(samples: list[dict]) -> dict:
    """Heap growth over the second half, and redraws and messages per second per interval."""
    rates = []
    for a, b in zip(samples, samples[1:]):
        dt = b["t_s"] - a["t_s"]
        rates.append(
            {
                "redraws_per_s": (b["redraws"] - a["redraws"]) / dt,
                "messages_per_s": (b["messages"] - a["messages"]) / dt,
            }
        )
    half = samples[len(samples) // 2 :]
    span_min = max((half[-1]["t_s"] - half[0]["t_s"]) / 60, 1e-9)
    heap = [s["heap_used_mb"] for s in samples]
    return {
        "heap_used_mb": {"first": heap[0], "last": heap[-1], "min": min(heap), "max": max(heap)},
        "heap_growth_mb_per_min_second_half": round(
            (half[-1]["heap_used_mb"] - half[0]["heap_used_mb"]) / span_min, 3
        ),
        "dom_nodes": {"first": samples[0]["dom_nodes"], "last": samples[-1]["dom_nodes"]},
        "listeners": {"first": samples[0]["listeners"], "last": samples[-1]["listeners"]},
        "redraws_per_s_max": round(max(r["redraws_per_s"] for r in rates), 2) if rates else 0,
        "redraws_per_s_mean": round(sum(r["redraws_per_s"] for r in rates) / len(rates), 2)
        if rates
        else 0,
        "messages_per_s_mean": round(sum(r["messages_per_s"] for r in rates) / len(rates), 1)
        if rates
        else 0,
    }


async def _run(args) -> dict:
    streams = [f"bench-cam-{i + 1}" for i in range(args.streams)]
    redis = RedisServer().start()
    stop = asyncio.Event()
    driver = None
    try:
        settings = RedisOptions(url=SecretStr(redis.url), key_prefix="bench-dash")
        async with EventStore(settings) as store:
            port = free_port()
            async with ApiServer(create_app(store), "127.0.0.1", port):
                publishing = asyncio.create_task(publish(store, streams, args.fps, stop))
                await asyncio.sleep(3.0)  # some history before the page opens
                driver = await asyncio.to_thread(start_chromium, (1280, 800))
                await asyncio.to_thread(driver.execute_cdp_cmd, "Performance.enable", {})
                path = (
                    "/dashboard" if args.view == "overview" else f"/dashboard/streams/{streams[0]}"
                )
                await asyncio.to_thread(driver.get, f"http://127.0.0.1:{port}{path}")
                await asyncio.sleep(5.0)  # loaded, connected, first redraws
                samples = await watch(driver, args.minutes, args.sample_s)
                logs = await asyncio.to_thread(driver.get_log, "browser")
                status = await asyncio.to_thread(
                    driver.execute_script, "return document.getElementById('status').dataset.state"
                )
                stop.set()
                sent = await publishing
    finally:
        stop.set()
        if driver is not None:
            await asyncio.to_thread(driver.quit)
        redis.stop()
    t0 = samples[0]["t_s"]
    return {
        "benchmark": "dashboard",
        "view": args.view,
        "minutes": args.minutes,
        "streams": args.streams,
        "fps_per_stream": args.fps,
        "events_stored": sent,
        "live_status_at_end": status,
        "console_errors": [e["message"][:200] for e in logs if e["level"] == "SEVERE"],
        **summary(samples),
        "samples": [s | {"t_s": round(s["t_s"] - t0, 1)} for s in samples],
        "platform": {"python": platform.python_version(), "machine": platform.machine()},
    }


def run_bench_dashboard(args) -> int:
    missing = missing_browser()
    if missing:
        print(json.dumps({"error": f"{', '.join(missing)} missing: apt-get install chromium"}))
        return 2
    result = asyncio.run(_run(args))
    print(json.dumps(result, separators=(",", ":")) if args.json else json.dumps(result, indent=2))
    return 0
