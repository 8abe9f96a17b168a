"""Intervals over independent replicates: correct metrics, Holm's adjustment, and coverage measured on
synthetic studies where the true difference is known."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from alertlib.report.intervals import (
    hierarchical_bootstrap,
    holm,
    t_interval,
    weighted_average_precision,
    weighted_roc_auc,
)


def test_weighted_metrics_equal_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: many ties
    weights = rng.integers(0, 4, 400).astype(float)
    assert weighted_roc_auc(labels, scores, np.ones(400)) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert weighted_roc_auc(labels, scores, weights) == pytest.approx(
        roc_auc_score(labels, scores, sample_weight=weights), abs=1e-12
    )
    assert weighted_average_precision(labels, scores, weights) == pytest.approx(
        average_precision_score(labels, scores, sample_weight=weights)
    )
    assert np.isnan(weighted_roc_auc(np.ones(5), np.arange(5.0), np.ones(5)))


def test_holm_adjustment():
    adjusted = holm([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[3])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]


def test_t_interval_is_students():
    interval = t_interval([0.01, 0.03, 0.02])
    half = 4.302652729911275 * 0.01 / np.sqrt(3)  # t(0.975, 2) x sd / sqrt(n)
    assert interval.estimate == pytest.approx(0.02)
    assert (interval.low, interval.high) == pytest.approx((0.02 - half, 0.02 + half))
    assert t_interval([0.1]).n == 1 and np.isnan(t_interval([0.1]).low)


def test_t_interval_of_values_equal_up_to_rounding_has_zero_width():
    # Equal differences of metrics computed from different numbers differ in the last bits only.
    differences = [0.80 - 0.75, 0.83 - 0.78, 0.81 - 0.76]
    assert len(set(differences)) > 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy warns of catastrophic cancellation on such values
        interval = t_interval(differences)
    assert interval.low == interval.estimate == interval.high == pytest.approx(0.05)
    assert interval.p_value == 0.0
    assert t_interval([0.0, 0.0, 0.0]).p_value == 1.0


# --- coverage on synthetic studies ----------------------------------------------------------------------
# A replicate trains two models whose true separations (d_T, d_B) vary from replicate to replicate
# (training noise, sd TAU), and tests them on a fresh test set of sources (1 to 5 alerts each, a
# source effect shared by its alerts). The estimand is the expected AUC difference over replicates
# and test sets, computed once with many replicates on large test sets.
D_TREATMENT, D_BASELINE, TAU = 1.2, 1.0, 0.15


def _test_set(rng, n_sources: int, d_treatment: float, d_baseline: float) -> pd.DataFrame:
    labels = (rng.random(n_sources) < 0.25).astype(int)
    alerts = rng.integers(1, 6, n_sources)
    source = np.repeat(np.arange(n_sources), alerts)
    y = labels[source]
    shared = rng.normal(0, 0.7, n_sources)[source]
    return pd.DataFrame(
        {
            "label": y,
            "group": source,
            "treatment": d_treatment * y + shared + rng.normal(0, 1, len(y)),
            "baseline": d_baseline * y + shared + rng.normal(0, 1, len(y)),
        }
    )


def _replicate(rng, n_sources: int) -> pd.DataFrame:
    return _test_set(rng, n_sources, D_TREATMENT + rng.normal(0, TAU), D_BASELINE + rng.normal(0, TAU))


def _difference(frame: pd.DataFrame) -> float:
    ones = np.ones(len(frame))
    return weighted_roc_auc(frame.label, frame.treatment, ones) - weighted_roc_auc(frame.label, frame.baseline, ones)


@pytest.fixture(scope="module")
def true_difference() -> float:
    rng = np.random.default_rng(12345)
    return float(np.mean([_difference(_replicate(rng, 20_000)) for _ in range(200)]))


def test_t_intervals_over_three_replicates_cover_95_percent(true_difference):
    rng = np.random.default_rng(1)
    repetitions, covered, percentile_covered = 1000, 0, 0
    for _ in range(repetitions):
        differences = [_difference(_replicate(rng, 300)) for _ in range(3)]
        interval = t_interval(differences)
        covered += interval.low <= true_difference <= interval.high
        # The old method: a percentile bootstrap of the mean of three numbers.
        means = rng.choice(differences, (2000, 3)).mean(axis=1)
        low, high = np.quantile(means, [0.025, 0.975])
        percentile_covered += low <= true_difference <= high
    coverage = covered / repetitions
    assert 0.92 <= coverage <= 0.98, coverage
    assert percentile_covered / repetitions < 0.85  # why the percentile bootstrap over seeds was replaced


@pytest.mark.slow
def test_hierarchical_bootstrap_is_wider_than_the_test_noise_alone(true_difference):
    rng = np.random.default_rng(2)
    replicates = [_replicate(rng, 300) for _ in range(3)]
    interval = hierarchical_bootstrap(replicates, n_boot=300, seed=0)
    assert interval.low < interval.estimate < interval.high
    assert interval.n == 3 and 0.0 <= interval.p_value <= 1.0
    # One replicate's test set alone gives a narrower interval than replicates and test sets together.
    single = hierarchical_bootstrap(replicates[:1] * 3, n_boot=300, seed=0)
    assert (interval.high - interval.low) > 0.5 * (single.high - single.low)
