"""`emostream bench detect`: does each detector find exactly the one face, and how fast.

Input is a folder of images with one face each (sub-folders allowed; a sub-folder named after
an emotion also scores the classifier on the detected face), or ``--fer2013 PATH``: FER2013
faces pasted into 640x480 frames (generated, not real photographs; say so when quoting).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

from emostream.bench import add_bench
from emostream.images import image_paths
from emostream.labels import EMOTIONS

HELP = "faces found per image and ms/image per detector"


def register(subparsers) -> None:
    """Add `bench detect`."""
    b = add_bench(subparsers, "detect", run_bench_detect, HELP, seed=True)
    b.add_argument(
        "folder", nargs="?", help="images with exactly one face each (sub-folders allowed)"
    )
    b.add_argument("--fer2013", help="instead of a folder: FER2013 faces pasted into frames")
    b.add_argument("--no-classify", action="store_true", help="skip emotion accuracy")
    b.add_argument("--detectors", default="haar,yunet")
    b.add_argument("--yunet-model", help="YuNet .onnx (default: the models cache)")
    b.add_argument("--limit", type=int, default=0, help="at most this many images (0: all)")


def find_images(folder: Path, limit: int = 0) -> list[tuple[Path, str | None]]:
    """Image files under ``folder`` with the emotion named by their parent folder, if any."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    files = image_paths(folder.rglob("*"))
    out = [(p, p.parent.name.lower() if p.parent.name.lower() in EMOTIONS else None) for p in files]
    return out[:limit] if limit else out


def score(counts: list[int], ms: list[float]) -> dict:
    n = len(counts)
    return {
        "images": n,
        "exactly_one": round(sum(c == 1 for c in counts) / n, 4) if n else None,
        "no_spurious": round(sum(c <= 1 for c in counts) / n, 4) if n else None,
        "missed": sum(c == 0 for c in counts),
        "spurious_images": sum(c > 1 for c in counts),
        "ms_per_image_mean": round(float(np.mean(ms)), 2) if ms else None,
        "ms_per_image_p50": round(float(np.median(ms)), 2) if ms else None,
    }


def _generated(fer_path: str, n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    from emostream.bench.smoothing import face_frame
    from emostream.training.fer2013 import load_fer2013

    data = load_fer2013(fer_path, "PublicTest")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(data))[:n]
    return [
        (
            face_frame(data.images[i], float(rng.uniform(0, 10)), 10.0, rng),
            EMOTIONS[int(data.labels[i])],
        )
        for i in idx
    ]


def run_bench_detect(args) -> int:
    from emostream.vision import build_detector, crop, official_crop_box
    from emostream.vision_options import DetectorOptions

    if args.fer2013:
        samples = _generated(args.fer2013, args.limit or 300, args.seed)
        source = f"generated: {len(samples)} FER2013 PublicTest faces pasted into 640x480 frames"
    else:
        found = find_images(Path(args.folder), args.limit)
        if not found:
            raise SystemExit(f"no images under {args.folder}")
        samples = []
        for path, label in found:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise SystemExit(f"cannot read {path} as an image")
            samples.append((image, label))
        source = f"folder {args.folder}: {len(samples)} images"
    engine = None
    if any(label for _, label in samples) and not args.no_classify:
        from emostream.inference import engine_from_settings
        from emostream.vision_options import ModelOptions

        engine = engine_from_settings(ModelOptions())
    report = {"benchmark": "detect", "source": source, "detectors": {}}
    for kind in [k.strip() for k in args.detectors.split(",") if k.strip()]:
        try:
            detector = build_detector(
                kind,
                args.yunet_model,  # as the worker runs it
                max_width_px=DetectorOptions().max_width_px,
            )
        except Exception as exc:  # noqa: BLE001 - report a detector that cannot load, run the rest
            report["detectors"][kind] = {"error": str(exc)}
            continue
        detector.detect(samples[0][0])  # warm-up
        counts, ms, correct, classified = [], [], 0, 0
        for image, label in samples:
            t0 = time.perf_counter()
            dets = detector.detect(image)
            ms.append((time.perf_counter() - t0) * 1000)
            counts.append(len(dets))
            if engine is not None and label and len(dets) >= 1:
                best = max(dets, key=lambda d: d.score)
                gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                box = official_crop_box(
                    best.x, best.y, best.w, best.h, gray.shape[1], gray.shape[0]
                )
                if box is not None:
                    p = engine.classify([crop(gray, box)])[0]
                    classified += 1
                    correct += EMOTIONS[int(np.argmax(p))] == label
        entry = score(counts, ms)
        if classified:
            entry["emotion_accuracy_on_detected"] = round(correct / classified, 4)
        report["detectors"][kind] = entry
    print(json.dumps(report, indent=None if args.json else 2))
    return 0
