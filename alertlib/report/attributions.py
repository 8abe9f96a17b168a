"""Where the reference model looks (notebook 05): the fraction of attribution on each channel by class,
and example alerts with their attribution maps.

The explanations come from :func:`alertlib.study.stages.explain_reference_model` (integrated
gradients, :mod:`alertlib.learn.attribution`); nothing is computed here but the table and the drawing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.core.vocab import CHANNELS
from alertlib.report.figures import _zscale, new_figure

FRACTIONS = [f"fraction_{channel}" for channel in CHANNELS]


def channel_fraction_table(explanations: dict) -> pd.DataFrame:
    """Mean fraction of absolute attribution on each channel, per set (simulated, real), class and
    outcome (correctly or wrongly classified), with the number of alerts explained."""
    frames = [found.table.assign(set=name) for name, found in explanations.items() if len(found.table)]
    if not frames:
        return pd.DataFrame(columns=["set", "alert_class", "outcome", "alerts", *FRACTIONS])
    rows = pd.concat(frames, ignore_index=True)
    rows["outcome"] = np.where(rows["correct"], "correct", "wrong")
    grouped = rows.groupby(["set", "alert_class", "outcome"], sort=True)
    table = grouped[FRACTIONS].mean()
    table.insert(0, "alerts", grouped.size())
    return table.reset_index()


def _examples(table: pd.DataFrame) -> list[tuple[str, str, int]]:
    """(class, outcome, row) of the first correct and the first wrong alert of each class."""
    picked = []
    for name in sorted(table["alert_class"].unique()):
        for outcome, correct in (("correct", True), ("wrong", False)):
            rows = np.flatnonzero((table["alert_class"] == name).to_numpy() & (table["correct"] == correct).to_numpy())
            if len(rows):
                picked.append((name, outcome, int(rows[0])))
    return picked


def plot_attribution_examples(found, title: str = ""):
    """For each class, a correctly and a wrongly classified alert (where one exists): the three
    stamps as the model saw them, then the three attribution maps on one symmetric scale per alert
    (red pushes the score up, blue down), each titled with its fraction of the absolute attribution."""
    examples = _examples(found.table)
    figure, axes = new_figure(max(len(examples), 1), 6, panel_size=(1.25, 1.35))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for row, (name, outcome, index) in enumerate(examples):
        image, attribution = found.images[index], found.attributions[index]
        scale = float(np.abs(attribution).max()) or 1.0
        alert = found.table.iloc[index]
        for channel, channel_name in enumerate(CHANNELS):
            low, high = _zscale(image[channel])
            axes[row, channel].imshow(image[channel], cmap="gray", vmin=low, vmax=high, origin="lower")
            axes[row, 3 + channel].imshow(attribution[channel], cmap="RdBu_r", vmin=-scale, vmax=scale, origin="lower")
            fraction = alert[f"fraction_{channel_name}"]
            axes[row, 3 + channel].set_title(f"{channel_name} {fraction:.0%}", fontsize=6)
            if row == 0:
                axes[row, channel].set_title(channel_name, fontsize=7)
        axes[row, 0].set_ylabel(f"{name}\n{outcome}\nscore {alert['score']:.2f}", fontsize=7)
    if not examples:
        axes[0, 0].text(0.0, 0.5, "no alerts explained", fontsize=8)
    figure.suptitle(title or "stamps (left) and integrated-gradients attribution (right)", fontsize=9)
    return figure
