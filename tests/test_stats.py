"""Statistics over seeds, checked on small hand-built tables whose answers are known in advance.

Every table in this file is a TEST FIXTURE made up here (``make_results``, ``make_benchmark``):
none of its numbers is a result of the study.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from alertlib.learn.results import COLUMNS
from alertlib.report.claims import (
    CLAIM_ACCURACY,
    CLAIM_GENERIC,
    CLAIM_MEMORY,
    CLAIM_PRETRAINING,
    CLAIM_SPEED,
    efficiency_ratios,
    headline_table,
    verdict,
    verdicts,
)
from alertlib.report.confusion import confusion_table
from alertlib.report.seeds import (
    architecture_differences,
    bootstrap_mean_interval,
    paired_differences,
    summarise_over_seeds,
)
from alertlib.report.tables import binned_metric_name, binned_metrics, load_per_run_tables, parse_binned_metric


def make_results(values: dict[tuple, list[float]], task: str = "bts", train_fraction: float = 1.0) -> pd.DataFrame:
    """Test fixture: a tidy results table from {(arch, init, metric): [value for seed 0, 1, ...]}.

    A value of None leaves that seed out (a missing run).
    """
    rows = []
    for (arch, init, metric), per_seed in values.items():
        for seed, value in enumerate(per_seed):
            if value is None:
                continue
            rows.append(
                {
                    "run_id": f"{task}-{arch}-{init}-{train_fraction}-{seed}",
                    "task": task,
                    "arch": arch,
                    "init": init,
                    "weights_source": "none",
                    "train_fraction": train_fraction,
                    "seed": seed,
                    "data_version": "fixture",
                    "code_version": "fixture",
                    "wall_time_s": 1.0,
                    "config": "{}",
                    "metric": metric,
                    "value": value,
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def make_benchmark() -> pd.DataFrame:
    """Test fixture: a benchmark table with round numbers so that every ratio is known."""
    rows = []
    for model, speed, memory, params in (
        ("btsbot_cnn", 1000.0, 400.0, 2.0e5),
        ("resnet18", 2000.0, 200.0, 1.1e7),
        ("convnext_pico", 500.0, 800.0, 9.0e6),
    ):
        for variant, factor in (("eager", 1.0), ("channels_last", 1.5)):
            for batch_size, batch_factor in ((1, 0.1), (256, 1.0)):
                rows.append(
                    {
                        "model": model,
                        "impl": "alertlib",
                        "device": "cpu",
                        "dtype": "float32",
                        "variant": variant,
                        "batch_size": batch_size,
                        "alerts_per_s": speed * factor * batch_factor,
                        "latency_ms": 1.0,
                        "peak_mem_mb": memory,
                        "params": params,
                        "macs": params * 10,
                        "limit_fraction": 0.5,
                    }
                )
    # A slower second implementation of the same CNN that the default selection must ignore.
    rows.append({**rows[0], "impl": "btsbot", "alerts_per_s": 1.0})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# The bootstrap
# ------------------------------------------------------------------------------------------


def test_bootstrap_is_deterministic_and_seeded():
    values = [0.81, 0.84, 0.79, 0.86, 0.80]
    first = bootstrap_mean_interval(values, n_resamples=2000, seed=3)
    assert first == bootstrap_mean_interval(values, n_resamples=2000, seed=3)
    assert first != bootstrap_mean_interval(values, n_resamples=2000, seed=4)
    mean, low, high = first
    assert mean == pytest.approx(np.mean(values))
    assert min(values) <= low < mean < high <= max(values)


def test_bootstrap_hand_computable_two_values():
    # Resampling [0, 1] twice gives means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5th and 97.5th percentiles are 0 and 1.
    assert bootstrap_mean_interval([0.0, 1.0], n_resamples=10_000, seed=0) == (0.5, 0.0, 1.0)


def test_bootstrap_degenerate_cases():
    assert bootstrap_mean_interval([0.7]) == (0.7, 0.7, 0.7)
    assert bootstrap_mean_interval([0.2, 0.2, 0.2]) == (0.2, 0.2, 0.2)
    assert all(math.isnan(v) for v in bootstrap_mean_interval([]))
    with pytest.raises(ValueError, match="finite"):
        bootstrap_mean_interval([0.1, float("nan")])


# ------------------------------------------------------------------------------------------
# Summaries over seeds
# ------------------------------------------------------------------------------------------


def test_summary_over_seeds_means_counts_and_missing_combinations():
    results = make_results(
        {
            ("resnet18", "scratch", "auc"): [0.80, 0.82, 0.84],
            ("resnet18", "galaxy_sim", "auc"): [0.90],  # a single seed
            ("btsbot_cnn", "scratch", "auc"): [0.70, None, 0.74],  # seed 1 missing
        }
    )
    summary = summarise_over_seeds(results, n_resamples=2000)
    assert len(summary) == 3  # only the combinations present
    # The study's order: the custom CNN first, then scratch before galaxy pre-training.
    assert list(zip(summary["arch"], summary["init"], strict=True)) == [
        ("btsbot_cnn", "scratch"),
        ("resnet18", "scratch"),
        ("resnet18", "galaxy_sim"),
    ]
    by_key = summary.set_index(["arch", "init"])
    assert by_key.loc[("resnet18", "scratch"), "mean"] == pytest.approx(0.82)
    assert by_key.loc[("resnet18", "scratch"), "std"] == pytest.approx(0.02)
    assert by_key.loc[("btsbot_cnn", "scratch"), "n_seeds"] == 2
    assert by_key.loc[("btsbot_cnn", "scratch"), "seeds"] == "0,2"
    single = by_key.loc[("resnet18", "galaxy_sim")]
    assert single["n_seeds"] == 1 and single["interval_degenerate"] and single["mean"] == 0.90
    assert math.isnan(single["ci_low"]) and math.isnan(single["ci_high"])  # a t interval needs two replicates
    assert math.isnan(single["std"])
    bootstrap = summarise_over_seeds(results, n_resamples=2000, method="bootstrap").set_index(["arch", "init"])
    single = bootstrap.loc[("resnet18", "galaxy_sim")]
    assert single["n_seeds"] == 1 and single["interval_degenerate"]
    assert single["ci_low"] == single["ci_high"] == single["mean"] == 0.90
    assert set(bootstrap["interval_method"]) == {"bootstrap"} and set(summary["interval_method"]) == {"t"}


def test_summary_refuses_two_runs_for_one_seed_and_drops_repeats():
    results = make_results({("resnet18", "scratch", "auc"): [0.8, 0.9]})
    other_study = results.assign(run_id=results["run_id"] + "-other", value=results["value"] - 0.1)
    with pytest.raises(ValueError, match="mixes studies"):
        summarise_over_seeds(pd.concat([results, other_study]))
    with pytest.warns(UserWarning, match="loaded twice"):
        summary = summarise_over_seeds(pd.concat([results, results]))
    assert summary["n_seeds"].tolist() == [2]


def test_summary_counts_non_finite_values_in_a_column_without_a_warning():
    # An undefined metric (an AUC on a test set with one class) is expected: counted, not warned about.
    nan = float("nan")
    results = make_results(
        {("resnet18", "scratch", "auc"): [0.8, nan, 0.9], ("resnet18", "galaxy_sim", "auc"): [nan, nan]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = summarise_over_seeds(results)
    by_init = summary.set_index("init")
    assert by_init.loc["scratch", "n_seeds"] == 2
    assert by_init.loc["scratch", "mean"] == pytest.approx(0.85)
    assert by_init.loc["scratch", "n_non_finite"] == 1 and by_init.loc["scratch", "seeds"] == "0,2"
    assert by_init.loc["galaxy_sim", "n_seeds"] == 0 and by_init.loc["galaxy_sim", "n_non_finite"] == 2
    assert math.isnan(by_init.loc["galaxy_sim", "mean"])


def test_differences_and_headline_count_non_finite_values_without_a_warning():
    nan = float("nan")
    results = make_results(
        {
            ("btsbot_cnn", "scratch", "auc"): [0.70, 0.72, nan],
            ("resnet18", "scratch", "auc"): [0.75, nan, 0.76],
            ("resnet18", "galaxy_sim", "auc"): [0.80, 0.83, nan],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pretraining = paired_differences(results, n_resamples=500)
        table = headline_table(results, accuracy_metrics=("auc",))
    row = pretraining.iloc[0]
    # Seed 0 pairs; seed 1 has galaxy_sim only and seed 2 scratch only; one NaN on each side.
    assert (row["n_pairs"], row["n_unpaired"], row["n_non_finite"]) == (1, 2, 2)
    assert row["difference"] == pytest.approx(0.05)
    details = table.set_index("treatment")["detail"]
    assert details["galaxy_sim"] == "2 unpaired seeds left out; 2 non-finite values left out"
    assert details["resnet18 (scratch)"] == "2 unpaired seeds left out; 2 non-finite values left out"


# ------------------------------------------------------------------------------------------
# Paired differences
# ------------------------------------------------------------------------------------------


def test_identical_inputs_give_zero_difference_and_zero_width_interval():
    seeds = [0.81, 0.77, 0.90, 0.85]
    results = make_results({("resnet18", "galaxy_sim", "auc"): seeds, ("resnet18", "scratch", "auc"): seeds})
    differences = paired_differences(results)
    assert len(differences) == 1
    row = differences.iloc[0]
    assert (row["treatment"], row["baseline"]) == ("galaxy_sim", "scratch")
    assert row["difference"] == 0.0 and row["ci_low"] == 0.0 and row["ci_high"] == 0.0
    assert row["n_pairs"] == 4 and row["p_value"] == 1.0
    assert "inconclusive" in verdict(_as_headline_row(row))


def test_constant_shift_is_recovered_exactly_and_pairing_follows_the_seed():
    scratch = [0.70, 0.90, 0.60, 0.80]
    shift = 0.03
    results = make_results(
        {
            ("resnet18", "scratch", "auc"): scratch,
            ("resnet18", "galaxy_sim", "auc"): [v + shift for v in scratch],
        }
    )
    # Rows in another order must not change the pairing.
    shuffled = results.sample(frac=1.0, random_state=1)
    row = paired_differences(shuffled).iloc[0]
    assert row["difference"] == pytest.approx(shift)
    assert row["ci_low"] == pytest.approx(shift) and row["ci_high"] == pytest.approx(shift)
    # An unpaired comparison would see the seeds' spread (0.6-0.9); the paired one does not.
    assert row["treatment_mean"] - row["baseline_mean"] == pytest.approx(shift)
    assert row["relative_difference"] == pytest.approx(shift / np.mean(scratch))


def test_paired_differences_use_common_seeds_and_every_alternative():
    results = make_results(
        {
            ("resnet18", "scratch", "auc"): [0.70, 0.72, 0.74],
            ("resnet18", "synthetic", "auc"): [0.75, None, 0.79],
            ("resnet18", "galaxy_sim", "auc"): [0.80, 0.83, 0.82],
            ("resnet18", "galaxyzoo", "auc"): [0.85, 0.86, 0.87],
            ("convnext_pico", "scratch", "auc"): [0.60, 0.61, 0.62],  # no galaxy init for this arch
        }
    )
    table = paired_differences(results, n_resamples=2000)
    pairs = set(zip(table["treatment"], table["baseline"], strict=True))
    # galaxyzoo (Zoobot) starts with "galaxy": it is galaxy pre-training, compared with the others.
    assert pairs == {
        ("galaxy_sim", "scratch"),
        ("galaxy_sim", "synthetic"),
        ("galaxyzoo", "scratch"),
        ("galaxyzoo", "synthetic"),
    }
    assert set(table["arch"]) == {"resnet18"}
    row = table[(table["treatment"] == "galaxy_sim") & (table["baseline"] == "synthetic")].iloc[0]
    assert row["n_pairs"] == 2 and row["n_unpaired"] == 1
    assert row["difference"] == pytest.approx(np.mean([0.80 - 0.75, 0.82 - 0.79]))


def test_pooled_differences_pair_on_architecture_and_seed():
    results = make_results(
        {
            ("resnet18", "scratch", "auc"): [0.70, 0.80],
            ("resnet18", "galaxy_sim", "auc"): [0.72, 0.82],
            ("convnext_pico", "scratch", "auc"): [0.50, 0.60],
            ("convnext_pico", "galaxy_sim", "auc"): [0.54, 0.64],
        }
    )
    pooled = paired_differences(results, by=("task", "train_fraction", "metric"))
    row = pooled.iloc[0]
    assert row["n_pairs"] == 4
    assert row["difference"] == pytest.approx(0.03)
    assert row["ci_low"] < 0.03 < row["ci_high"]
    bootstrap = paired_differences(
        results, by=("task", "train_fraction", "metric"), n_resamples=4000, method="bootstrap"
    )
    row = bootstrap.iloc[0]
    assert row["difference"] == pytest.approx(0.03)
    assert 0.02 - 1e-12 <= row["ci_low"] <= row["ci_high"] <= 0.04 + 1e-12


def test_architecture_differences_against_the_custom_cnn():
    results = make_results(
        {
            ("btsbot_cnn", "scratch", "f1"): [0.60, 0.62, 0.64],
            ("resnet18", "scratch", "f1"): [0.65, 0.67, 0.69],
            ("resnet18", "galaxy_sim", "f1"): [0.70, 0.72, None],
        }
    )
    table = architecture_differences(results, n_resamples=2000)
    assert list(table["init"]) == ["scratch", "galaxy_sim"]
    assert set(table["reference_init"]) == {"scratch"}
    assert table["difference"].tolist() == pytest.approx([0.05, 0.10])
    assert table["n_pairs"].tolist() == [3, 2]


# ------------------------------------------------------------------------------------------
# Binned metrics and predictions
# ------------------------------------------------------------------------------------------


def test_binned_metric_names_round_trip():
    name = binned_metric_name("completeness", 17.0, 17.25, policy="bts_p1")
    assert name == "bts_p1_completeness_17.00-17.25"  # the form alertlib.learn.metrics writes
    assert parse_binned_metric(name) == ("bts_p1", "completeness", 17.0, 17.25)
    assert parse_binned_metric(binned_metric_name("purity", 18.25, 18.5)) == ("", "purity", 18.25, 18.5)
    assert parse_binned_metric("purity_18.25_18.50") == ("", "purity", 18.25, 18.5)
    assert parse_binned_metric("prod_p2_purity_18.25-18.50") == ("prod_p2", "purity", 18.25, 18.5)
    for other in ("auc", "f1_macro", "bts_p1_completeness", "accuracy_class1", "train_alerts_per_s"):
        assert parse_binned_metric(other) is None, other
    with pytest.raises(ValueError, match="wrong way round"):
        parse_binned_metric("purity_18.50_18.25")
    results = make_results(
        {
            ("resnet18", "scratch", "bts_p1_completeness_17.00-17.25"): [0.5],
            ("resnet18", "scratch", "bts_p1_purity_17.25-17.50"): [0.6],
            ("resnet18", "scratch", "bts_p1_completeness"): [0.7],
            ("resnet18", "scratch", "roc_auc"): [0.9],
        }
    )
    binned = binned_metrics(results)
    assert sorted(binned["quantity"]) == ["completeness", "purity"]
    assert set(binned["policy"]) == {"bts_p1"}
    assert sorted(binned["mag_center"]) == [17.125, 17.375]


def test_confusion_tables_binary_and_multiclass():
    binary = pd.DataFrame({"label": [0, 0, 1, 1, 1], "score": [0.1, 0.7, 0.9, 0.4, 0.5]})
    table = confusion_table(binary, normalise=False)
    assert table.to_numpy().tolist() == [[1, 1], [1, 2]]  # a score of exactly 0.5 counts as positive
    normalised = confusion_table(binary)
    assert normalised.to_numpy()[1].tolist() == pytest.approx([1 / 3, 2 / 3])
    # Multi-class as alertlib.learn.finetune writes it: class indices, predicted index, prob_<class> columns.
    finetune_style = pd.DataFrame(
        {
            "label": [0, 0, 1, 2, 1],
            "score": [0.8, 0.8, 0.7, 0.7, 0.6],
            "predicted": [0, 1, 1, 2, 0],
            "prob_sn": [0.8, 0.1, 0.1, 0.2, 0.6],
            "prob_var": [0.1, 0.8, 0.7, 0.1, 0.3],
            "prob_bogus": [0.1, 0.1, 0.2, 0.7, 0.1],
        }
    )
    table = confusion_table(finetune_style, normalise=False)
    assert list(table.index) == ["sn", "var", "bogus"]  # the class-index order of the prob_ columns
    assert table.to_numpy().tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    # The same with class names and only per-class scores (the prediction is their argmax).
    named = pd.DataFrame(
        {
            "alert_class": ["sn", "sn", "var", "bogus"],
            "score_sn": [0.8, 0.1, 0.1, 0.2],
            "score_var": [0.1, 0.8, 0.7, 0.1],
            "score_bogus": [0.1, 0.1, 0.2, 0.7],
        }
    )
    table = confusion_table(named, normalise=False)
    assert table.loc["sn", "sn"] == 1 and table.loc["sn", "var"] == 1 and table.loc["bogus", "bogus"] == 1


# ------------------------------------------------------------------------------------------
# Benchmark ratios, the headline table and its verdicts
# ------------------------------------------------------------------------------------------


def test_efficiency_ratios_use_the_fastest_variant_at_the_largest_batch():
    ratios = efficiency_ratios(make_benchmark()).set_index("model")
    assert set(ratios.index) == {"resnet18", "convnext_pico"}
    assert ratios.loc["resnet18", "variant"] == "channels_last"
    assert ratios.loc["resnet18", "batch_size"] == 256
    assert ratios.loc["resnet18", "speed_ratio"] == pytest.approx(2.0)
    assert ratios.loc["resnet18", "memory_ratio"] == pytest.approx(0.5)
    assert ratios.loc["convnext_pico", "speed_ratio"] == pytest.approx(0.5)
    assert ratios.loc["convnext_pico", "params_ratio"] == pytest.approx(45.0)
    eager = efficiency_ratios(make_benchmark(), variant="eager", batch_size=1).set_index("model")
    assert eager.loc["resnet18", "alerts_per_s"] == pytest.approx(200.0)


def test_headline_table_states_the_measured_numbers():
    results = make_results(
        {
            ("btsbot_cnn", "scratch", "roc_auc"): [0.70, 0.72, 0.74],
            ("resnet18", "scratch", "roc_auc"): [0.75, 0.78, 0.76],
            ("resnet18", "synthetic", "roc_auc"): [0.76, 0.79, 0.77],
            ("resnet18", "galaxy_sim", "roc_auc"): [0.80, 0.83, 0.81],
            ("btsbot_cnn", "scratch", "f1"): [0.50, 0.50, 0.50],
            ("resnet18", "scratch", "f1"): [0.50, 0.50, 0.50],
            ("resnet18", "galaxy_sim", "f1"): [0.50, 0.52, 0.48],
            ("braai_vgg", "scratch", "roc_auc"): [0.60, 0.60, 0.60],  # a classic CNN, not a standard architecture
        }
    )
    with pytest.warns(UserWarning, match="absent_metric"):
        table = headline_table(results, make_benchmark(), accuracy_metrics=("auc", "f1", "absent_metric"))
    assert set(table["claim"]) == {
        CLAIM_PRETRAINING,
        CLAIM_GENERIC,
        CLAIM_ACCURACY,
        CLAIM_SPEED,
        CLAIM_MEMORY,
    }
    pre = table[(table["claim"] == CLAIM_PRETRAINING) & (table["metric"] == "roc_auc")]
    versus_scratch = pre[pre["baseline"] == "scratch"].iloc[0]
    assert versus_scratch["effect"] == pytest.approx(0.05)
    assert verdict({**versus_scratch, "status": None}).startswith(
        "galaxy_sim beats scratch on resnet18 by +0.050 roc_auc [+0.050, +0.050]"
    )
    versus_synthetic = pre[pre["baseline"] == "synthetic"].iloc[0]
    assert versus_synthetic["effect"] == pytest.approx(0.04)
    generic = table[(table["claim"] == CLAIM_GENERIC) & (table["metric"] == "roc_auc")].iloc[0]
    assert (generic["treatment"], generic["baseline"], generic["effect"]) == (
        "synthetic",
        "scratch",
        pytest.approx(0.01),
    )
    assert not table["treatment"].str.contains("braai_vgg").any()
    f1_row = table[(table["claim"] == CLAIM_PRETRAINING) & (table["metric"] == "f1")].iloc[0]
    assert f1_row["effect"] == pytest.approx(0.0)
    assert "inconclusive" in verdict({**f1_row, "status": None})
    accuracy = table[(table["claim"] == CLAIM_ACCURACY) & (table["metric"] == "roc_auc")]
    assert accuracy["treatment"].tolist() == ["resnet18 (scratch)", "resnet18 (synthetic)", "resnet18 (galaxy_sim)"]
    assert accuracy["effect"].tolist() == pytest.approx([0.13 / 3, 0.16 / 3, 0.28 / 3])
    speed = table[table["claim"] == CLAIM_SPEED].set_index("treatment")
    assert speed.loc["resnet18", "effect"] == pytest.approx(2.0)
    assert speed.loc["resnet18", "verdict"] == (
        "resnet18 processes 2.00x the alerts per second of btsbot_cnn (cpu, float32, batch 256): faster."
    )
    assert speed.loc["convnext_pico", "verdict"].endswith(": slower.")
    memory = table[table["claim"] == CLAIM_MEMORY].set_index("treatment")
    assert memory.loc["resnet18", "verdict"].endswith(
        "0.50x the peak memory of btsbot_cnn (cpu, float32, batch 256): less memory."
    )
    # Exploratory rows are described, not claimed: the sentences are those of the measured rows.
    assert set(table.loc[table["claim"].isin([CLAIM_SPEED, CLAIM_MEMORY]), "status"]) == {"measured"}
    assert (table.loc[table["status"] == "exploratory", "verdict"] == "").all()
    assert verdicts(table) == table.loc[table["status"] == "measured", "verdict"].tolist()


def test_headline_with_one_seed_says_the_interval_is_degenerate():
    results = make_results(
        {("resnet18", "scratch", "auc"): [0.70], ("resnet18", "galaxy_gz1", "auc"): [0.75]},
    )
    table = headline_table(results, accuracy_metrics=("auc",))
    assert len(table) == 1  # no CNN, no benchmark: only the pre-training row
    sentence = verdict(table.iloc[0])
    assert "+0.050 auc" in sentence and "single replicate" in sentence and "no interval" in sentence


def _as_headline_row(row: pd.Series) -> dict:
    return {
        "claim": CLAIM_PRETRAINING,
        "metric": row["metric"],
        "scope": row["arch"],
        "treatment": row["treatment"],
        "baseline": row["baseline"],
        "n": row["n_pairs"],
        "effect": row["difference"],
        "effect_kind": "difference",
        "ci_low": row["ci_low"],
        "ci_high": row["ci_high"],
        "relative_effect": row["relative_difference"],
    }


def test_verdict_direction_follows_the_metric():
    row = {
        "metric": "val_loss",
        "scope": "resnet18",
        "treatment": "galaxy_sim",
        "baseline": "scratch",
        "n": 3,
        "effect": -0.2,
        "effect_kind": "difference",
        "ci_low": -0.3,
        "ci_high": -0.1,
        "relative_effect": math.nan,
    }
    assert verdict(row).startswith("galaxy_sim beats scratch on resnet18 by -0.200 val_loss")
    assert verdict({**row, "metric": "auc"}).startswith("galaxy_sim is worse than scratch")
    assert "no replicates in common" in verdict({**row, "n": 0, "effect": math.nan})


def test_per_run_tables_are_tagged_with_their_run(tmp_path):
    results = make_results({("resnet18", "scratch", "auc"): [0.8, 0.9]})
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        results[results["seed"] == seed].to_parquet(run / "results.parquet")
        pd.DataFrame({"epoch": [0, 1], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}).to_csv(
            run / "curves.csv", index=False
        )
    (tmp_path / "run1" / "curves.csv").unlink()
    with pytest.warns(UserWarning, match="1 runs .* have no curves.csv"):
        curves = load_per_run_tables(tmp_path, "curves.csv")
    assert len(curves) == 2 and set(curves["seed"]) == {0} and set(curves["arch"]) == {"resnet18"}
    assert curves["val_loss"].tolist() == [1.1, 0.7]


def test_a_comparison_whose_runs_all_failed_the_gate_is_still_reported():
    """A model whose every run failed the validation gate still appears, with no pairs and its count,
    so that the exploratory table says what was left out rather than dropping the comparison."""
    results = make_results(
        {
            ("resnet18", "scratch", "auc"): [0.70, 0.72, 0.74],
            ("resnet18", "galaxy_sim", "auc"): [0.80, 0.83, 0.82],
            ("resnet18", "galaxy_sim", "gate_passed"): [0.0, 0.0, 0.0],
            ("resnet18", "scratch", "gate_passed"): [1.0, 1.0, 1.0],
        }
    )
    table = paired_differences(results, metrics=["auc"])
    row = table.iloc[0]
    assert (row["treatment"], row["baseline"]) == ("galaxy_sim", "scratch")
    assert row["n_pairs"] == 0 and row["n_failed_gate"] == 3
    assert math.isnan(row["difference"])


def test_a_ratio_within_five_percent_is_about_the_same():
    from alertlib.report.claims import verdict

    row = {
        "status": "measured",
        "effect_kind": "ratio",
        "treatment": "resnet18",
        "baseline": "btsbot_cnn",
        "scope": "cpu",
        "effect": 0.97,
    }
    assert verdict({**row, "metric": "peak_mem_mb"}).endswith(": about the same memory.")
    assert verdict({**row, "metric": "alerts_per_s", "effect": 1.04}).endswith(": about the same speed.")
    assert verdict({**row, "metric": "alerts_per_s", "effect": 1.06}).endswith(": faster.")
