"""Claims a referee accepts: primary contrasts with Holm's adjustment, gate exclusions, sweep runs left out.

Every table here is a TEST FIXTURE made up in this file (``study_tables``, ``make_results`` of
``test_stats``): none of its numbers is a result of the study.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from test_stats import make_benchmark, make_results  # tests/ is on sys.path under pytest

from alertlib.learn.checks import MIN_SCORE_SPREAD
from alertlib.learn.metrics import POLICIES
from alertlib.report.claims import exploratory_comparisons, headline_table, primary_contrasts, verdict, verdicts
from alertlib.report.gate import gate_table
from alertlib.report.intervals import holm
from alertlib.report.policies import POLICY_TABLE_COLUMNS, policy_table
from alertlib.report.seeds import architecture_differences, paired_differences, summarise_over_seeds

SEEDS = range(5)
# The models of the fixture study and how well each separates the classes (logit units).
SEPARATION = {("btsbot_cnn", "scratch"): 0.8, ("resnet18", "scratch"): 1.0, ("resnet18", "galaxy_sim"): 1.6}
FAILED_RUN = ("resnet18", "scratch", 3)  # this run fails the validation gate (collapsed, piled-up scores)
GALAXY_VS_SCRATCH = {
    "name": "galaxy pre-training vs scratch (ResNet-18)",
    "task": "bts",
    "metric": "roc_auc",
    "treatment": {"arch": "resnet18", "init": "galaxy_sim"},
    "baseline": {"arch": "resnet18", "init": "scratch"},
}


def _run_rows(arch, init, seed, metrics: dict, lr_selected: bool = True, run_id: str | None = None) -> list[dict]:
    run_id = run_id or f"bts-{arch}-{init}-1.0-{seed}"
    base = {"run_id": run_id, "task": "bts", "arch": arch, "init": init, "weights_source": "none"}
    base |= {"train_fraction": 1.0, "seed": seed, "data_version": "fixture", "code_version": "fixture"}
    base |= {"wall_time_s": 1.0, "config": "{}", "lr_selected": lr_selected}
    return [{**base, "metric": name, "value": float(value)} for name, value in metrics.items()]


def _gate_metrics(failed: bool) -> dict:
    return {
        "gate_passed": 0.0 if failed else 1.0,
        "gate_beats_constant": 0.0 if failed else 1.0,
        "val_constant_loss": 0.9,
        "val_score_spread": MIN_SCORE_SPREAD / 10 if failed else 0.2,
        "val_identical_fraction": 0.9 if failed else 0.01,
        "val_one_sided": 1.0 if failed else 0.0,
        "dead_unit_fraction": 1.0 if failed else 0.1,
    }


def _policy_metrics(rng, positives: int) -> dict:
    metrics = {"source_roc_auc": rng.uniform(0.8, 0.9), "source_average_precision": rng.uniform(0.5, 0.7)}
    metrics |= {"positive_sources": positives, "sources_kept": 55, "sources_excluded": 5}
    for policy in POLICIES:
        metrics |= {f"{policy}_completeness": rng.uniform(0.6, 0.8), f"{policy}_purity": rng.uniform(0.5, 0.7)}
        metrics |= {f"{policy}_f1": rng.uniform(0.5, 0.7), f"{policy}_delay_days": rng.uniform(1, 3)}
    return metrics


def _test_alerts(rng) -> pd.DataFrame:
    """One replicate's test sky: 60 sources of 1 to 4 alerts, a quarter of them true."""
    labels = (rng.random(60) < 0.25).astype(int)
    source = np.repeat(np.arange(60), rng.integers(1, 5, 60))
    return pd.DataFrame({"objectId": [f"ZTF{s:04d}" for s in source], "label": labels[source]}).assign(
        candid=lambda frame: np.arange(len(frame)) + 10_000
    )


def _scored(alerts: pd.DataFrame, rng, separation: float, run: dict) -> pd.DataFrame:
    logits = separation * (2 * alerts["label"] - 1) + rng.normal(0, 1, len(alerts))
    return alerts.assign(score=1 / (1 + np.exp(-logits)), **run)


@pytest.fixture(scope="module")
def study_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test fixture: results (with gate and policy metrics) and the test predictions they come from,
    5 replicates of 3 models; one run fails the gate; one learning-rate sweep run not chosen."""
    rng = np.random.default_rng(0)
    rows, predictions = [], []
    for seed in SEEDS:
        alerts = _test_alerts(rng)
        positives = int(alerts.groupby("objectId")["label"].max().sum())
        for (arch, init), separation in SEPARATION.items():
            run = {"run_id": f"bts-{arch}-{init}-1.0-{seed}", "task": "bts", "arch": arch, "init": init}
            scored = _scored(alerts, rng, separation, {**run, "train_fraction": 1.0, "seed": seed})
            predictions.append(scored)
            metrics = {"roc_auc": roc_auc_score(scored["label"], scored["score"]), "f1": rng.uniform(0.5, 0.6)}
            metrics |= _gate_metrics((arch, init, seed) == FAILED_RUN) | _policy_metrics(rng, positives)
            rows += _run_rows(arch, init, seed, metrics)
        # A sweep run of galaxy_sim at another learning rate, not chosen: far worse, and to be ignored.
        sweep = {"run_id": f"sweep-{seed}", "task": "bts", "arch": "resnet18", "init": "galaxy_sim"}
        predictions.append(_scored(alerts, rng, -1.0, {**sweep, "train_fraction": 1.0, "seed": seed}))
        rows += _run_rows("resnet18", "galaxy_sim", seed, {"roc_auc": 0.1, **_gate_metrics(False)}, False, "sweep")
    results = pd.DataFrame(rows)
    results["run_id"] = np.where(
        results["run_id"] == "sweep", "sweep-" + results["seed"].astype(str), results["run_id"]
    )
    return results, pd.concat(predictions, ignore_index=True)


def _chosen(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["lr_selected"]].drop(columns="lr_selected")


# ------------------------------------------------------------------------------------------
# Gate exclusions and sweep runs
# ------------------------------------------------------------------------------------------


def test_summaries_leave_out_gate_failures_and_count_them(study_tables):
    results, _ = study_tables
    summary = summarise_over_seeds(results, ["roc_auc"]).set_index(["arch", "init"])
    scratch = summary.loc[("resnet18", "scratch")]
    assert (scratch["n_seeds"], scratch["n_failed_gate"], scratch["seeds"]) == (4, 1, "0,1,2,4")
    values = results[(results["run_id"].str.startswith("bts-resnet18-scratch")) & (results["metric"] == "roc_auc")]
    expected = values[values["seed"] != 3]["value"]
    assert scratch["mean"] == pytest.approx(expected.mean())
    interval = stats.ttest_1samp(expected, 0.0).confidence_interval(0.95)
    assert (scratch["ci_low"], scratch["ci_high"]) == pytest.approx((interval.low, interval.high))
    assert scratch["interval_method"] == "t"
    assert summary.loc[("resnet18", "galaxy_sim"), "n_failed_gate"] == 0
    pairs = paired_differences(results, ["roc_auc"]).iloc[0]
    assert (pairs["n_pairs"], pairs["n_failed_gate"], pairs["n_unpaired"]) == (4, 1, 1)
    versus_cnn = architecture_differences(results, ["roc_auc"]).set_index("init")
    assert versus_cnn.loc["scratch", "n_failed_gate"] == 1 and versus_cnn.loc["scratch", "n_pairs"] == 4


def test_sweep_runs_not_chosen_are_ignored(study_tables):
    results, predictions = study_tables
    chosen = _chosen(results)
    # Both sweep and chosen runs exist for galaxy_sim: counted twice, the table would "mix studies".
    pd.testing.assert_frame_equal(summarise_over_seeds(results), summarise_over_seeds(chosen))
    pd.testing.assert_frame_equal(gate_table(results), gate_table(chosen))
    with_sweep = primary_contrasts(results, predictions, [GALAXY_VS_SCRATCH], n_boot=50)
    without = primary_contrasts(chosen, predictions, [GALAXY_VS_SCRATCH], n_boot=50)
    pd.testing.assert_frame_equal(with_sweep, without)
    assert with_sweep["treatment_mean"].iloc[0] > 0.7  # not the sweep run's 0.1


def test_gate_table_says_who_failed_and_why(study_tables):
    results, _ = study_tables
    table = gate_table(results).set_index(["arch", "init"])
    scratch = table.loc[("resnet18", "scratch")]
    assert (scratch["runs"], scratch["failed"], scratch["failure_rate"]) == (5, 1, pytest.approx(0.2))
    assert (scratch["not_beating_constant"], scratch["collapsed_spread"], scratch["piled_up"]) == (1, 1, 1)
    assert scratch["failed_seeds"] == "3" and scratch["unchecked"] == 0
    assert scratch["why"] == "1 not beating constant; 1 collapsed spread; 1 piled up"
    assert scratch["dead_unit_fraction_max"] == 1.0
    assert scratch["dead_unit_fraction_mean"] == pytest.approx((4 * 0.1 + 1.0) / 5)
    assert scratch["val_score_spread_min"] == pytest.approx(MIN_SCORE_SPREAD / 10)
    galaxy = table.loc[("resnet18", "galaxy_sim")]
    assert (galaxy["runs"], galaxy["failed"], galaxy["failed_seeds"], galaxy["why"]) == (5, 0, "", "")
    # Results written before the gate existed: every run passes, counted as unchecked.
    old = make_results({("resnet18", "scratch", "roc_auc"): [0.8, 0.9]})
    assert gate_table(old)[["runs", "failed", "unchecked"]].iloc[0].tolist() == [2, 0, 2]


# ------------------------------------------------------------------------------------------
# Primary contrasts
# ------------------------------------------------------------------------------------------


def test_primary_contrast_pairs_by_replicate_and_bootstraps_the_predictions(study_tables):
    results, predictions = study_tables
    source = {**GALAXY_VS_SCRATCH, "name": "source ranking", "metric": "source_roc_auc"}
    table = primary_contrasts(results, predictions, [GALAXY_VS_SCRATCH, source], n_boot=200, seed=1)
    row = table.iloc[0]
    assert (row["treatment"], row["baseline"]) == ("resnet18 (galaxy_sim)", "resnet18 (scratch)")
    assert (row["n_replicates"], row["n_excluded"], row["excluded_seeds"], row["n_failed_gate"]) == (4, 1, "3", 1)
    auc = results[results["metric"] == "roc_auc"].set_index("run_id")["value"]
    differences = [auc[f"bts-resnet18-galaxy_sim-1.0-{s}"] - auc[f"bts-resnet18-scratch-1.0-{s}"] for s in (0, 1, 2, 4)]
    test = stats.ttest_1samp(differences, 0.0)
    assert row["difference"] == pytest.approx(np.mean(differences))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(test.confidence_interval(0.95)))
    assert row["p_value"] == pytest.approx(test.pvalue)
    # The bootstrap recomputes each replicate's AUCs from the predictions: the same difference.
    assert row["boot_difference"] == pytest.approx(row["difference"])
    assert row["boot_low"] < row["boot_difference"] < row["boot_high"] and 0.0 <= row["boot_p"] <= 1.0
    assert row["boot_note"].startswith("hierarchical bootstrap: 4 replicates")
    source_row = table.iloc[1]
    assert np.isfinite(source_row["difference"]) and np.isnan(source_row["boot_low"])
    assert "source-level" in source_row["boot_note"]
    without = primary_contrasts(results, None, [GALAXY_VS_SCRATCH])
    assert np.isnan(without["boot_low"].iloc[0]) and "no test predictions" in without["boot_note"].iloc[0]
    assert without["ci_low"].iloc[0] == row["ci_low"]  # the headline interval does not depend on the bootstrap
    # Without run ids the runs are found by their descriptors; the sweep's runs then make them ambiguous.
    chosen = primary_contrasts(_chosen(results), predictions.drop(columns="run_id"), [GALAXY_VS_SCRATCH], n_boot=50)
    assert "several runs of resnet18 (galaxy_sim)" in chosen["boot_note"].iloc[0]
    unique = predictions[~predictions["run_id"].str.startswith("sweep")].drop(columns="run_id")
    by_descriptors = primary_contrasts(results.drop(columns="run_id"), unique, [GALAXY_VS_SCRATCH], n_boot=200, seed=1)
    assert by_descriptors["boot_low"].iloc[0] == row["boot_low"]


def _contrast(name: str, treatment: str, baseline: str, metric: str = "auc") -> dict:
    arch = {"treatment": "resnet18", "baseline": "resnet18"}
    return {
        "name": name,
        "task": "bts",
        "metric": metric,
        "treatment": {"arch": arch["treatment"], "init": treatment},
        "baseline": {"arch": arch["baseline"], "init": baseline},
    }


def test_holm_adjustment_across_the_family_decides_the_verdict():
    scratch = [0.70, 0.75, 0.80]
    results = make_results(
        {
            ("resnet18", "scratch", "auc"): scratch,
            # p about 0.03 and 0.04 alone, above 0.05 after Holm's adjustment for four contrasts.
            ("resnet18", "synthetic", "auc"): [s + d for s, d in zip(scratch, (0.014, 0.020, 0.026), strict=True)],
            ("resnet18", "imagenet", "auc"): [s + d for s, d in zip(scratch, (0.013, 0.020, 0.027), strict=True)],
            # A clear gain and a clear loss.
            ("resnet18", "galaxy_sim", "auc"): [s + d for s, d in zip(scratch, (0.050, 0.051, 0.049), strict=True)],
            ("resnet18", "galaxyzoo", "auc"): [s + d for s, d in zip(scratch, (-0.050, -0.052, -0.049), strict=True)],
        }
    )
    family = [
        _contrast("synthetic vs scratch", "synthetic", "scratch"),
        _contrast("imagenet vs scratch", "imagenet", "scratch"),
        _contrast("galaxy_sim vs scratch", "galaxy_sim", "scratch"),
        _contrast("galaxyzoo vs scratch", "galaxyzoo", "scratch"),
    ]
    table = primary_contrasts(results, None, family).set_index("name")
    np.testing.assert_allclose(table["p_holm"], holm(table["p_value"]))
    synthetic = table.loc["synthetic vs scratch"]
    assert synthetic["metric"] == "auc"
    assert synthetic["p_value"] < 0.05 <= synthetic["p_holm"]
    assert synthetic["verdict"].startswith("synthetic vs scratch: inconclusive: resnet18 (synthetic) minus")
    assert "+0.020 auc" in synthetic["verdict"] and f"Holm p = {synthetic['p_holm']:.3f}" in synthetic["verdict"]
    assert table.loc["galaxy_sim vs scratch", "verdict"].startswith(
        "galaxy_sim vs scratch: resnet18 (galaxy_sim) beats resnet18 (scratch) by +0.050 auc ["
    )
    assert "is worse than resnet18 (scratch) by -0.050 auc" in table.loc["galaxyzoo vs scratch", "verdict"]
    assert not table["verdict"].str.contains("no evidence").any()
    assert verdicts(table.reset_index()) == table["verdict"].tolist()
    # The same contrast alone is not adjusted: its p-value decides.
    alone = primary_contrasts(results, None, family[:1]).iloc[0]
    assert alone["p_holm"] == pytest.approx(alone["p_value"]) and "beats" in alone["verdict"]


def test_a_contrast_without_replicates_is_inconclusive():
    results = make_results({("resnet18", "scratch", "auc"): [0.7], ("resnet18", "galaxy_sim", "auc"): [0.8]})
    family = [_contrast("one replicate", "galaxy_sim", "scratch"), _contrast("absent", "imagenet", "scratch")]
    table = primary_contrasts(results, None, family).set_index("name")
    assert table.loc["one replicate", "verdict"].endswith("is +0.100 auc from a single replicate.")
    assert table.loc["absent", "n_replicates"] == 0
    assert table.loc["absent", "verdict"] == "absent: inconclusive: no replicates with both runs."
    with pytest.raises(ValueError, match="must give arch and init"):
        primary_contrasts(results, None, [{**family[0], "baseline": {"arch": "resnet18"}}])


# ------------------------------------------------------------------------------------------
# The headline: primary, exploratory and measured rows
# ------------------------------------------------------------------------------------------


def test_headline_marks_primary_exploratory_and_measured_rows(study_tables):
    results, predictions = study_tables
    table = headline_table(results, make_benchmark(), contrasts=[GALAXY_VS_SCRATCH], predictions=predictions, n_boot=50)
    assert table["status"].tolist()[0] == "primary"
    assert set(table["status"]) == {"primary", "exploratory", "measured"}
    primary = table.iloc[0]
    assert primary["claim"] == GALAXY_VS_SCRATCH["name"] and primary["n"] == 4 and primary["n_failed_gate"] == 1
    assert np.isfinite(primary["boot_low"]) and np.isfinite(primary["p_holm"])
    assert primary["verdict"] == verdict(primary)
    exploratory = table[table["status"] == "exploratory"]
    assert (exploratory["verdict"] == "").all() and exploratory["p_holm"].isna().all()
    # The primary comparison is not repeated among the exploratory ones; galaxy_sim vs scratch on f1 is.
    same = exploratory[(exploratory["treatment"] == "galaxy_sim") & (exploratory["scope"] == "resnet18")]
    assert same["metric"].tolist() == ["f1"]
    assert "unadjusted p" in verdict(same.iloc[0]) and "beats" not in verdict(same.iloc[0])
    stated = table[table["status"].isin(["primary", "measured"])]["verdict"].tolist()
    assert verdicts(table) == stated and len(stated) == 1 + 4
    assert exploratory_comparisons(results).shape[0] == len(exploratory) + 1


def test_policy_table_per_model_with_the_positive_sources(study_tables):
    results, _ = study_tables
    table = policy_table(results)
    assert list(table.columns) == list(POLICY_TABLE_COLUMNS)
    assert table["metric"].tolist()[:6] == [
        "source_roc_auc",
        "source_average_precision",
        "bts_p1_completeness",
        "bts_p1_purity",
        "bts_p1_f1",
        "bts_p1_delay_days",
    ]
    models = list(dict.fromkeys(zip(table["arch"], table["init"], strict=True)))
    assert models == [("btsbot_cnn", "scratch"), ("resnet18", "scratch"), ("resnet18", "galaxy_sim")]
    assert len(table) == 3 * (2 + 4 * len(POLICIES))
    scratch = table[(table["arch"] == "resnet18") & (table["init"] == "scratch")]
    assert (scratch["n_replicates"] == 4).all() and (scratch["n_failed_gate"] == 1).all()
    positives = results[(results["metric"] == "positive_sources") & (results["run_id"].str.contains("btsbot"))]
    cnn = table[table["arch"] == "btsbot_cnn"].iloc[0]
    assert cnn["positive_sources"] == pytest.approx(positives["value"].mean())
    assert set(table["policy"]) == {"", *POLICIES}
    assert set(table["quantity"]) == {"roc_auc", "average_precision", "completeness", "purity", "f1", "delay_days"}


def test_real_evidence_that_was_not_measured_is_not_compared_nor_called_inconclusive():
    from alertlib.report.realclaims import evidence_sentences, evidence_table

    primary = pd.DataFrame(
        {
            "name": ["a", "b", "c"],
            "metric": ["roc_auc"] * 3,
            "difference": [0.1, 0.1, 0.1],
            "ci_low": [0.05, 0.05, 0.05],
            "ci_high": [0.15, 0.15, 0.15],
            "p_holm": [0.01, 0.01, 0.01],
        }
    )
    real = pd.DataFrame(
        {
            "name": ["a", "b", "c"],
            "evidence": ["real, zero-shot"] * 3,
            "difference": [0.2, 0.01, np.nan],
            "ci_low": [0.1, -0.05, np.nan],
            "ci_high": [0.3, 0.07, np.nan],
        }
    )
    table = evidence_table(primary, real).set_index("claim")
    assert table.loc["a", "agreement"] == "agree"
    assert table.loc["b", "agreement"] == "inconclusive"
    assert table.loc["c", "real"] == "not measured" and table.loc["c", "agreement"] == "not compared"
    assert (
        evidence_sentences(table.reset_index())[2]
        == "c: simulated sky better; real, zero-shot not measured: not compared."
    )
