"""The BTS source-level table: ranking of sources and each policy's completeness, purity, F1 and delay.

The BTSbot papers judge a model by what a survey would do with its scores: the policies of
:mod:`alertlib.learn.metrics` (``bts_p1``, ``bts_p2``, ``prod_p1``, ``prod_p2``) flag sources, and
their completeness, purity, F1 and delay are measured on the test sky's sources. ``policy_table``
gives each model's mean over replicates with Student's t interval, beside the mean number of true
(positive) sources per replicate's test sky: with a few dozen positive sources a completeness moves
in steps of a few per cent, and the intervals say whether the test sky can separate the models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.learn.metrics import POLICIES
from alertlib.report.seeds import summarise_over_seeds
from alertlib.report.tables import sort_table

RANKING_METRICS = ("source_roc_auc", "source_average_precision")
POLICY_QUANTITIES = ("completeness", "purity", "f1", "delay_days")
SKY_METRICS = ("positive_sources", "sources_kept")
POLICY_TABLE_COLUMNS = (
    "arch",
    "init",
    "policy",
    "quantity",
    "metric",
    "n_replicates",
    "n_non_finite",
    "n_failed_gate",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "positive_sources",
    "sources_kept",
)


def policy_metric_names(policies=POLICIES) -> list[str]:
    """The source-level metrics of the table: the two rankings, then each policy's quantities."""
    return [*RANKING_METRICS, *(f"{policy}_{quantity}" for policy in policies for quantity in POLICY_QUANTITIES)]


def policy_table(
    results: pd.DataFrame, task: str = "bts", train_fraction: float = 1.0, confidence: float = 0.95
) -> pd.DataFrame:
    """Source-level ranking and policy metrics per (arch, init), mean and t interval over replicates.

    Parameters
    ----------
    results:
        The tidy results table with the metrics of ``alertlib.learn.metrics.policy_metrics``; rows
        of ``task`` and ``train_fraction`` are used. Sweep runs not chosen (``lr_selected`` False)
        and runs that failed the validation gate are left out (the latter counted).
    confidence:
        Coverage of Student's t interval over replicates.

    Returns
    -------
    pandas.DataFrame
        One row per (arch, init, metric), columns ``POLICY_TABLE_COLUMNS``: ``policy`` (``""`` for
        the rankings ``source_roc_auc`` and ``source_average_precision``) and ``quantity``
        (``roc_auc``, ``average_precision``, ``completeness``, ``purity``, ``f1``, ``delay_days``);
        ``n_replicates``, ``n_non_finite``, ``n_failed_gate``, ``mean``, ``std``, ``ci_low``,
        ``ci_high`` as in ``summarise_over_seeds``; ``positive_sources`` and ``sources_kept``: the
        model's mean over its replicates of the test sky's true sources and of all sources kept by
        BTSbot's exclusions. ``table.pivot_table(index=["arch", "init", "policy"], columns="quantity",
        values="mean")`` gives one row per model and policy.
    """
    metrics = policy_metric_names()
    subset = results[(results["task"] == task) & np.isclose(results["train_fraction"].astype(float), train_fraction)]
    summary = summarise_over_seeds(subset, [*metrics, *SKY_METRICS], confidence=confidence)
    sky = summary[summary["metric"].isin(SKY_METRICS)].pivot_table(
        index=["arch", "init"], columns="metric", values="mean"
    )
    table = summary[summary["metric"].isin(metrics)].rename(columns={"n_seeds": "n_replicates"})
    table = table.join(sky.reindex(columns=list(SKY_METRICS)), on=["arch", "init"])
    names = {name: ("", name.removeprefix("source_")) for name in RANKING_METRICS}
    names |= {f"{p}_{q}": (p, q) for p in POLICIES for q in POLICY_QUANTITIES}
    table["policy"] = table["metric"].map(lambda m: names[m][0])
    table["quantity"] = table["metric"].map(lambda m: names[m][1])
    # Metrics in the table's order (rankings, then each policy's quantities), models in the study's order.
    table["metric"] = pd.Categorical(table["metric"], categories=metrics, ordered=True)
    table = sort_table(table)
    table["metric"] = table["metric"].astype(str)
    return table[list(POLICY_TABLE_COLUMNS)].reset_index(drop=True)
