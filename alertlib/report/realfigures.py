"""Figures of the study on real alerts (notebook 04): scores per real class, few-shot learning
curves, and the realism of the simulated sky against each real set.

Every figure is built from the tables of :mod:`alertlib.study.realdata` and
:func:`alertlib.sky.realism.realism_by_set`; nothing is computed here but the drawing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.core.vocab import ordered_inits
from alertlib.report.figures import init_colour, new_figure

REAL_CLASS_ORDER = ("transient", "varstar", "agn", "asteroid", "bogus", "unlabelled")


def plot_score_distributions(scored: pd.DataFrame, arch: str = "resnet18", part: str | None = "evaluation"):
    """Zero-shot scores of real alerts per real class (weak labels), one panel per initialisation of
    ``arch``, over its replicates; ``part`` keeps the evaluation or development alerts (None: both)."""
    rows = scored[(scored["task"] == "bts") & (scored["arch"] == arch)]
    if part is not None:
        rows = rows[rows["evaluation"] == (part == "evaluation")]
    inits = ordered_inits(rows["init"])
    figure, axes = new_figure(1, max(1, len(inits)), panel_size=(3.2, 3.0), sharey=True)
    classes = [c for c in REAL_CLASS_ORDER if c in set(rows["alert_class"])]
    for ax, init in zip(axes[0], inits, strict=False):
        subset = rows[rows["init"] == init]
        values = [subset.loc[subset["alert_class"] == c, "score"].to_numpy() for c in classes]
        ax.boxplot(values, tick_labels=classes, showfliers=False)
        for position, value in enumerate(values, start=1):
            jitter = np.random.default_rng(position).uniform(-0.15, 0.15, len(value))
            ax.plot(position + jitter, value, ".", color=init_colour(init), alpha=0.3, markersize=3)
        ax.set_title(f"{arch} / {init}", fontsize=9)
        ax.tick_params(axis="x", rotation=45, labelsize=8)
        ax.axhline(0.5, color="0.6", linewidth=0.8, linestyle=":")
    axes[0][0].set_ylabel("BTS score (zero-shot)")
    figure.suptitle(f"real alerts ({part or 'all'} part), weak labels from cross-matches", fontsize=9)
    return figure


def plot_fewshot_curves(curves: pd.DataFrame):
    """Few-shot learning curves: ROC AUC on held-out real objects against k labelled objects per
    class, per initialisation, with the corrected resampled t interval."""
    figure, axes = new_figure(1, 1, panel_size=(5.0, 3.4))
    ax = axes[0][0]
    for offset, init in enumerate(ordered_inits(curves["init"])):
        rows = curves[curves["init"] == init].sort_values("k")
        x = rows["k"].to_numpy() * (1 + 0.03 * (offset - 2))  # a small shift keeps the bars apart
        low = rows["roc_auc"] - rows["ci_low"]
        high = rows["ci_high"] - rows["roc_auc"]
        ax.errorbar(x, rows["roc_auc"], yerr=[low, high], marker="o", capsize=3, label=init, color=init_colour(init))
    ax.axhline(0.5, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("labelled real objects per class (k)")
    ax.set_ylabel("ROC AUC, held-out real objects")
    ax.set_ylim(0.2, 1.02)
    ax.legend(fontsize=8, title="initialisation", title_fontsize=8)
    return figure


def plot_realism_by_set(table: pd.DataFrame):
    """The two-sample AUC of the simulated sky against each real set (0.5: indistinguishable)."""
    figure, axes = new_figure(1, 1, panel_size=(5.0, 0.5 + 0.45 * len(table)))
    ax = axes[0][0]
    y = np.arange(len(table))
    colours = np.where(table["development"].to_numpy(dtype=bool), "#1f77b4", "#d62728")
    ax.errorbar(
        table["auc"],
        y,
        xerr=[table["auc"] - table["auc_low"], table["auc_high"] - table["auc"]],
        fmt="none",
        ecolor="0.5",
        capsize=3,
    )
    ax.scatter(table["auc"], y, c=colours, zorder=3)
    ax.set_yticks(y, [f"{s} ({m})" for s, m in zip(table["set"], table["class_mix"], strict=True)], fontsize=8)
    ax.axvline(0.5, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlim(0.4, 1.0)
    ax.set_xlabel("two-sample AUC, statistics critic (blue: development sets, red: held out)")
    return figure
