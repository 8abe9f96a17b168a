"""Which runs count: the learning-rate sweep's chosen runs, and the runs that passed the validation gate.

Every statistic of :mod:`alertlib.report` reads the tidy results table through these filters:

1. ``selected_rows``: rows whose ``lr_selected`` is False are the learning-rate sweep's runs that
   were not chosen; they are reported with the sweep and left out everywhere else, silently.
2. ``mark_gate_failures``: each row is flagged ``failed_gate`` when its run recorded
   ``gate_passed == 0`` (:mod:`alertlib.learn.checks`). Means and differences leave those runs out
   and count them (``n_failed_gate``).
3. ``gate_table``: per (task, arch, init, train_fraction), how many runs failed the gate and why.

A run is identified by its ``run_id`` where the table has one, else by its descriptors
(``RUN_KEYS``). A run without a ``gate_passed`` row (written before the gate existed) counts as
passed and is counted as ``unchecked`` in ``gate_table``.
"""

from __future__ import annotations

import math

import pandas as pd

from alertlib.report.tables import check_columns, sort_table

RUN_KEYS = ("task", "arch", "init", "train_fraction", "seed")
MODEL_KEYS = ("task", "arch", "init", "train_fraction")
GATE_PASSED = "gate_passed"


def selected_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs chosen by the learning-rate sweep (all rows when ``lr_selected`` is absent).

    A missing ``lr_selected`` value (tables concatenated from runs with and without a sweep) counts
    as selected; only an explicit False leaves a row out.
    """
    if "lr_selected" not in results.columns:
        return results
    unselected = results["lr_selected"].map(lambda flag: not pd.isna(flag) and not bool(flag))
    return results[~unselected.astype(bool)]


def _run_columns(results: pd.DataFrame) -> list[str]:
    """The columns that identify a run: ``run_id`` when present, else the descriptors."""
    return ["run_id"] if "run_id" in results.columns else list(RUN_KEYS)


def mark_gate_failures(results: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``results`` with a boolean column ``failed_gate``: the row's run recorded ``gate_passed == 0``."""
    table = results.copy()
    columns = _run_columns(table)
    gate_rows = table[table["metric"] == GATE_PASSED]
    values = pd.to_numeric(gate_rows["value"], errors="coerce")
    failed_runs = gate_rows.loc[values == 0.0, columns].drop_duplicates()
    if failed_runs.empty:
        table["failed_gate"] = False
        return table
    flagged = table[columns].merge(failed_runs.assign(_failed=True), on=columns, how="left")["_failed"]
    table["failed_gate"] = flagged.fillna(False).astype(bool).to_numpy()
    return table


def _per_run(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run with its descriptors and the gate's metrics as columns (NaN where absent)."""
    from alertlib.learn.checks import MAX_IDENTICAL_FRACTION, MIN_SCORE_SPREAD

    columns = _run_columns(results)
    keys = list(dict.fromkeys([*columns, *RUN_KEYS]))
    metrics = (GATE_PASSED, "gate_beats_constant", "val_score_spread", "val_identical_fraction", "dead_unit_fraction")
    table = results.copy()
    table["train_fraction"] = table["train_fraction"].astype(float)
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    runs = table[keys].drop_duplicates(columns).set_index(columns)
    gate = table[table["metric"].isin(metrics)].pivot_table(index=columns, columns="metric", values="value")
    runs = runs.join(gate.reindex(columns=list(metrics)))
    runs["failed"] = runs[GATE_PASSED] == 0.0
    runs["unchecked"] = runs[GATE_PASSED].isna()
    runs["failed_constant"] = runs["failed"] & (runs["gate_beats_constant"] == 0.0)
    runs["failed_spread"] = runs["failed"] & (runs["val_score_spread"] < MIN_SCORE_SPREAD)
    runs["failed_identical"] = runs["failed"] & (runs["val_identical_fraction"] > MAX_IDENTICAL_FRACTION)
    return runs.reset_index()


GATE_COLUMNS = (
    *MODEL_KEYS,
    "runs",
    "failed",
    "failure_rate",
    "not_beating_constant",
    "collapsed_spread",
    "piled_up",
    "unchecked",
    "dead_unit_fraction_mean",
    "dead_unit_fraction_max",
    "val_score_spread_min",
    "failed_seeds",
    "why",
)


def gate_table(results: pd.DataFrame) -> pd.DataFrame:
    """How many runs of each model failed the validation gate, and why.

    Parameters
    ----------
    results:
        The tidy results table with the gate's metrics (:mod:`alertlib.learn.checks`). Rows with
        ``lr_selected`` False are left out.

    Returns
    -------
    pandas.DataFrame
        One row per (task, arch, init, train_fraction); columns ``GATE_COLUMNS``: ``runs``,
        ``failed`` (``gate_passed == 0``), ``failure_rate`` (failed / runs); among the failed runs,
        how many did not beat the constant predictor (``not_beating_constant``), had their
        validation scores collapsed (``collapsed_spread``: spread below
        ``alertlib.learn.checks.MIN_SCORE_SPREAD``) or piled up on one value (``piled_up``: identical
        fraction above ``MAX_IDENTICAL_FRACTION``); a run can fail for several reasons.
        ``unchecked`` counts runs without a ``gate_passed`` metric; ``dead_unit_fraction_mean`` /
        ``_max`` and ``val_score_spread_min`` are over all runs; ``failed_seeds`` lists the failed
        runs' seeds (e.g. ``"1,4"``) and ``why`` says the reasons in words.
    """
    check_columns(results, (*RUN_KEYS, "metric", "value"), "results table")
    runs = _per_run(selected_rows(results))
    rows = []
    for key, group in runs.groupby(list(MODEL_KEYS), sort=False):
        failed = group[group["failed"]]
        reasons = {
            "not_beating_constant": int(group["failed_constant"].sum()),
            "collapsed_spread": int(group["failed_spread"].sum()),
            "piled_up": int(group["failed_identical"].sum()),
        }
        why = "; ".join(f"{count} {name.replace('_', ' ')}" for name, count in reasons.items() if count)
        dead = group["dead_unit_fraction"].dropna()
        spread = group["val_score_spread"].dropna()
        rows.append(
            {
                **dict(zip(MODEL_KEYS, key, strict=True)),
                "runs": len(group),
                "failed": len(failed),
                "failure_rate": len(failed) / len(group),
                **reasons,
                "unchecked": int(group["unchecked"].sum()),
                "dead_unit_fraction_mean": float(dead.mean()) if len(dead) else math.nan,
                "dead_unit_fraction_max": float(dead.max()) if len(dead) else math.nan,
                "val_score_spread_min": float(spread.min()) if len(spread) else math.nan,
                "failed_seeds": ",".join(str(s) for s in sorted(failed["seed"])),
                "why": why,
            }
        )
    return sort_table(pd.DataFrame(rows, columns=list(GATE_COLUMNS)))
