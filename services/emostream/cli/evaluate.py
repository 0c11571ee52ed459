"""`emostream eval` and `calibrate`: accuracy, per-class metrics and calibration of checkpoints."""

from __future__ import annotations

import copy
import json

import numpy as np
import torch

from emostream.models.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from emostream.training.calibration import calibration_report, probs_from_views
from emostream.training.evaluate import (
    classification_report,
    predict_logits,
    predict_proba,
    save_confusion_png,
)
from emostream.training.fer2013 import load_fer2013
from emostream.training.near_duplicates import DEFAULT_THRESHOLD, near_duplicate_mask


def ensemble_probs(models, images: np.ndarray, flip: bool, calibrated: bool = True) -> np.ndarray:
    """Mean over models of each model's mean softmax over views; ``calibrated=False`` undoes
    each model's stored temperature (to report calibration before and after)."""
    total = 0.0
    for m in models:
        logits = predict_logits(m, images, flip=flip)
        if not calibrated:
            logits = logits * m.temperature
        total = total + probs_from_views(logits.astype(np.float64))
    return total / len(models)


def _near_duplicate_report(args, data, pred: np.ndarray) -> dict:
    train = load_fer2013(args.data, "Training")
    threshold = args.near_dup_threshold or DEFAULT_THRESHOLD
    dup = near_duplicate_mask(data.images, train.images, threshold)
    keep = ~dup
    return {
        "near_duplicate_threshold": threshold,
        "near_duplicates": int(dup.sum()),
        "n_without_near_duplicates": int(keep.sum()),
        "accuracy_without_near_duplicates": round(
            float((pred[keep] == data.labels[keep]).mean()), 4
        ),
        "accuracy_on_near_duplicates": round(float((pred[dup] == data.labels[dup]).mean()), 4)
        if dup.any()
        else None,
    }


def run_eval(args) -> int:
    paths = args.checkpoint or [str(DEFAULT_CHECKPOINT)]
    models = [load_checkpoint(p) for p in paths]
    data = load_fer2013(args.data, args.usage)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    run_models = [copy.deepcopy(m).to(dtype) for m in models] if dtype != torch.float32 else models
    if args.tta:
        probs = predict_proba(run_models, data.images, tta=args.tta, flip_tta=args.flip)
    else:
        probs = ensemble_probs(run_models, data.images, args.flip)
    pred = probs.argmax(1)
    report = classification_report(data.labels, pred)
    report.update(calibration_report(probs, data.labels))
    temperatures = [m.temperature for m in models]
    if any(t != 1.0 for t in temperatures) and not args.tta:
        before = ensemble_probs(run_models, data.images, args.flip, calibrated=False)
        report["uncalibrated"] = calibration_report(before, data.labels)
    if dtype != torch.float32:  # how far the faster dtype moves the answers, on the same views
        ref = predict_proba(models, data.images, tta=args.tta, flip_tta=args.flip)
        report.update(
            top1_agreement_vs_fp32=round(float((pred == ref.argmax(1)).mean()), 4),
            max_prob_diff_vs_fp32=round(float(np.abs(probs - ref).max()), 4),
            accuracy_fp32=classification_report(data.labels, ref.argmax(1))["accuracy"],
        )
    if args.near_duplicates:
        report.update(_near_duplicate_report(args, data, pred))
    report.update(
        dtype=args.dtype,
        usage=args.usage,
        checkpoints=paths,
        models=[f"{m.name}:{m.version}" for m in models],
        temperatures=temperatures,
        tta=args.tta,
        flip=args.flip,
    )
    if args.confusion_png:
        save_confusion_png(
            report["confusion_matrix"], args.confusion_png, f"{args.usage} confusion"
        )
    if args.json:
        print(json.dumps(report))
    else:
        _print_report(report, args.usage, args.near_duplicates)
    return 0


def _print_report(report: dict, usage: str, near_duplicates: bool) -> None:
    print(
        f"{usage}: n={report['n']} accuracy={report['accuracy']:.4f} "
        f"macro-F1={report['macro_f1']:.4f} ECE={report['ece']:.4f} NLL={report['nll']:.4f}  "
        f"models={', '.join(report['models'])}"
    )
    if "uncalibrated" in report:
        print(
            f"before temperature scaling: ECE={report['uncalibrated']['ece']:.4f} "
            f"NLL={report['uncalibrated']['nll']:.4f}"
        )
    if near_duplicates:
        print(
            f"without near-duplicates of Training ({report['near_duplicates']} removed): "
            f"n={report['n_without_near_duplicates']} "
            f"accuracy={report['accuracy_without_near_duplicates']:.4f}"
        )
    print(f"{'class':10s} {'precision':>9s} {'recall':>7s} {'f1':>6s} {'support':>8s}")
    for name, c in report["per_class"].items():
        print(
            f"{name:10s} {c['precision']:9.3f} {c['recall']:7.3f} {c['f1']:6.3f} {c['support']:8d}"
        )


def run_calibrate(args) -> int:
    """Fit a temperature on ``--usage`` and store it in the checkpoint (or ``--out``)."""
    from emostream.models.checkpoint import set_temperature
    from emostream.training.calibration import fit_temperature

    model = load_checkpoint(args.checkpoint)
    data = load_fer2013(args.data, args.usage)
    logits = predict_logits(model, data.images, flip=args.flip).astype(np.float64)
    raw = logits * model.temperature  # fit from scratch, whatever the file held
    before = probs_from_views(raw)
    temperature = fit_temperature(raw, data.labels)
    after = probs_from_views(raw, temperature)
    target = set_temperature(args.checkpoint, temperature, args.out)
    report = {
        "checkpoint": str(target),
        "usage": args.usage,
        "n": int(len(data)),
        "flip": args.flip,
        "temperature": round(temperature, 4),
        "before": calibration_report(before, data.labels),
        "after": calibration_report(after, data.labels),
        "accuracy": round(float((after.argmax(1) == data.labels).mean()), 4),
    }
    print(json.dumps(report))
    return 0
