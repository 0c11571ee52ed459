"""Accuracy, per-class metrics and confusion matrices, with ensembles and test-time augmentation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from emostream.extras import import_extra
from emostream.models.checkpoint import EmotionClassifier, EnsembleClassifier
from emostream.models.registry import EMOTIONS
from emostream.training.augment import hflip, random_affine, to_input


@torch.inference_mode()
def predict_proba(
    models: Sequence[EmotionClassifier | EnsembleClassifier],
    images_u8: np.ndarray,
    tta: int = 0,
    flip_tta: bool = False,
    batch_size: int = 256,
    seed: int = 0,
) -> np.ndarray:
    """Mean softmax over models (an ensemble) for N x 48 x 48 grey faces.

    ``tta`` > 0 adds that many random flip/rotation views per model, softmaxes summed as in the
    RMN paper; ``flip_tta`` adds the deterministic mirrored view.
    """
    gen = torch.Generator().manual_seed(seed)
    total = np.zeros((len(images_u8), len(EMOTIONS)), dtype=np.float64)
    for model in models:
        size = model.preprocessing.input_size
        for start in range(0, len(images_u8), batch_size):
            x = to_input(torch.from_numpy(images_u8[start : start + batch_size]), size)
            views = [x]
            if flip_tta:
                views.append(hflip(x))
            views += [random_affine(x, gen, max_rotation_deg=10.0) for _ in range(tta)]
            dtype = next(model.parameters()).dtype
            softmaxes = [torch.softmax(model(v.to(dtype)).float(), dim=1) for v in views]
            probs = sum(softmaxes[1:], softmaxes[0]) / len(views)
            total[start : start + len(x)] += probs.numpy()
    return total / len(models)


def flip_accuracy_and_neutral_recall(
    model: EmotionClassifier, images_u8: np.ndarray, labels: np.ndarray
) -> dict:
    """Accuracy and neutral recall with flip TTA, as the worker reads faces (issue 38's figures)."""
    pred = predict_proba([model], images_u8, flip_tta=True).argmax(1)
    neutral_index = EMOTIONS.index("neutral")
    neutral = labels == neutral_index
    return {
        "accuracy": round(float((pred == labels).mean()), 4),
        "neutral_recall": round(float((pred[neutral] == neutral_index).mean()), 4),
    }


@torch.inference_mode()
def predict_logits(
    model: EmotionClassifier | EnsembleClassifier,
    images_u8: np.ndarray,
    flip: bool = False,
    batch_size: int = 512,
) -> np.ndarray:
    """N x V x 7 logits of one model: V = 1 (the face) or 2 (the face and its mirror image)."""
    size = model.preprocessing.input_size
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, len(images_u8), batch_size):
        x = to_input(torch.from_numpy(images_u8[start : start + batch_size]), size)
        x = x.to(device=device, dtype=dtype)
        views = [x, hflip(x)] if flip else [x]
        chunks.append(torch.stack([model(v).float().cpu() for v in views], dim=1))
    return torch.cat(chunks).numpy()


def classification_report(labels: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    k = len(EMOTIONS)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    per_class = {}
    for i, name in enumerate(EMOTIONS):
        tp = int(cm[i, i])
        precision = float(tp / cm[:, i].sum()) if cm[:, i].sum() else 0.0
        recall = float(tp / cm[i, :].sum()) if cm[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": int(cm[i, :].sum()),
        }
    n = int(len(labels))
    return {
        "n": n,
        "accuracy": round(float((labels == pred).mean()) if n else 0.0, 4),
        "macro_f1": round(float(np.mean([c["f1"] for c in per_class.values()])), 4),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "labels": list(EMOTIONS),
    }


def save_confusion_png(cm: list[list[int]], path, title: str = "Confusion matrix") -> None:
    matplotlib = import_extra("matplotlib", "train", "plotting")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arr = np.asarray(cm, dtype=np.float64)
    norm = arr / np.maximum(arr.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
