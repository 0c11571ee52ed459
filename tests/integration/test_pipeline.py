"""A short video through the real broker, worker, Redis and HTTP API, checking what comes out."""

from __future__ import annotations

import asyncio
import itertools

import cv2
import httpx
import pytest

from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions, IngestOptions, WorkerOptions
from emostream.inference import EmotionEngine
from emostream.ingest import Ingest
from emostream.ingest.sources import sample_frames
from emostream.kafka.clients import ensure_topics
from emostream.models import EMOTIONS, untrained_model
from emostream.vision.detector import HaarDetector
from emostream.worker import FrameProcessor, Worker
from tests.waiting import wait_until

N_FRAMES = 12


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 360))
    assert writer.isOpened()
    for frame in itertools.islice(sample_frames(120), N_FRAMES):  # the demo clip's start
        writer.write(frame)
    writer.release()
    return path


async def test_video_to_api(kafka_settings, redis_settings, video, group_id):
    await ensure_topics(kafka_settings)
    processor = FrameProcessor(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))
    ingest_opts = IngestOptions(source=str(video), stream_id="lobby-cam", fps=50)
    async with (
        EventStore(redis_settings) as store,
        EventConsumer(
            kafka_settings, AggregatorOptions(group_id=group_id("agg")), store
        ) as consumer,
        Worker(
            kafka_settings,
            WorkerOptions(group_id=group_id("worker"), max_batch_frames=4),
            processor,
        ) as worker,
        Ingest(kafka_settings, ingest_opts) as ingest,
    ):
        tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(worker.run())]
        await ingest.run()
        assert ingest.sent == N_FRAMES and ingest.failed == 0

        app = create_app(store, consumer=consumer)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:

            async def all_events():
                r = await client.get("/v1/streams/lobby-cam/events", params={"limit": 100})
                if r.status_code != 200:
                    return None
                seen = {e["frame_seq"] for e in r.json()["events"]}
                return r.json() if seen == set(range(N_FRAMES)) else None

            body = await wait_until(all_events, 60.0, interval_s=0.3)
            health = await client.get("/healthz")
            streams = (await client.get("/v1/streams")).json()
            state = (await client.get("/v1/streams/lobby-cam/state")).json()
            missing = await client.get("/v1/streams/nope/state")
            bad_limit = await client.get("/v1/streams/lobby-cam/events", params={"limit": 0})
            scrape = (await client.get("/metrics/")).text
            dashboard = await client.get("/dashboard")
            windows = (
                await client.get("/v1/streams/lobby-cam/windows", params={"window_s": [300, 3600]})
            ).json()["windows"]
            bad_window = await client.get("/v1/streams/lobby-cam/windows", params={"window_s": 0})
            tracks_body = (
                await client.get("/v1/streams/lobby-cam/tracks", params={"active_within_s": 600})
            ).json()

        for c in (consumer, worker):
            c.request_stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)

    events = body["events"]
    # The sample clip shows one face per frame (Haar may add a rare false positive).
    seqs = [e["frame_seq"] for e in events]
    assert set(seqs) == set(range(N_FRAMES)) and N_FRAMES <= len(seqs) <= N_FRAMES + 3
    assert seqs[0] == N_FRAMES - 1  # newest first
    assert len({e["event_id"] for e in events}) == len(events)
    for e in events:
        assert e["stream_id"] == "lobby-cam" and e["schema_version"] == 1
        box = e["face"]["box"]
        assert box["w"] >= 32 and box["h"] >= 32
        assert box["x"] + box["w"] <= 640 and box["y"] + box["h"] <= 360
        probs = e["emotion"]["probabilities"]
        assert list(probs) == list(EMOTIONS)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
        assert e["emotion"]["label"] == max(probs, key=probs.get)
        assert e["model"]["trained"] is False
        assert e["processed_at"] >= e["captured_at"]

    tracks = [e["face"]["track_id"] for e in events]
    assert max(tracks.count(t) for t in set(tracks)) >= N_FRAMES - 1  # one face, one track
    assert all(
        sum(e["smoothed"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-6) for e in events
    )

    assert health.status_code == 200 and health.json()["redis"] is True
    assert streams["count"] == 1
    assert streams["streams"][0]["stream_id"] == "lobby-cam"
    assert streams["streams"][0]["events_total"] == len(events)
    assert state["last_frame_seq"] == N_FRAMES - 1
    assert sum(state["emotion_counts"].values()) == len(events)
    assert {f["frame_seq"] for f in state["faces"]} == {N_FRAMES - 1}
    assert missing.status_code == 404
    assert bad_limit.status_code == 422
    assert worker.dead_letters == 0
    assert [w["window_s"] for w in windows] == [300, 3600]
    for w in windows:
        assert w["events"] == len(events) == sum(w["counts"].values())
        assert sum(w["mean_probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert bad_window.status_code == 422
    assert dashboard.status_code == 200 and "/dashboard/static/js/main.js" in dashboard.text
    assert tracks_body["count"] >= 1
    main_track = max(
        set(t for t in [e["face"]["track_id"] for e in events]),
        key=lambda t: sum(e["face"]["track_id"] == t for e in events),
    )
    (track,) = [t for t in tracks_body["tracks"] if t["track_id"] == main_track]
    assert track["smoothed"]["label"] in (*EMOTIONS, "uncertain")
    assert "emostream_events_stored_total" in scrape
    assert "emostream_e2e_latency_seconds_bucket" in scrape  # worker metrics, same process
    assert 'emostream_frames_total{outcome="ok"}' in scrape
