"""Calibration: expected calibration error, negative log-likelihood, and temperature scaling.

Rules fire on probability thresholds, so ``probabilities`` in events should mean what they say:
of the faces reported at 0.8, about 80% should be right. One temperature ``T`` divides the logits
(Guo et al., 2017, "On Calibration of Modern Neural Networks"); it is fitted on PublicTest by
minimising the NLL of the probabilities exactly as the worker forms them (the mean softmax over
the face and its mirror image when flip TTA is on), and stored in the checkpoint.
"""

from __future__ import annotations

import math

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def probs_from_views(view_logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """N x V x K logits (V views of each face) -> N x K mean softmax at ``temperature``."""
    return softmax(view_logits / temperature, axis=-1).mean(axis=1)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class."""
    p = np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)
    return float(-np.log(p).mean())


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE over ``bins`` equal-width confidence bins: sum of |accuracy - confidence| x bin share."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(total)


def fit_temperature(view_logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises the NLL (golden-section search on log T).

    NLL is unimodal in log T for a fixed set of logits, so a 1-D search finds the optimum without
    gradients or a learning rate.
    """
    if view_logits.ndim == 2:
        view_logits = view_logits[:, None, :]
    lo, hi = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return nll(probs_from_views(view_logits, math.exp(log_t)), labels)

    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(math.exp((lo + hi) / 2))


def calibration_report(probs: np.ndarray, labels: np.ndarray) -> dict:
    return {
        "ece": round(expected_calibration_error(probs, labels), 4),
        "nll": round(nll(probs, labels), 4),
    }
