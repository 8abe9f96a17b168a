"""Are the study's scores probabilities? Calibration error before and after temperature scaling, and
reliability diagrams (notebook 05).

Every number comes from the ``calibration`` table of notebook 02 (each run's temperature, fitted on
its validation split, and its ECE and NLL; :func:`alertlib.study.stages.calibrate_finetuned`) and
from the test predictions (uncalibrated scores, rescaled here by each run's temperature with
:func:`alertlib.learn.calibration.rescale_scores`). Means are over the replicates of each model
(runs on all training sources at the chosen learning rate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.core.vocab import ARCH_ORDER, INIT_ORDER, order_key
from alertlib.report.figures import arch_marker, init_colour, new_figure

MODEL = ["task", "arch", "init"]
WHEN = ("before", "after")


def _chosen_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The runs the study reports: all training sources, the chosen learning rate."""
    if "lr_selected" in table.columns:
        table = table[table["lr_selected"].astype(bool)]
    return table[table["train_fraction"] == 1.0] if "train_fraction" in table.columns else table


def _in_study_order(table: pd.DataFrame) -> pd.DataFrame:
    keys = table.apply(
        lambda r: (r["task"], order_key(r["arch"], ARCH_ORDER), order_key(r["init"], INIT_ORDER)), axis=1
    )
    return table.iloc[np.argsort(keys.to_numpy(), kind="stable")].reset_index(drop=True) if len(table) else table


def calibration_table(calibration: pd.DataFrame) -> pd.DataFrame:
    """Per model (task, arch, init): the mean over replicates of the temperature and of the test and
    validation ECE (and test NLL) before and after scaling, with how many replicates were fitted."""
    runs = _chosen_runs(calibration)
    columns = [
        "value",
        "test_ece_before",
        "test_ece_after",
        "val_ece_before",
        "val_ece_after",
        "test_nll_before",
        "test_nll_after",
    ]
    grouped = runs.groupby(MODEL, sort=False)
    table = grouped[columns].mean().rename(columns={"value": "temperature"})
    table.insert(0, "replicates", grouped.size())
    table.insert(1, "fitted", grouped["status"].apply(lambda s: int((s == "fitted").sum())))
    return _in_study_order(table.reset_index())


def reliability_curves(predictions: pd.DataFrame, calibration: pd.DataFrame, n_bins: int | None = None) -> pd.DataFrame:
    """Reliability bins of each model's test alerts (pooled over its replicates), before and after
    each run's temperature: one row per (task, arch, init, when, bin) with the bin's ``confidence``,
    ``observed`` frequency, ``alerts`` and the pooled ``ece``."""
    from alertlib.learn.calibration import N_BINS, ece_of_bins, prediction_scores, reliability_bins, rescale_scores

    temperatures = calibration.set_index("run_id")["value"]
    runs = _chosen_runs(calibration)
    rows = []
    for key, group in runs.groupby(MODEL, sort=False):
        scored = {when: [] for when in WHEN}
        labels = []
        for run_id in group["run_id"]:
            alerts = predictions[predictions["run_id"] == run_id]
            class_names = sorted(c.removeprefix("prob_") for c in alerts.columns if c.startswith("prob_"))
            scores, run_labels = prediction_scores(alerts, class_names if key[0] != "bts" else None)
            scored["before"].append(scores)
            scored["after"].append(rescale_scores(scores, float(temperatures[run_id])))
            labels.append(run_labels)
        if not labels:
            continue
        for when in WHEN:
            bins = reliability_bins(np.concatenate(scored[when]), np.concatenate(labels), n_bins or N_BINS)
            rows.append(bins.assign(**dict(zip(MODEL, key, strict=True)), when=when, ece=ece_of_bins(bins)))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def plot_reliability_diagrams(curves: pd.DataFrame):
    """Reliability diagrams: observed frequency against mean confidence per bin, one line per model,
    before (left) and after (right) temperature scaling, one row per task. On the diagonal, a
    score means what it says."""
    tasks = sorted(curves["task"].unique(), key=lambda t: (t != "bts", t))
    figure, axes = new_figure(len(tasks), 2, panel_size=(3.8, 3.4), sharex=True, sharey=True)
    for row, task in enumerate(tasks):
        for column, when in enumerate(WHEN):
            ax = axes[row, column]
            ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":")
            subset = curves[(curves["task"] == task) & (curves["when"] == when)]
            for (arch, init), bins in subset.groupby(["arch", "init"], sort=False):
                filled = bins[bins["alerts"] > 0]
                label = f"{arch}/{init} (ECE {bins['ece'].iloc[0]:.3f})"
                ax.plot(
                    filled["confidence"],
                    filled["observed"],
                    marker=arch_marker(arch),
                    color=init_colour(init),
                    markersize=4,
                    linewidth=1,
                    label=label,
                )
            ax.set_title(f"{task}: {when} temperature scaling", fontsize=9)
            ax.legend(fontsize=6, loc="upper left")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
        positive = "fraction of positives" if task == "bts" else "fraction correct (top class)"
        axes[row, 0].set_ylabel(positive)
    for ax in axes[-1]:
        ax.set_xlabel("mean score in bin" if tasks == ["bts"] else "mean confidence in bin")
    return figure
