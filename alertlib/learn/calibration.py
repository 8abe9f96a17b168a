"""Calibrated scores: temperature scaling fitted on the validation split, calibration error, reliability bins.

A fine-tuned model's scores are probabilities only when they are calibrated: of the alerts scored
0.8, about 80% should be positives. Temperature scaling (Guo et al. 2017) divides the logits by one
number ``T`` fitted on the validation split by minimising the negative log-likelihood: binary scores
become ``sigmoid(logit / T)``, multi-class ones ``softmax(logits / T)``. It changes no ranking (ROC
AUC, the top class and the 0.5 threshold stay the same), only how far scores are from 0 and 1.

- :func:`fit_temperature`: ``T`` from validation logits and labels, or ``T = 1`` with the reason
  when the split cannot say (no alerts, one class, non-finite logits, a fit that runs off);
- :func:`expected_calibration_error`: torchmetrics' ECE (equal-width bins, top-1 confidence for
  multi-class models, the score of class 1 for binary ones);
- :func:`reliability_bins`: the bins of a reliability diagram, the same bins torchmetrics uses
  (their weighted gaps sum to its ECE);
- :func:`calibration_of`: ``T`` from validation logits, and the ECE and NLL before and after on the
  validation and test splits (:class:`Calibration`, what ``calibration.json`` records).

A fine-tuned model is calibrated by :mod:`alertlib.learn.calibrate` (after fine-tuning, or post hoc
for a finished run folder); this module only computes, so that reports can use it.

Test-split numbers come from ``predictions_test.parquet``: its scores are the uncalibrated ones,
turned back into logits (``log(p / (1 - p))``, or ``log p`` for softmax scores, which differ from the
logits by a constant per alert that softmax ignores) and rescaled by ``T``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

N_BINS = 15  # torchmetrics' default
TEMPERATURE_BOUNDS = (1e-2, 1e2)  # a fit outside these says more about the split than about the model
PROBABILITY_FLOOR = 1e-7  # float32 scores saturate at 1: logits recovered from them are clipped here
CALIBRATION_FILE = "calibration.json"
FITTED = "fitted"
UNCALIBRATED = "uncalibrated"


@dataclass(frozen=True)
class Temperature:
    """A fitted temperature (``status`` :data:`FITTED`), or 1 with the reason it was not fitted."""

    value: float = 1.0
    status: str = UNCALIBRATED
    reason: str = ""


# ----------------------------------------------------------------------------------------------
# Logits, probabilities and the likelihood
# ----------------------------------------------------------------------------------------------


def _logits_2d(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return logits.reshape(-1, 1) if logits.ndim == 1 else logits


def probabilities(logits, temperature: float = 1.0) -> np.ndarray:
    """Scores at ``temperature``: sigmoid of a single logit column (N,), softmax of several (N, K)."""
    import torch

    scaled = torch.from_numpy(_logits_2d(logits) / temperature)
    if scaled.shape[1] == 1:
        return torch.sigmoid(scaled[:, 0]).numpy()
    return torch.softmax(scaled, dim=1).numpy()


def logits_from_scores(scores) -> np.ndarray:
    """Logits that give ``scores``: ``log(p / (1 - p))`` of binary scores (N, 1); ``log p`` of softmax scores (N, K)."""
    scores = np.clip(np.asarray(scores, dtype=np.float64), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    if scores.ndim == 1:
        return (np.log(scores) - np.log1p(-scores)).reshape(-1, 1)
    return np.log(scores)


def rescale_scores(scores, temperature: float) -> np.ndarray:
    """Uncalibrated scores (sigmoid (N,) or softmax (N, K)) as they are at ``temperature``."""
    return probabilities(logits_from_scores(scores), temperature)


def negative_log_likelihood(logits, labels, temperature: float = 1.0) -> float:
    """Mean NLL of integer ``labels`` under ``logits / temperature`` (binary cross-entropy for one column)."""
    import torch
    import torch.nn.functional as F

    scaled = torch.from_numpy(_logits_2d(logits) / temperature)
    target = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if scaled.shape[1] == 1:
        return float(F.binary_cross_entropy_with_logits(scaled[:, 0], target.double()))
    return float(F.cross_entropy(scaled, target))


# ----------------------------------------------------------------------------------------------
# Fitting the temperature
# ----------------------------------------------------------------------------------------------


def _why_not_fit(logits: np.ndarray, labels: np.ndarray) -> str:
    """Why a split cannot fit a temperature ('' when it can)."""
    if len(logits) == 0:
        return "no validation alerts"
    if not np.isfinite(logits).all():
        return "non-finite validation logits"
    if len(np.unique(labels)) < 2:
        return "the validation labels hold one class only"
    return ""


def _minimise_log_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """argmin over log T of the NLL (LBFGS with a strong Wolfe line search, float64)."""
    import torch
    import torch.nn.functional as F

    values = torch.from_numpy(logits)
    target = torch.as_tensor(labels, dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        scaled = values * torch.exp(-log_t)
        if scaled.shape[1] == 1:
            loss = F.binary_cross_entropy_with_logits(scaled[:, 0], target.double())
        else:
            loss = F.cross_entropy(scaled, target)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_t.detach()[0])


def fit_temperature(logits, labels) -> Temperature:
    """The temperature that minimises the NLL of ``labels`` under ``logits / T`` (validation split).

    Parameters
    ----------
    logits:
        (N,) or (N, 1) logits of a binary model, (N, K) of a multi-class one.
    labels:
        (N,) integer labels (0/1, or class indices).

    Returns
    -------
    Temperature
        ``FITTED`` with ``T`` in :data:`TEMPERATURE_BOUNDS`; otherwise ``T = 1``, ``UNCALIBRATED``, and
        the reason (no alerts, one class, non-finite logits, a fit that runs off the bounds or does
        not lower the NLL).
    """
    logits, labels = _logits_2d(logits), np.asarray(labels).astype(int)
    reason = _why_not_fit(logits, labels)
    if reason:
        return Temperature(reason=reason)
    value = math.exp(_minimise_log_temperature(logits, labels))
    low, high = TEMPERATURE_BOUNDS
    if not (math.isfinite(value) and low <= value <= high):
        return Temperature(reason=f"the fit ran off to T={value:.3g}, outside [{low:g}, {high:g}]")
    before, after = negative_log_likelihood(logits, labels), negative_log_likelihood(logits, labels, value)
    if not after <= before + 1e-9:
        return Temperature(reason=f"the fit did not lower the validation NLL ({before:.4f} -> {after:.4f})")
    return Temperature(value, FITTED)


# ----------------------------------------------------------------------------------------------
# Calibration error and reliability bins
# ----------------------------------------------------------------------------------------------


def expected_calibration_error(scores, labels, n_bins: int = N_BINS) -> float:
    """torchmetrics' expected calibration error (L1) of scores (N,) (binary) or (N, K) (multi-class)."""
    import torch
    from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

    scores = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    target = torch.as_tensor(np.asarray(labels).astype(int))
    if len(target) == 0:
        return float("nan")
    if scores.ndim == 1:
        return float(binary_calibration_error(scores, target, n_bins=n_bins))
    return float(multiclass_calibration_error(scores, target, num_classes=scores.shape[1], n_bins=n_bins))


def confidences(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """What a reliability diagram plots: (confidence, outcome) per alert.

    Binary: the score against the label (is it a positive?). Multi-class: the top probability
    against whether the top class is the label (as torchmetrics counts them).
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    if scores.ndim == 1:
        return scores, labels.astype(np.float64)
    return scores.max(axis=1), (scores.argmax(axis=1) == labels).astype(np.float64)


def reliability_bins(scores, labels, n_bins: int = N_BINS) -> pd.DataFrame:
    """The bins of a reliability diagram: one row per equal-width bin of confidence.

    Columns: ``low``, ``high`` (edges), ``alerts``, ``weight`` (fraction of alerts), ``confidence``
    (mean confidence), ``observed`` (fraction of positives, or of correct top classes). Bins are
    ``[low, high)`` as torchmetrics buckets them, with a last bin ``[1, 1]`` for confidences of exactly
    1, so that ``sum(weight * |observed - confidence|)`` is its ECE (:func:`ece_of_bins`).
    """
    confidence, outcome = confidences(scores, labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.searchsorted(edges, confidence, side="right") - 1
    counts = np.bincount(index, minlength=n_bins + 1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, minlength=n_bins + 1) / counts
        observed = np.bincount(index, outcome, minlength=n_bins + 1) / counts
    return pd.DataFrame(
        {
            "low": edges,
            "high": np.append(edges[1:], 1.0),
            "alerts": counts.astype(int),
            "weight": counts / max(counts.sum(), 1.0),
            "confidence": mean_confidence,
            "observed": observed,
        }
    )


def ece_of_bins(bins: pd.DataFrame) -> float:
    """The expected calibration error of reliability bins: the alert-weighted mean |observed - confidence|."""
    gaps = (bins["observed"] - bins["confidence"]).abs().fillna(0.0)
    return float((bins["weight"] * gaps).sum())


# ----------------------------------------------------------------------------------------------
# A fine-tuned model's calibration
# ----------------------------------------------------------------------------------------------


@dataclass
class Calibration:
    """A run's temperature, and its ECE and NLL before and after scaling (validation and test splits)."""

    temperature: Temperature
    numbers: dict = field(default_factory=dict)

    def checkpoint_fields(self) -> dict:
        """What ``model.pt`` records (:func:`alertlib.learn.inference.load_model` reads it)."""
        return {
            "temperature": self.temperature.value,
            "temperature_status": self.temperature.status,
            "temperature_reason": self.temperature.reason,
        }

    def record(self) -> dict:
        """The content of ``calibration.json``."""
        return {**asdict(self.temperature), "n_bins": N_BINS, **self.numbers}


def prediction_scores(predictions: pd.DataFrame, class_names) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) of ``predictions_test.parquet``: ``score`` (N,) or the ``prob_<class>`` columns (N, K)."""
    if class_names:
        return predictions[[f"prob_{name}" for name in class_names]].to_numpy(), predictions["label"].to_numpy()
    return predictions["score"].to_numpy(), predictions["label"].to_numpy()


def split_numbers(split: str, logits, labels, temperature: float) -> dict:
    """ECE and NLL of one split before and after scaling by ``temperature`` (keys ``<split>_ece_before`` ...)."""
    labels = np.asarray(labels).astype(int)
    numbers = {f"{split}_alerts": len(labels)}
    for when, value in (("before", 1.0), ("after", temperature)):
        numbers[f"{split}_ece_{when}"] = expected_calibration_error(probabilities(logits, value), labels)
        numbers[f"{split}_nll_{when}"] = negative_log_likelihood(logits, labels, value) if len(labels) else math.nan
    return numbers


def calibration_of(val_logits, val_labels, predictions: pd.DataFrame, class_names, temperature=None) -> Calibration:
    """Fit ``T`` on validation logits (unless ``temperature`` is given) and measure both splits."""
    temperature = fit_temperature(val_logits, val_labels) if temperature is None else temperature
    scores, labels = prediction_scores(predictions, class_names)
    numbers = split_numbers("val", val_logits, val_labels, temperature.value)
    numbers |= split_numbers("test", logits_from_scores(scores), labels, temperature.value)
    return Calibration(temperature, numbers)
