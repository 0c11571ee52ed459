"""Frame sources: the built-in sample clip, video files, image folders, webcams and stream URLs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from emostream.errors import ConfigError
from emostream.images import IMAGE_SUFFIXES, image_paths

URL_RE = re.compile(r"^(rtsp|rtsps|rtmp|http|https)://", re.I)


def sample_frames(n_frames: int = 120, width: int = 640, height: int = 360) -> Iterator[np.ndarray]:
    """A short animated clip of the packaged public-domain astronaut photo (no download; see
    ``emostream.sample_photo``).

    The photo drifts and zooms across a canvas, so detection, cropping and tracking see motion.
    """
    from emostream.sample_photo import astronaut_bgr

    photo = astronaut_bgr()
    for i in range(n_frames):
        t = i / max(n_frames - 1, 1)
        scale = 0.55 + 0.15 * np.sin(2 * np.pi * t)
        img = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = np.full((height, width, 3), 40, np.uint8)
        h, w = img.shape[:2]
        x0 = int((width - w) * (0.5 + 0.4 * np.sin(2 * np.pi * t * 2)))
        y0 = int(max(height - h, 0) * 0.5)
        x0 = min(max(x0, 0), max(width - w, 0))
        vis_h, vis_w = min(h, height - y0), min(w, width - x0)
        canvas[y0 : y0 + vis_h, x0 : x0 + vis_w] = img[:vis_h, :vis_w]
        yield canvas


def classify_source(source: str) -> str:
    """'sample', 'webcam', 'url', 'folder' or 'file'; raises ConfigError when it cannot be used."""
    if source == "sample":
        return "sample"
    if source.isdigit():
        return "webcam"
    if URL_RE.match(source):
        return "url"
    path = Path(source)
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "file"
    raise ConfigError(
        f"source {source!r} is not 'sample', a webcam index, an rtsp/http URL, an image folder "
        "or an existing video file"
    )


def default_stream_id(source: str) -> str:
    kind = classify_source(source)
    if kind == "sample":
        return "sample-astronaut"
    if kind == "webcam":
        return f"webcam-{source}"
    if kind == "url":
        cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", URL_RE.sub("", source)).strip("-")
        return cleaned[:100] or "url"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(source).stem)[:100] or "file"


def is_live(source: str) -> bool:
    return classify_source(source) in ("webcam", "url")


def _capture_frames(cap: cv2.VideoCapture, what: str) -> Iterator[np.ndarray]:
    if not cap.isOpened():
        raise ConfigError(f"OpenCV cannot open {what}")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def _folder_frames(folder: Path) -> Iterator[np.ndarray]:
    files = image_paths(folder.iterdir())
    if not files:
        raise ConfigError(f"{folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:  # unreadable files are skipped, not fatal
            yield image


def _quiet_decoders() -> None:
    """FFmpeg logs every undecodable packet to stderr (megabytes for a bad file): silence it.

    Read by OpenCV when its FFmpeg backend opens a capture; a value set by the user wins.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def probe_source(source: str) -> None:
    """Fail fast, with one clear error, when a file or folder source has no decodable frame.

    Live sources (webcams, URLs) are not probed: they may take a while to answer and reconnect.
    """
    kind = classify_source(source)
    if kind not in ("file", "folder"):
        return
    frames = open_source(source)
    try:
        first = next(frames, None)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    if first is None:
        raise ConfigError(
            f"source {source!r} yielded no frame: not a video or image OpenCV can "
            "decode; pass a video file, an image folder, a webcam index or a URL"
        )


def open_source(source: str) -> Iterator[np.ndarray]:
    """One pass over the source's frames (BGR uint8). Live sources end when the feed drops."""
    kind = classify_source(source)
    if kind != "sample":
        _quiet_decoders()
    if kind == "sample":
        return sample_frames()
    if kind == "webcam":
        return _capture_frames(cv2.VideoCapture(int(source)), f"webcam {source}")
    if kind == "url":
        return _capture_frames(cv2.VideoCapture(source, cv2.CAP_FFMPEG), source)
    if kind == "folder":
        return _folder_frames(Path(source))
    return _capture_frames(cv2.VideoCapture(source), f"video file {source}")


def fit_width(frame: np.ndarray, max_width_px: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if w <= max_width_px:
        return frame
    scale = max_width_px / w
    return cv2.resize(frame, (max_width_px, int(round(h * scale))), interpolation=cv2.INTER_AREA)
