"""`emostream eval`: accuracy and per-class metrics of one checkpoint or an ensemble."""

from __future__ import annotations

import copy
import json

import numpy as np
import torch

from emostream.models.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from emostream.training.evaluate import classification_report, predict_proba, save_confusion_png
from emostream.training.fer2013 import load_fer2013


def run_eval(args) -> int:
    paths = args.checkpoint or [str(DEFAULT_CHECKPOINT)]
    models = [load_checkpoint(p) for p in paths]
    data = load_fer2013(args.data, args.usage)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    run_models = [copy.deepcopy(m).to(dtype) for m in models] if dtype != torch.float32 else models
    probs = predict_proba(run_models, data.images, tta=args.tta, flip_tta=args.flip)
    report = classification_report(data.labels, probs.argmax(1))
    if dtype != torch.float32:  # how far the faster dtype moves the answers, on the same views
        ref = predict_proba(models, data.images, tta=args.tta, flip_tta=args.flip)
        report.update(top1_agreement_vs_fp32=round(float((probs.argmax(1) == ref.argmax(1)).mean()), 4),
                      max_prob_diff_vs_fp32=round(float(np.abs(probs - ref).max()), 4),
                      accuracy_fp32=classification_report(data.labels, ref.argmax(1))["accuracy"])
    report.update(
        dtype=args.dtype,
        usage=args.usage,
        checkpoints=paths,
        models=[f"{m.name}:{m.version}" for m in models],
        tta=args.tta,
        flip=args.flip,
    )
    if args.confusion_png:
        save_confusion_png(report["confusion_matrix"], args.confusion_png, f"{args.usage} confusion")
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.usage}: n={report['n']} accuracy={report['accuracy']:.4f} "
          f"macro-F1={report['macro_f1']:.4f}  models={', '.join(report['models'])}")
    print(f"{'class':10s} {'precision':>9s} {'recall':>7s} {'f1':>6s} {'support':>8s}")
    for name, c in report["per_class"].items():
        print(f"{name:10s} {c['precision']:9.3f} {c['recall']:7.3f} {c['f1']:6.3f} {c['support']:8d}")
    return 0
