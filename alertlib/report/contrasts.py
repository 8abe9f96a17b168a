"""The primary contrasts: the comparisons the profile states before the run, and the verdict on each.

A contrast is treatment minus baseline, two models of the study, on one task and metric, e.g.::

    {"name": "galaxy pre-training vs scratch (ResNet-18)", "task": "bts", "metric": "roc_auc",
     "treatment": {"arch": "resnet18", "init": "galaxy_sim"},
     "baseline": {"arch": "resnet18", "init": "scratch"}}

(``train_fraction`` defaults to 1.0, for the contrast or for one side). For each contrast
(:func:`primary_contrasts`):

1. the two models' values are paired by replicate (seed); a pair is left out when either run failed
   the validation gate (counted: ``n_excluded``), or when either value is not finite;
2. the headline interval is Student's t over the replicates' differences, with its p-value
   (:func:`alertlib.report.intervals.t_interval`);
3. beside it, the hierarchical bootstrap from the test predictions (replicates, then test sources
   within each; :func:`alertlib.report.intervals.hierarchical_bootstrap`) says how much of the
   spread the finite test sets explain;
4. Holm's adjustment over the family of primary contrasts (the t p-values) controls the chance of
   any false claim; a verdict is drawn only where the Holm p-value is below ``1 - confidence``,
   and is otherwise "inconclusive", never "no difference".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from alertlib.report import intervals
from alertlib.report.gate import mark_gate_failures, selected_rows
from alertlib.report.tables import check_columns, higher_is_better, resolve_metric

CONTRAST_COLUMNS = (
    "name",
    "task",
    "metric",
    "treatment",
    "baseline",
    "train_fraction",
    "n_replicates",
    "n_excluded",
    "excluded_seeds",
    "n_failed_gate",
    "n_unpaired",
    "n_non_finite",
    "treatment_mean",
    "baseline_mean",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "boot_difference",
    "boot_low",
    "boot_high",
    "boot_p",
    "boot_note",
    "confidence",
    "verdict",
)
SIDES = ("treatment", "baseline")


def contrast_sides(contrast: Mapping) -> dict[str, dict]:
    """The two models of a contrast: ``{"treatment": {arch, init, train_fraction}, "baseline": {...}}``."""
    missing = [key for key in ("task", "metric", *SIDES) if key not in contrast]
    if missing:
        raise ValueError(f"contrast {contrast.get('name', contrast)!r} lacks {missing}")
    sides = {}
    for which in SIDES:
        spec = contrast[which]
        if not isinstance(spec, Mapping) or "arch" not in spec or "init" not in spec:
            raise ValueError(f"contrast {contrast.get('name')!r}: {which} must give arch and init, got {spec!r}")
        fraction = float(spec.get("train_fraction", contrast.get("train_fraction", 1.0)))
        sides[which] = {"arch": str(spec["arch"]), "init": str(spec["init"]), "train_fraction": fraction}
    return sides


def side_label(side: Mapping, other: Mapping) -> str:
    """A model's name in a contrast, e.g. ``resnet18 (galaxy_sim)``; the training fraction when the sides differ."""
    label = f"{side['arch']} ({side['init']})"
    if not math.isclose(side["train_fraction"], other["train_fraction"]):
        label += f" on {side['train_fraction']:.0%} of training sources"
    return label


def contrast_key(results: pd.DataFrame, contrast: Mapping) -> tuple:
    """What a contrast compares: (task, both training fractions, metric, both models' arch and init).

    The metric is the name ``results`` uses for it (``auc`` finds ``roc_auc``).
    """
    sides = contrast_sides(contrast)
    task = str(contrast["task"])
    metric = resolve_metric(results[results["task"] == task], str(contrast["metric"])) or str(contrast["metric"])
    treatment, baseline = sides["treatment"], sides["baseline"]
    return (task, treatment["train_fraction"], baseline["train_fraction"], metric) + tuple(
        side[key] for side in (treatment, baseline) for key in ("arch", "init")
    )


def _side_runs(marked: pd.DataFrame, task: str, metric: str, side: Mapping) -> pd.DataFrame:
    """The runs of one model for one metric, indexed by seed: ``value``, ``failed_gate`` (and ``run_id``)."""
    rows = marked[
        (marked["task"] == task)
        & (marked["metric"] == metric)
        & (marked["arch"] == side["arch"])
        & (marked["init"] == side["init"])
        & np.isclose(marked["train_fraction"].astype(float), side["train_fraction"])
    ]
    if rows["seed"].duplicated().any():
        raise ValueError(
            f"results hold more than one run of {side} for {task}/{metric} and one seed: the table mixes "
            "studies; filter it to one study first (e.g. on data_version, code_version or config)"
        )
    return rows.set_index("seed")


def _pairs(treatment: pd.DataFrame, baseline: pd.DataFrame) -> dict:
    """The replicates both models have, split into those that count and those left out."""
    both = treatment.index.intersection(baseline.index)
    failed = treatment.loc[both, "failed_gate"].to_numpy(bool) | baseline.loc[both, "failed_gate"].to_numpy(bool)
    kept = both[~failed]
    values_t = pd.to_numeric(treatment.loc[kept, "value"], errors="coerce").to_numpy(np.float64)
    values_b = pd.to_numeric(baseline.loc[kept, "value"], errors="coerce").to_numpy(np.float64)
    finite = np.isfinite(values_t) & np.isfinite(values_b)
    return {
        "seeds": list(kept[finite]),
        "treatment": values_t[finite],
        "baseline": values_b[finite],
        "excluded_seeds": sorted(both[failed]),
        "n_failed_gate": int(treatment["failed_gate"].sum() + baseline["failed_gate"].sum()),
        "n_unpaired": len(treatment.index.symmetric_difference(baseline.index)),
        "n_non_finite": int((~finite).sum()),
    }


# --------------------------------------------------------------------------------------------
# The hierarchical bootstrap from test predictions
# --------------------------------------------------------------------------------------------


def _run_predictions(predictions: pd.DataFrame, task: str, side: Mapping, seed, run_id) -> pd.DataFrame:
    """One run's test predictions: by ``run_id`` where both tables have it, else by its descriptors."""
    if run_id is not None and "run_id" in predictions.columns:
        return predictions[predictions["run_id"] == run_id]
    return predictions[
        (predictions["task"] == task)
        & (predictions["arch"] == side["arch"])
        & (predictions["init"] == side["init"])
        & np.isclose(predictions["train_fraction"].astype(float), side["train_fraction"])
        & (predictions["seed"] == seed)
    ]


def _bootstrap_replicates(predictions, task, sides, runs, seeds) -> tuple[list[pd.DataFrame], str]:
    """Per replicate, both models' scores on the same test alerts (joined on ``candid``; group = source)."""
    replicates = []
    for seed in seeds:
        frames = {}
        for which in SIDES:
            run_id = runs[which].at[seed, "run_id"] if "run_id" in runs[which].columns else None
            part = _run_predictions(predictions, task, sides[which], seed, run_id)
            if part["candid"].duplicated().any():
                return [], f"the predictions hold several runs of {side_label(sides[which], sides[which])} seed {seed}"
            frames[which] = part[["candid", "objectId", "label", "score"]]
        joined = frames["treatment"].merge(frames["baseline"][["candid", "score"]], on="candid", suffixes=("_t", "_b"))
        if joined.empty:
            return [], f"no test predictions shared by both runs of seed {seed}"
        replicates.append(
            pd.DataFrame(
                {
                    "label": joined["label"].to_numpy(),
                    "group": joined["objectId"].to_numpy(),
                    "treatment": joined["score_t"].to_numpy(),
                    "baseline": joined["score_b"].to_numpy(),
                }
            )
        )
    return replicates, ""


def _bootstrap(
    predictions: pd.DataFrame | None, contrast: dict, runs: dict, seeds: list, settings: dict
) -> tuple[intervals.Interval | None, str]:
    """The hierarchical bootstrap of one contrast, or None and why it was not computed."""
    metric = contrast["metric"]
    if predictions is None:
        return None, "not computed: no test predictions given"
    if metric.startswith("source_"):
        return None, "not computed: source-level metric (the predictions lack the magnitudes its exclusions need)"
    if metric not in intervals.METRICS:
        return None, f"not computed: no alert-level bootstrap for {metric} (only {sorted(intervals.METRICS)})"
    if not seeds:
        return None, "not computed: no replicates"
    check_columns(predictions, ("candid", "objectId", "label", "score"), "predictions table")
    replicates, problem = _bootstrap_replicates(predictions, contrast["task"], contrast["sides"], runs, seeds)
    if problem:
        return None, f"not computed: {problem}"
    interval = intervals.hierarchical_bootstrap(replicates, metric, **settings)
    note = f"hierarchical bootstrap: {len(seeds)} replicates, then test sources within each"
    return interval, note


# --------------------------------------------------------------------------------------------
# The contrasts, Holm's adjustment and the verdicts
# --------------------------------------------------------------------------------------------


def _contrast_row(marked: pd.DataFrame, predictions, contrast: Mapping, confidence: float, settings: dict) -> dict:
    """One contrast's row of ``primary_contrasts`` (without ``p_holm`` and ``verdict``)."""
    sides = contrast_sides(contrast)
    task = str(contrast["task"])
    metric = resolve_metric(marked[marked["task"] == task], str(contrast["metric"])) or str(contrast["metric"])
    runs = {which: _side_runs(marked, task, metric, sides[which]) for which in SIDES}
    pairs = _pairs(runs["treatment"], runs["baseline"])
    headline = intervals.t_interval(pairs["treatment"] - pairs["baseline"], confidence)
    spec = {"task": task, "metric": metric, "sides": sides}
    boot, note = _bootstrap(predictions, spec, runs, pairs["seeds"], settings)
    fractions = {sides[w]["train_fraction"] for w in SIDES}
    return {
        "name": str(contrast.get("name", f"{side_label(sides['treatment'], sides['baseline'])} vs baseline")),
        "task": task,
        "metric": metric,
        "treatment": side_label(sides["treatment"], sides["baseline"]),
        "baseline": side_label(sides["baseline"], sides["treatment"]),
        "train_fraction": fractions.pop() if len(fractions) == 1 else math.nan,
        "n_replicates": len(pairs["seeds"]),
        "n_excluded": len(pairs["excluded_seeds"]),
        "excluded_seeds": ",".join(str(s) for s in pairs["excluded_seeds"]),
        "n_failed_gate": pairs["n_failed_gate"],
        "n_unpaired": pairs["n_unpaired"],
        "n_non_finite": pairs["n_non_finite"],
        "treatment_mean": float(pairs["treatment"].mean()) if len(pairs["seeds"]) else math.nan,
        "baseline_mean": float(pairs["baseline"].mean()) if len(pairs["seeds"]) else math.nan,
        "difference": headline.estimate,
        "ci_low": headline.low,
        "ci_high": headline.high,
        "p_value": headline.p_value,
        "boot_difference": boot.estimate if boot else math.nan,
        "boot_low": boot.low if boot else math.nan,
        "boot_high": boot.high if boot else math.nan,
        "boot_p": boot.p_value if boot else math.nan,
        "boot_note": note,
        "confidence": confidence,
    }


def primary_contrasts(
    results: pd.DataFrame,
    predictions: pd.DataFrame | None,
    contrasts: Sequence[Mapping],
    confidence: float = intervals.CONFIDENCE,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """The primary contrasts with their t intervals, bootstrap intervals, Holm p-values and verdicts.

    Parameters
    ----------
    results:
        The tidy results table (rows with ``lr_selected`` False are left out).
    predictions:
        Test predictions, one row per (run, test alert): ``objectId``, ``candid``, ``label``,
        ``score`` and ``run_id`` (or ``task, arch, init, train_fraction, seed``). None leaves the
        bootstrap columns NaN.
    contrasts:
        The family, as the profile states it (see the module docstring); metric names may be
        aliases (``auc`` finds ``roc_auc``).
    confidence:
        Coverage of both intervals; a verdict needs a Holm p-value below ``1 - confidence``.
    n_boot, seed:
        Draws and seed of the hierarchical bootstrap.

    Returns
    -------
    pandas.DataFrame
        One row per contrast, columns ``CONTRAST_COLUMNS``. ``treatment`` and ``baseline`` name the
        models (``arch (init)``); ``n_replicates`` counts the pairs in the mean, ``n_excluded`` the
        pairs left out because a run failed the validation gate (``excluded_seeds`` lists them),
        ``n_failed_gate`` the failed runs of either model, ``n_unpaired`` the seeds with a run of
        one model only, ``n_non_finite`` the pairs left out for a non-finite value.
        ``difference, ci_low, ci_high, p_value``: mean difference over replicates with Student's t
        interval and p-value (the headline); ``p_holm``: Holm-adjusted over the contrasts;
        ``boot_*``: the hierarchical bootstrap's difference (from the predictions), interval and
        p-value, NaN where ``boot_note`` says why it was not computed (source-level metrics, no
        predictions). ``verdict``: the sentence of :func:`contrast_sentence`.
    """
    marked = mark_gate_failures(selected_rows(results))
    if "run_id" in marked.columns:
        marked = marked.drop_duplicates(["run_id", "metric"], keep="last")
    settings = {"n_boot": n_boot, "seed": seed, "confidence": confidence}
    rows = [_contrast_row(marked, predictions, contrast, confidence, settings) for contrast in contrasts]
    table = pd.DataFrame(rows, columns=list(CONTRAST_COLUMNS))
    table["p_holm"] = intervals.holm(table["p_value"].to_numpy(dtype=float)) if len(table) else []
    table["verdict"] = [contrast_sentence(row) for row in table.to_dict("records")]
    return table


def format_p(p: float) -> str:
    """A p-value for a sentence: three decimals, or ``< 0.001``."""
    return "n/a" if not np.isfinite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def contrast_sentence(row: Mapping, decimals: int = 3) -> str:
    """The verdict on one primary contrast, from its numbers.

    "<treatment> beats <baseline>" (or "is worse than", following ``higher_is_better``) when the
    Holm p-value is below ``1 - confidence``, otherwise "inconclusive"; both with the difference,
    the t interval, the replicates and the Holm p-value.
    """
    name, treatment, baseline, metric = row["name"], row["treatment"], row["baseline"], row["metric"]
    n, confidence = int(row["n_replicates"]), float(row.get("confidence", intervals.CONFIDENCE))
    failed = int(row.get("n_failed_gate", 0) or 0)
    left_out = f"; {failed} run{'s' if failed > 1 else ''} left out: failed the validation gate" if failed else ""
    if n == 0 or not np.isfinite(row["difference"]):
        return f"{name}: inconclusive: no replicates with both runs{left_out}."
    effect = f"{row['difference']:+.{decimals}f} {metric}"
    if n == 1:
        return f"{name}: inconclusive: {treatment} minus {baseline} is {effect} from a single replicate{left_out}."
    interval = f"[{row['ci_low']:+.{decimals}f}, {row['ci_high']:+.{decimals}f}]"
    numbers = f"{interval} ({confidence:.0%} t interval, {n} replicates{left_out}), Holm p = {format_p(row['p_holm'])}"
    if np.isfinite(row["p_holm"]) and row["p_holm"] < 1.0 - confidence:
        better = (row["difference"] > 0) == higher_is_better(metric)
        words = "beats" if better else "is worse than"
        return f"{name}: {treatment} {words} {baseline} by {effect} {numbers}."
    return f"{name}: inconclusive: {treatment} minus {baseline} is {effect} {numbers}."
