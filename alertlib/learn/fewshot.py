"""Few-shot splits of a labelled real set: k training objects per class, the rest for testing.

The real-data question of the study is the paper's data-efficiency question asked on real alerts:
how well does a model fine-tuned from each initialisation do with k labelled objects per class?
:func:`object_splits` draws, for each repetition, k objects of each class for training (every
alert of a chosen object goes with it) and keeps every other object of those classes for testing,
so that no object is on both sides. Repetitions differ by their seed; the same (k, repetition) split
serves every initialisation, so differences between initialisations are paired.

Repetitions reuse objects, so their results are not independent: the learning-curve intervals use
the corrected resampled t interval (Nadeau and Bengio 2003), which inflates the variance over
repetitions by ``1 + J n_test / n_train`` (:func:`corrected_t_interval`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from alertlib.core.errors import DataError


@dataclass(frozen=True)
class FewShotSplit:
    """Row indices of the training and test alerts of one (k, repetition)."""

    k: int
    repetition: int
    train: np.ndarray
    test: np.ndarray


def largest_k(candidates: pd.DataFrame, class_column: str = "label", min_test_objects: int = 5) -> int:
    """The largest k that leaves at least ``min_test_objects`` test objects in every class."""
    objects = candidates.groupby(class_column)["objectId"].nunique()
    return int(objects.min() - min_test_objects)


def object_splits(
    candidates: pd.DataFrame,
    ks,
    repetitions: int,
    seed: int = 0,
    class_column: str = "label",
    min_test_objects: int = 5,
) -> list[FewShotSplit]:
    """Object-grouped few-shot splits (see the module docstring).

    ``candidates`` holds the labelled alerts only (``objectId`` and ``class_column``); an object
    must have one class. ``ks`` may contain ``"all"``: the largest k that leaves
    ``min_test_objects`` test objects per class (:func:`largest_k`). A k above that is left out.
    """
    classes_of = candidates.groupby("objectId")[class_column].nunique()
    if (classes_of > 1).any():
        raise DataError(f"objects with alerts of several classes: {list(classes_of[classes_of > 1].index[:5])}")
    limit = largest_k(candidates, class_column, min_test_objects)
    if limit < 1:
        raise DataError(f"too few labelled objects for few-shot splits (per class: leave {min_test_objects} to test)")
    wanted = sorted({limit if k == "all" else int(k) for k in ks})
    object_class = candidates.groupby("objectId")[class_column].first()
    rows_of = candidates.groupby("objectId").indices
    splits = []
    for k in (k for k in wanted if k <= limit):
        for repetition in range(repetitions):
            rng = np.random.default_rng([seed, k, repetition])
            chosen = []
            for _, objects in object_class.groupby(object_class):
                names = np.sort(objects.index.to_numpy())
                chosen.extend(rng.choice(names, size=k, replace=False))
            train_objects = set(chosen)
            train = np.sort(np.concatenate([rows_of[o] for o in train_objects]))
            test = np.sort(np.concatenate([rows for o, rows in rows_of.items() if o not in train_objects]))
            splits.append(FewShotSplit(k, repetition, train, test))
    return splits


def corrected_t_interval(
    values,
    n_train: float,
    n_test: float,
    confidence: float = 0.95,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[float, float, float, float]:
    """Mean, interval and two-sided p-value over J resampled splits, with Nadeau and Bengio's correction.

    The variance of the mean over J train/test resamplings of one data set is underestimated by
    ``s^2 / J``; the corrected variance is ``s^2 (1 / J + n_test / n_train)``. With a few training
    alerts and many test ones (k = 2 in the default study: 5 against 180) the factor is large and
    the interval can reach past what the quantity can take: it is cut to ``bounds`` (an ROC AUC lies
    in [0, 1], a difference of two in [-1, 1]), which loses no coverage.
    """
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    j = len(values)
    if j < 2:
        return (float(values.mean()) if j else np.nan, np.nan, np.nan, np.nan)
    mean, sd = values.mean(), values.std(ddof=1)
    se = sd * np.sqrt(1.0 / j + n_test / n_train)
    if se == 0:
        return float(mean), float(mean), float(mean), 0.0 if mean else 1.0
    half = stats.t.ppf(0.5 + confidence / 2, j - 1) * se
    p = 2 * stats.t.sf(abs(mean) / se, j - 1)
    low, high = max(mean - half, bounds[0]), min(mean + half, bounds[1])
    return float(mean), float(low), float(high), float(p)
