"""`emostream predict`: faces, emotions and probabilities for image files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from emostream.errors import ConfigError
from emostream.inference import engine_from_settings
from emostream.settings import ModelSettings
from emostream.vision import build_detector, crop, official_crop_box


def predict_images(paths: list[str], detector_kind: str = "haar", yunet_model: str | None = None,
                   checkpoint: str | None = None) -> tuple[list[dict], dict]:
    detector = build_detector(detector_kind, yunet_model)
    engine = engine_from_settings(ModelSettings(checkpoint=checkpoint))
    labels = engine.preprocessing.labels
    results, images = [], {}
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            results.append({"image": path, "error": "not a readable image", "faces": []})
            continue
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        h, w = gray.shape
        dets, crops = [], []
        for d in detector.detect(image):
            box = official_crop_box(d.x, d.y, d.w, d.h, w, h)
            if box is not None:
                dets.append(d)
                crops.append(crop(gray, box))
        probs = engine.classify(crops)
        faces = []
        for d, p in zip(dets, probs):
            faces.append({
                "box": [d.x, d.y, d.w, d.h],
                "score": round(d.score, 4),
                "emotion": labels[int(p.argmax())],
                "probabilities": {k: round(float(v), 6) for k, v in zip(labels, p)},
            })
        results.append({"image": path, "faces": faces})
        images[path] = image
    meta = {"model": engine.model_name, "version": engine.model_version, "trained": engine.trained}
    return results, {"meta": meta, "images": images}


def annotate(image, faces: list[dict]):
    out = image.copy()
    for f in faces:
        x, y, w, h = f["box"]
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 200, 0), 2)
        text = f"{f['emotion']} {f['probabilities'][f['emotion']]:.2f}"
        cv2.putText(out, text, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 0), 1)
    return out


def run_predict(args) -> int:
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        raise ConfigError(f"no such image file(s): {', '.join(missing)}")
    results, extra = predict_images(args.images, args.detector, args.yunet_model, args.checkpoint)
    if args.annotate:
        out = Path(args.annotate)
        many = len(args.images) > 1 or out.is_dir()
        if many:
            out.mkdir(parents=True, exist_ok=True)
        for r in results:
            if r["image"] in extra["images"]:
                target = out / f"{Path(r['image']).stem}_annotated.jpg" if many else out
                cv2.imwrite(str(target), annotate(extra["images"][r["image"]], r["faces"]))
    if args.json:
        print(json.dumps(results))
    else:
        meta = extra["meta"]
        if not meta["trained"]:
            print("WARNING: UNTRAINED MODEL - emotions are random")
        for r in results:
            print(f"{r['image']}: {len(r['faces'])} face(s)" + (f" ({r['error']})" if "error" in r else ""))
            for f in r["faces"]:
                print(f"  box={f['box']} score={f['score']:.2f} {f['emotion']} "
                      f"({f['probabilities'][f['emotion']]:.2f})")
    return 0 if all("error" not in r for r in results) else 1
