"""Intervals and tests for comparisons over independent replicates, and the multiplicity control.

A study replicate (a *seed*) draws its own simulated sky, split and test set and trains every model
on it. A comparison of two models (a *contrast*: treatment minus baseline, paired by replicate) has
two sources of noise: the training (initialisation, data order, the sky the model learned from) and
the finite test set. Both enter each replicate's difference, so the differences of independent
replicates are independent draws of the same quantity.

- :func:`t_interval`: Student's t interval and two-sided p-value of the mean difference over
  replicates (:func:`scipy.stats.ttest_1samp`). Exact for normal differences, it stays honest with
  three replicates (its width grows with ``t(0.975, n-1)``), where a percentile bootstrap of three
  numbers returns about their range and covers about 75% (``tests/test_intervals.py`` measures both).
- :func:`hierarchical_bootstrap`: resample replicates, then test sources within each replicate
  (all alerts of a source together), and recompute the metric of both models: the interval says
  how much of the spread comes from the test set. With few replicates it covers less than its
  nominal level when replicates differ much; it is reported beside the t interval, never instead.
- :func:`holm`: Holm's step-down adjustment of the p-values of the primary contrasts (a family
  stated in the profile before the run), controlling the family-wise error rate.

Metrics resampled here are computed with per-alert weights (a source drawn twice counts twice):
:func:`weighted_roc_auc` and :func:`weighted_average_precision`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
# Values whose range is below this fraction of their magnitude differ by rounding only (e.g. equal
# differences of metrics computed from different numbers): they have no spread.
NEGLIGIBLE_SPREAD = 1e-9


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval and two-sided p-value for 'no difference'."""

    estimate: float
    low: float
    high: float
    p_value: float
    n: int
    method: str


def t_interval(differences: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean of the per-replicate differences with Student's t interval and p-value (``n - 1`` df).

    Non-finite values are left out. With fewer than two values the interval and p-value are NaN.
    Values without spread (equal up to rounding, :data:`NEGLIGIBLE_SPREAD`) give a zero-width
    interval and p-value 0 (1 when they are all zero).
    """
    values = np.asarray([d for d in differences if np.isfinite(d)], dtype=float)
    n = len(values)
    if n < 2:
        estimate = float(values[0]) if n else np.nan
        return Interval(estimate, np.nan, np.nan, np.nan, n, "t")
    if np.ptp(values) <= NEGLIGIBLE_SPREAD * np.max(np.abs(values)):  # no spread: the t statistic is undefined
        mean = float(values.mean())
        return Interval(mean, mean, mean, 0.0 if mean else 1.0, n, "t")
    result = stats.ttest_1samp(values, 0.0)
    low, high = result.confidence_interval(confidence)
    return Interval(float(values.mean()), float(low), float(high), float(result.pvalue), n, "t")


def weighted_roc_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float:
    """ROC AUC with per-alert weights: the weighted probability that a positive outscores a negative
    (ties count one half). NaN without both classes."""
    labels, scores, weights = np.asarray(labels), np.asarray(scores, dtype=float), np.asarray(weights, dtype=float)
    positive = labels == 1
    w_pos, w_neg = weights[positive].sum(), weights[~positive].sum()
    if w_pos <= 0 or w_neg <= 0:
        return np.nan
    order = np.argsort(scores, kind="mergesort")
    s, y, w = scores[order], positive[order], weights[order]
    # Negatives' weight strictly below each score, plus half of the negatives tied with it.
    neg_w = np.where(y, 0.0, w)
    unique, start = np.unique(s, return_index=True)
    tied_neg = np.add.reduceat(neg_w, start)
    below = np.concatenate([[0.0], np.cumsum(tied_neg)[:-1]])
    group = np.searchsorted(unique, s)
    wins = below[group] + 0.5 * tied_neg[group]
    return float((w * y * wins).sum() / (w_pos * w_neg))


def weighted_average_precision(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float:
    """Average precision (area under precision-recall, step-wise as scikit-learn) with per-alert weights."""
    from sklearn.metrics import average_precision_score

    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return np.nan
    return float(average_precision_score(labels, scores, sample_weight=weights))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "roc_auc": weighted_roc_auc,
    "average_precision": weighted_average_precision,
}


def _source_weights(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-alert weights of one bootstrap draw of sources (each source's count of draws)."""
    unique, inverse = np.unique(groups, return_inverse=True)
    counts = np.bincount(rng.integers(0, len(unique), len(unique)), minlength=len(unique))
    return counts[inverse].astype(float)


def _finite_mean(values) -> float:
    """The mean of the finite values (a draw of sources of one class has no AUC); NaN when none is."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else np.nan


def _replicate_draws(replicates: list[dict], statistic, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap draws of the mean over replicates of ``statistic(replicate, weights)``: replicates
    are drawn with replacement, then the groups (sources, objects) of each drawn replicate."""
    draws = np.empty(n_boot)
    for i in range(n_boot):
        picked = rng.integers(0, len(replicates), len(replicates))
        draws[i] = _finite_mean(
            [statistic(replicates[k], _source_weights(replicates[k]["group"], rng)) for k in picked]
        )
    return draws


def _arrays(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, np.ndarray]:
    return {column: frame[column].to_numpy() for column in columns}


def hierarchical_bootstrap(
    replicates: Sequence[pd.DataFrame],
    metric: str = "roc_auc",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Percentile interval of the mean treatment-minus-baseline difference, resampling replicates and
    then test sources within each.

    Each replicate is a frame of its test alerts with ``label``, ``group`` (the source),
    ``treatment`` and ``baseline`` (the two models' scores on the same alerts).
    """
    score = METRICS[metric]
    arrays = [_arrays(r, ("label", "group", "treatment", "baseline")) for r in replicates]

    def difference(r: dict, weights: np.ndarray) -> float:
        return score(r["label"], r["treatment"], weights) - score(r["label"], r["baseline"], weights)

    observed = np.mean([difference(r, np.ones(len(r["label"]))) for r in arrays])
    draws = _replicate_draws(arrays, difference, n_boot, np.random.default_rng(seed))
    alpha = 1.0 - confidence
    low, high = np.nanquantile(draws, [alpha / 2, 1 - alpha / 2])
    p_value = min(1.0, 2 * min(np.mean(draws <= 0), np.mean(draws >= 0)))
    return Interval(float(observed), float(low), float(high), float(p_value), len(arrays), "hierarchical bootstrap")


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN).

    The i-th smallest of m p-values is multiplied by ``m - i`` (0-based i), the running maximum is
    kept so that the adjusted values are monotone, and they are capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    finite = np.flatnonzero(np.isfinite(p))
    adjusted = np.full_like(p, np.nan)
    if finite.size == 0:
        return adjusted
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def bootstrap_metric(
    replicates: Sequence[pd.DataFrame],
    metric: str = "roc_auc",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Percentile interval of one model's metric, averaged over replicates, resampling replicates and
    then groups (objects) within each, as :func:`hierarchical_bootstrap` does for a difference.

    Each replicate is a frame with ``label``, ``group`` and ``score``. The p-value is that of
    'no better than chance' for ROC AUC (the share of draws at or below 0.5), NaN for other metrics.
    """
    score = METRICS[metric]
    arrays = [_arrays(r, ("label", "group", "score")) for r in replicates]

    def value(r: dict, weights: np.ndarray) -> float:
        return score(r["label"], r["score"], weights)

    observed = _finite_mean([value(r, np.ones(len(r["label"]))) for r in arrays])
    draws = _replicate_draws(arrays, value, n_boot, np.random.default_rng(seed))
    if not np.isfinite(draws).any():
        return Interval(observed, np.nan, np.nan, np.nan, len(arrays), "hierarchical bootstrap")
    alpha = 1.0 - confidence
    low, high = np.nanquantile(draws, [alpha / 2, 1 - alpha / 2])
    p_value = float(np.mean(draws <= 0.5)) if metric == "roc_auc" else np.nan
    return Interval(observed, float(low), float(high), p_value, len(arrays), "hierarchical bootstrap")
