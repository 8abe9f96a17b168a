"""Checks a fine-tuned run must pass before its numbers count (the validation gate).

A run can finish without having learned: its validation loss never beats the best constant
prediction, its scores collapse onto one value (a dead head: every unit of a ReLU layer silent, the
output then the sigmoid of the last bias), or every score falls on one side of the decision
threshold. These are checked on the *validation* split only (never the test split), right after
training, and recorded with the run's metrics:

``gate_beats_constant``
    1 when the best validation loss is below the loss of the best constant prediction (for the
    binary task with ``pos_weight``: the constant probability ``w p / (w p + 1 - p)``, p the
    validation positive fraction; for classes: the weighted class frequencies).
``val_score_spread``
    The standard deviation of the validation scores (probabilities of the positive class).
``val_identical_fraction``
    The largest fraction of validation scores that share one value (to 1e-6).
``val_one_sided``
    1 when every validation score is on one side of 0.5 (threshold metrics such as F1 are then
    meaningless for the run, whatever its ROC AUC).
``dead_unit_fraction``
    The fraction of units after ReLU activations in the model's head that are zero on every
    validation alert (dead units).
``gate_passed``
    1 when the run beats the constant predictor and its scores neither collapse
    (spread >= :data:`MIN_SCORE_SPREAD`) nor pile up (identical fraction <= :data:`MAX_IDENTICAL_FRACTION`).

Runs that fail the gate are kept on disk and in the tables, flagged; statistics leave them out and
say how many (:mod:`alertlib.report`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

MIN_SCORE_SPREAD = 0.01  # below this standard deviation the scores have collapsed onto one value
MAX_IDENTICAL_FRACTION = 0.2  # above this fraction of equal scores the head is (partly) dead
THRESHOLD = 0.5


def constant_binary_loss(labels: np.ndarray, pos_weight: float) -> float:
    """The validation BCE (with ``pos_weight``) of the best constant prediction."""
    labels = np.asarray(labels, dtype=float)
    p = labels.mean()
    if p in (0.0, 1.0):
        return 0.0
    q = pos_weight * p / (pos_weight * p + 1 - p)  # the minimiser of -w p log q - (1 - p) log(1 - q)
    return float(-(pos_weight * p * np.log(q) + (1 - p) * np.log(1 - q)))


def constant_multiclass_loss(labels: np.ndarray, class_weights: np.ndarray) -> float:
    """The validation weighted cross-entropy (PyTorch's mean over weights) of the best constant prediction."""
    labels = np.asarray(labels, dtype=int)
    weights = np.asarray(class_weights, dtype=float)
    mass = np.bincount(labels, minlength=len(weights)) * weights
    if mass.sum() == 0:
        return 0.0
    share = mass / mass.sum()
    present = share > 0
    return float(-(share[present] * np.log(share[present])).sum())


def score_checks(scores: np.ndarray) -> dict[str, float]:
    """Spread, piling-up and one-sidedness of validation scores.

    ``scores``: probabilities of the positive class (N,), or class probabilities (N, K) of a
    multi-class model (spread: the mean over classes of each class probability's standard
    deviation; piling-up: identical probability vectors; one-sided: a single predicted class).
    """
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0:
        return {"val_score_spread": np.nan, "val_identical_fraction": np.nan, "val_one_sided": np.nan}
    rounded = np.round(scores, 6).reshape(len(scores), -1)
    _, counts = np.unique(rounded, axis=0, return_counts=True)
    if scores.ndim == 1:
        spread = scores.std()
        one_sided = bool((scores >= THRESHOLD).all() or (scores < THRESHOLD).all())
    else:
        spread = scores.std(axis=0).mean()
        one_sided = len(np.unique(scores.argmax(axis=1))) == 1
    return {
        "val_score_spread": float(spread),
        "val_identical_fraction": float(counts.max() / len(scores)),
        "val_one_sided": float(one_sided),
    }


@torch.no_grad()
def dead_unit_fraction(model: nn.Module, images, batch_size: int = 256) -> float:
    """The fraction of post-ReLU units in ``model.head`` that are zero for every one of ``images``
    (a tensor, or the tuple ``(images, features)`` of an image + metadata model)."""
    head = getattr(model, "head", None)
    relus = [m for m in head.modules() if isinstance(m, nn.ReLU)] if head is not None else []
    if not relus:
        return np.nan
    alive: dict[int, torch.Tensor] = {}

    def record(index):
        def hook(module, inputs, output):
            active = (output > 0).reshape(output.shape[0], -1).any(dim=0)
            alive[index] = active if index not in alive else alive[index] | active

        return hook

    handles = [relu.register_forward_hook(record(i)) for i, relu in enumerate(relus)]
    was_training = model.training
    model.eval()
    try:
        parts = images if isinstance(images, (tuple, list)) else (images,)
        for batch in zip(*(part.split(batch_size) for part in parts), strict=True):
            model(*batch)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    total = sum(a.numel() for a in alive.values())
    return float(sum((~a).sum().item() for a in alive.values()) / total) if total else np.nan


def gate(best_val_loss: float, constant_loss: float, checks: dict[str, float]) -> dict[str, float]:
    """The gate's verdict on a run from its best validation loss and its score checks."""
    beats = bool(np.isfinite(best_val_loss) and best_val_loss < constant_loss)
    spread_ok = not (checks["val_score_spread"] < MIN_SCORE_SPREAD)
    piled = checks["val_identical_fraction"] > MAX_IDENTICAL_FRACTION
    return {
        "val_constant_loss": float(constant_loss),
        "gate_beats_constant": float(beats),
        "gate_passed": float(beats and spread_ok and not piled),
    }
