"""Metrics: alert level, multi-class, and the source-level policies in peak-magnitude bins."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alertlib.learn.metrics import binary_metrics, multiclass_metrics, policy_metrics, source_policy_flags


def test_binary_metrics_by_hand():
    labels = [1, 1, 1, 0, 0, 0, 0, 0]
    scores = [0.9, 0.6, 0.2, 0.7, 0.1, 0.3, 0.4, 0.05]
    values = binary_metrics(labels, scores)
    # predictions at >= 0.5: 1 1 0 1 0 0 0 0 -> TP 2, FN 1, FP 1, TN 4
    assert values["precision"] == pytest.approx(2 / 3)
    assert values["recall"] == pytest.approx(2 / 3)
    assert values["f1"] == pytest.approx(2 / 3)
    assert values["accuracy_class1"] == pytest.approx(2 / 3)
    assert values["accuracy_class0"] == pytest.approx(4 / 5)
    assert values["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    # AUC: of 15 positive-negative pairs, the positive scores higher in 5 + 4 + 2 = 11.
    assert values["roc_auc"] == pytest.approx(11 / 15)
    assert math.isnan(binary_metrics([1, 1], [0.2, 0.9])["roc_auc"])


def test_multiclass_metrics_by_hand():
    labels = [0, 0, 1, 1, 2, 2]
    probabilities = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.8 + 0.2 / 3
    values = multiclass_metrics(labels, probabilities, ["trues", "dims", "vars"])
    assert values["accuracy"] == pytest.approx(4 / 6)
    assert values["accuracy_trues"] == 0.5 and values["accuracy_dims"] == 1.0 and values["accuracy_vars"] == 0.5
    # predictions 0 1 1 1 2 0: F1 per class 0.5 (P 1/2, R 1/2), 0.8 (P 2/3, R 1), 2/3 (P 1, R 1/2)
    f1 = [0.5, 0.8, 2 / 3]
    assert values["macro_f1"] == pytest.approx(np.mean(f1))


def _candidates():
    # Source A (true, peak 17.1): two alerts at 0.6 below 19 -> bts_p1, bts_p2 (reaches 18.4).
    # Source B (true, peak 18.3): one alert above 0.85 at 18.9 -> prod_p1, not prod_p2; one bts hit only.
    # Source C (false, peak 19.5): two alerts at 0.55 and 18.7/18.8 -> bts_p1 (a false positive), not bts_p2.
    # Source D (false, peak 18.0 but label 0): nothing flagged.
    rows = [
        ("A", 18.4, 17.1, 1, 0.6),
        ("A", 18.9, 17.1, 1, 0.6),
        ("B", 18.9, 18.3, 1, 0.9),
        ("B", 19.2, 18.3, 1, 0.95),
        ("C", 18.7, 19.5, 0, 0.55),
        ("C", 18.8, 19.5, 0, 0.55),
        ("D", 18.1, 18.0, 0, 0.1),
    ]
    frame = pd.DataFrame(rows, columns=["objectId", "magpsf", "peakmag", "label", "score"])
    return frame.drop(columns="score"), frame["score"].to_numpy()


def test_source_policies_by_hand():
    candidates, scores = _candidates()
    flags = source_policy_flags(candidates, scores).set_index("objectId")
    assert flags["bts_p1"].to_dict() == {"A": True, "B": False, "C": True, "D": False}
    assert flags["bts_p2"].to_dict() == {"A": True, "B": False, "C": False, "D": False}
    assert flags["prod_p1"].to_dict() == {"A": False, "B": True, "C": False, "D": False}
    assert flags["prod_p2"].to_dict() == {"A": False, "B": False, "C": False, "D": False}
    values = policy_metrics(candidates, scores, exclusions=False)
    assert values["bts_p1_completeness"] == 0.5 and values["bts_p1_purity"] == 0.5
    assert values["bts_p2_completeness"] == 0.5 and values["bts_p2_purity"] == 1.0
    assert values["bts_p1_completeness_17.00-17.25"] == 1.0
    assert values["bts_p1_completeness_18.25-18.50"] == 0.0
    assert math.isnan(values["bts_p1_completeness_17.50-17.75"])  # no true source in that bin
    assert len([k for k in values if k.startswith("prod_p2_purity_")]) == 6  # 17.0-18.5 by 0.25


def test_btsbot_exclusions_delays_and_source_ranking():
    candidates, scores = _candidates()
    candidates = candidates.assign(jd=[1.0, 3.0, 1.0, 2.0, 5.0, 6.0, 1.0])
    flags = source_policy_flags(candidates, scores).set_index("objectId")
    # B is true but never at 18.5 or brighter; D has a single alert: both are left out.
    assert flags["kept"].to_dict() == {"A": True, "B": False, "C": True, "D": False}
    assert flags.loc["A", "source_score"] == 0.6 and flags.loc["C", "source_score"] == 0.55  # second-highest
    values = policy_metrics(candidates, scores)
    assert values["sources_kept"] == 2 and values["sources_excluded"] == 2 and values["positive_sources"] == 1
    assert values["bts_p1_completeness"] == 1.0 and values["bts_p1_purity"] == 0.5
    assert values["bts_p1_delay_days"] == 2.0  # A fires at its second alert, two days after its first
    assert values["source_roc_auc"] == 1.0 and values["source_average_precision"] == 1.0


def test_policies_need_their_columns():
    candidates, scores = _candidates()
    with pytest.raises(KeyError, match="peakmag"):
        policy_metrics(candidates.drop(columns="peakmag"), scores)
