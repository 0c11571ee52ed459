"""`emostream predict`: faces, emotions and probabilities for image files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from emostream.errors import ConfigError
from emostream.images import is_image_path
from emostream.inference import engine_from_settings
from emostream.vision import build_detector
from emostream.vision_options import ModelOptions
from emostream.worker.classify_stage import ClassifyStage
from emostream.worker.detect_stage import detect_and_crop


def predict_images(
    paths: list[str],
    detector_kind: str = "yunet_torch",
    yunet_model: str | None = None,
    checkpoint: str | None = None,
) -> tuple[list[dict], dict]:
    detector = build_detector(detector_kind, yunet_model)
    engine = engine_from_settings(ModelOptions(checkpoint=checkpoint))
    # The worker's own detect -> crop -> classify step, so the two cannot disagree.
    stage = ClassifyStage(engine)
    labels = stage.labels
    results, images = [], {}
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            results.append({"image": path, "error": "not a readable image", "faces": []})
            continue
        kept, crops = detect_and_crop(detector, image)
        dets = [d for d, _ in kept]
        probs = stage.classify(crops)
        faces = []
        for d, p in zip(dets, probs):
            faces.append(
                {
                    "box": [d.x, d.y, d.w, d.h],
                    "score": round(d.score, 4),
                    "emotion": labels[int(p.argmax())],
                    "probabilities": {k: round(float(v), 6) for k, v in zip(labels, p)},
                }
            )
        results.append({"image": path, "faces": faces})
        images[path] = image
    meta = {"model": engine.model_name, "version": engine.model_version, "trained": engine.trained}
    return results, {"meta": meta, "images": images}


LABEL_COLOUR = (0, 200, 0)


def annotate(image, faces: list[dict]):
    """Boxes and labels, sized to the image: text about 3% of its height, readable at 1:1."""
    out = image.copy()
    h, w = out.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    _, base_h = cv2.getTextSize("Hg", font, 1.0, 1)[0]
    scale = max(0.5, 0.03 * h / base_h)
    thickness = max(1, round(scale * 1.5))
    for f in faces:
        x, y, bw, bh = f["box"]
        cv2.rectangle(out, (x, y), (x + bw, y + bh), LABEL_COLOUR, max(2, thickness))
        text = f"{f['emotion']} {f['probabilities'][f['emotion']]:.2f}"
        (tw, th), baseline = cv2.getTextSize(text, font, scale, thickness)
        top = y - th - baseline - 4 if y - th - baseline - 4 >= 0 else y + bh  # above, else below
        right, bottom = min(x + tw + 4, w - 1), top + th + baseline + 4
        cv2.rectangle(out, (x, top), (right, bottom), (0, 0, 0), -1)
        cv2.putText(
            out, text, (x + 2, top + th + 2), font, scale, LABEL_COLOUR, thickness, cv2.LINE_AA
        )
    return out


def annotation_targets(out: Path, images: list[str]) -> dict[str, Path]:
    """Where each image's annotation goes: ``out`` itself for one image named like an image file,
    else ``out/<stem>_annotated.jpg`` (the folder is created). Parents are created too."""
    names_image = is_image_path(out) and not out.is_dir()
    as_file = len(images) == 1 and names_image
    if names_image and not as_file:
        raise ConfigError(
            f"--annotate {out} names an image file but {len(images)} images were "
            "given: pass a folder"
        )
    if out.exists() and not out.is_dir() and not as_file:
        raise ConfigError(f"--annotate {out} is a file, not a folder")
    folder = out.parent if as_file else out
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--annotate: cannot create {folder}: {exc.strerror}") from None
    if as_file:
        return {images[0]: out}
    return {p: out / f"{Path(p).stem}_annotated.jpg" for p in images}


def run_predict(args) -> int:
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        raise ConfigError(f"no such image file(s): {', '.join(missing)}")
    # Checked (and folders made) before the model loads: a bad --annotate fails at once.
    targets = annotation_targets(Path(args.annotate), args.images) if args.annotate else {}
    results, extra = predict_images(args.images, args.detector, args.yunet_model, args.checkpoint)
    if targets:
        for r in results:
            if r["image"] in extra["images"]:
                target = targets[r["image"]]
                if not cv2.imwrite(str(target), annotate(extra["images"][r["image"]], r["faces"])):
                    raise ConfigError(f"--annotate: could not write {target}")
    if args.json:
        print(json.dumps(results))
    else:
        meta = extra["meta"]
        if not meta["trained"]:
            print("WARNING: UNTRAINED MODEL - emotions are random")
        for r in results:
            print(
                f"{r['image']}: {len(r['faces'])} face(s)"
                + (f" ({r['error']})" if "error" in r else "")
            )
            for f in r["faces"]:
                print(
                    f"  box={f['box']} score={f['score']:.2f} {f['emotion']} "
                    f"({f['probabilities'][f['emotion']]:.2f})"
                )
    return 0 if all("error" not in r for r in results) else 1
