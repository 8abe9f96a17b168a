"""Few-shot splits: k objects per class for training, no object on both sides, paired across inits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alertlib.core.errors import DataError
from alertlib.learn.fewshot import corrected_t_interval, largest_k, object_splits


def _candidates() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for label, n_objects in ((1, 12), (0, 30)):
        for i in range(n_objects):
            for _ in range(rng.integers(1, 5)):
                rows.append({"objectId": f"{label}-{i}", "label": label})
    return pd.DataFrame(rows)


def test_no_object_on_both_sides_and_k_per_class():
    candidates = _candidates()
    splits = object_splits(candidates, ks=[2, 5, "all", 50], repetitions=5, seed=1)
    assert sorted({s.k for s in splits}) == [2, 5, largest_k(candidates)] == [2, 5, 7]  # 50 is too many
    for split in splits:
        train_objects = set(candidates.loc[split.train, "objectId"])
        test_objects = set(candidates.loc[split.test, "objectId"])
        assert not train_objects & test_objects
        assert len(split.train) + len(split.test) == len(candidates)  # every alert of an object goes with it
        per_class = candidates.loc[split.train].groupby("label")["objectId"].nunique()
        assert per_class.tolist() == [split.k, split.k]
    # Repetitions differ; the same call gives the same splits (every initialisation sees them).
    first = [s.train.tolist() for s in splits if s.k == 5]
    assert len({tuple(t) for t in first}) == 5
    again = object_splits(candidates, ks=[5], repetitions=5, seed=1)
    assert [s.train.tolist() for s in again] == first


def test_objects_with_two_classes_are_refused():
    candidates = pd.DataFrame({"objectId": ["a", "a", "b"], "label": [1, 0, 0]})
    with pytest.raises(DataError, match="several classes"):
        object_splits(candidates, ks=[1], repetitions=1)


def test_corrected_t_interval_is_wider_than_the_naive_one():
    values = [0.70, 0.74, 0.72, 0.69, 0.75]
    mean, low, high, p = corrected_t_interval(values, n_train=20, n_test=80)
    naive = 2.7764451051977987 * np.std(values, ddof=1) / np.sqrt(5)
    assert mean == pytest.approx(0.72) and (high - low) / 2 > 2 * naive and p < 0.05


def test_corrected_t_interval_is_cut_to_what_the_quantity_can_take():
    values = [0.3, 0.9, 0.6, 0.95, 0.4]  # ROC AUCs of five k = 2 repetitions: 4 training objects, 60 test
    mean, low, high, _ = corrected_t_interval(values, n_train=4, n_test=60)
    assert low < 0.0 and high > 1.0  # the corrected interval alone reaches past [0, 1]
    assert corrected_t_interval(values, n_train=4, n_test=60, bounds=(0.0, 1.0))[:3] == (mean, 0.0, 1.0)
