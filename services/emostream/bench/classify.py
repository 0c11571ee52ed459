"""`emostream bench classify`: batched engine faces/s vs the official per-face path, in one run."""

from __future__ import annotations

import json
import platform
import time

import cv2
import numpy as np
import torch

from emostream.bench import add_bench
from emostream.inference import EmotionEngine
from emostream.models.checkpoint import EmotionClassifier, load_checkpoint
from emostream.models.registry import get_spec

HELP = "faces/s by batch size and dtype vs the per-face baseline"


def register(subparsers) -> None:
    """Add `bench classify`."""
    b = add_bench(subparsers, "classify", run_bench, HELP)
    b.add_argument(
        "--model",
        default="default",
        help="'default' (the packaged model, as the worker runs it), a checkpoint path, "
        "several paths separated by commas (an ensemble), or a registered "
        "architecture name (random weights: speed only)",
    )
    b.add_argument("--batch-sizes", default="1,8,32")
    b.add_argument("--dtypes", default="fp32,bf16")
    b.add_argument("--seconds", type=float, default=5.0)


def _model(name: str) -> EmotionClassifier:
    """A registered architecture (random weights: speed only), 'default', a checkpoint path, or
    several paths separated by commas (an ensemble, as the worker runs one)."""
    if "," in name:
        from emostream.models.checkpoint import load_models

        return load_models(name)
    if name == "default":
        from emostream.models.checkpoint import DEFAULT_CHECKPOINT

        return load_checkpoint(DEFAULT_CHECKPOINT)
    try:
        spec = get_spec(name)
    except KeyError:
        return load_checkpoint(name)
    torch.manual_seed(0)
    return EmotionClassifier(spec.build(), spec.preprocessing, name=spec.name).eval()


def _faces(n: int, seed: int = 0) -> list[np.ndarray]:
    """Grey face-sized crops of varied sizes (speed does not depend on the pixel values)."""
    from emostream.sample_photo import astronaut_bgr

    face = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)[40:200, 150:310]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        side = int(rng.integers(60, 200))
        noise = rng.integers(-12, 12, size=(side, side))
        out.append(np.clip(cv2.resize(face, (side, side)) + noise, 0, 255).astype(np.uint8))
    return out


def _timed(fn, n_faces: int, seconds: float) -> float:
    fn()  # warm-up
    done, t0 = 0, time.perf_counter()
    while True:
        fn()
        done += n_faces
        if time.perf_counter() - t0 >= seconds:
            return done / (time.perf_counter() - t0)


def baseline_per_face(model: EmotionClassifier, faces: list[np.ndarray], seconds: float) -> float:
    """The official path: one face at a time, resize, 3 channels, batch 1, fp32, NCHW."""
    size = model.preprocessing.input_size
    it = iter(range(10**9))

    @torch.inference_mode()
    def one() -> None:
        face = faces[next(it) % len(faces)]
        img = cv2.resize(face, (size, size))
        x = torch.from_numpy(np.stack([img] * 3)).float().div(255.0).unsqueeze(0)
        torch.softmax(model(x), dim=1)

    return _timed(one, 1, seconds)


def _settings(
    model_name: str,
    faces: list[np.ndarray],
    dtypes: list[str],
    batch_sizes: list[int],
    seconds: float,
) -> list[dict]:
    """Faces/s per (dtype, batch size), with each dtype's agreement with fp32 on the same faces."""
    out: list[dict] = []
    ref_engine = EmotionEngine(_model(model_name), dtype="fp32", max_batch=max(batch_sizes))
    ref = ref_engine.classify(faces)
    for dtype in dtypes:
        try:
            engine = EmotionEngine(_model(model_name), dtype=dtype, max_batch=max(batch_sizes))
        except Exception as exc:  # noqa: BLE001 - e.g. fp16 without CUDA
            out.append({"dtype": dtype, "error": str(exc)})
            continue
        probs = engine.classify(faces)
        agreement = {
            "top1_agreement_vs_fp32": round(float((probs.argmax(1) == ref.argmax(1)).mean()), 4),
            "max_prob_diff_vs_fp32": round(float(np.abs(probs - ref).max()), 5),
        }
        for bs in batch_sizes:
            batch = faces[:bs]
            fps = _timed(lambda b=batch, e=engine: e.classify(b), bs, seconds)
            out.append(
                {
                    "dtype": dtype,
                    "batch": bs,
                    "channels_last": True,
                    "faces_per_s": round(fps, 2),
                    **agreement,
                }
            )
    return out


def run_bench(args) -> int:
    model = _model(args.model)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    dtypes = args.dtypes.split(",")
    faces = _faces(max(batch_sizes) * 2)
    results = {
        "benchmark": "classify",
        "model": model.name,
        "model_version": getattr(model, "version", None),
        # Registered architectures run with random weights: speed only, predictions meaningless.
        "trained": bool(getattr(model, "trained", False)),
        "dtypes": dtypes,
        "input_size": model.preprocessing.input_size,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "seconds_per_setting": args.seconds,
        "baseline_per_face_fps": round(baseline_per_face(model, faces, args.seconds), 2),
        "settings": _settings(args.model, faces, dtypes, batch_sizes, args.seconds),
    }
    ok = [s for s in results["settings"] if "faces_per_s" in s]
    best = max(ok, key=lambda s: s["faces_per_s"]) if ok else None
    results["best"] = best
    results["dtype"] = best["dtype"] if best else None  # the fastest setting's
    results["speedup_vs_baseline"] = (
        round(best["faces_per_s"] / results["baseline_per_face_fps"], 2) if best else None
    )
    if args.json:
        print(json.dumps(results))
    else:
        print(f"baseline (per face, fp32, batch 1): {results['baseline_per_face_fps']} faces/s")
        for s in results["settings"]:
            print(s)
        print(f"best: {best}  speedup x{results['speedup_vs_baseline']}")
    return 0
