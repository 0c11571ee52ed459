"""Push a video file to ingest's WebSocket, paced at a frame rate: a camera, from a file.

    python examples/push_video.py clip.mp4 [--url ws://127.0.0.1:8001] [--stream cam-1]
        [--fps 10] [--width 640] [--key KEY]

`emostream demo` prints the ingest address ("capture page on http://127.0.0.1:8001/capture").
The server drops the oldest queued frames when Kafka is slower than this sender and says so in
``{"type": "dropped"}`` messages, printed here; refused frames come back as ``"refused"``.
Needs opencv-python and websockets (both come with emostream). Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import cv2
from websockets.asyncio.client import connect


def frames(path: str, width: int):
    """JPEG bytes of each frame, scaled down to ``width`` pixels."""
    video = cv2.VideoCapture(path)
    try:
        while True:
            ok, frame = video.read()
            if not ok:
                return
            if frame.shape[1] > width:
                height = round(frame.shape[0] * width / frame.shape[1])
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            yield cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    finally:
        video.release()


async def report(ws) -> None:
    async for message in ws:
        doc = json.loads(message)
        if doc.get("type") == "dropped":
            print(f"server dropped {doc['count']} frames (total {doc['total']})")
        elif doc.get("type") == "refused":
            print(f"frame {doc.get('seq')} refused ({doc['status']}): {doc['detail']}")


async def main(path: str, url: str, stream: str, fps: float, width: int, key: str | None) -> None:
    headers = {"X-API-Key": key} if key else {}
    async with connect(f"{url}/v1/streams/{stream}/ingest", additional_headers=headers) as ws:
        listener = asyncio.create_task(report(ws))
        sent, next_at = 0, time.monotonic()
        for seq, jpeg in enumerate(frames(path, width)):
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += 1.0 / fps
            await ws.send(json.dumps({"seq": seq, "captured_ms": int(time.time() * 1000)}))
            await ws.send(jpeg)
            sent += 1
        await asyncio.sleep(1.0)  # the last drop reports
        listener.cancel()
        print(f"sent {sent} frames of {path} to stream {stream}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video")
    p.add_argument("--url", default="ws://127.0.0.1:8001", help="ingest's HTTP server, as ws://")
    p.add_argument("--stream", default="video-1")
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--key", help="a write key (EMOSTREAM_INGEST__API_KEYS), if set")
    a = p.parse_args()
    try:
        asyncio.run(main(a.video, a.url.rstrip("/"), a.stream, a.fps, a.width, a.key))
    except KeyboardInterrupt:
        pass
