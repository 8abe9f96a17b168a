"""Results tables: reading them, checking their columns, naming their metrics, ordering their rows.

The study's results are long tables (``alertlib.learn.results``: one row per run and metric). This
module holds what every summary and figure needs to read them:

- ``load_per_run_tables``: one long table from a per-run file (predictions, curves) of every run;
- ``check_columns``: a ValueError naming the columns a table lacks;
- metric names: ``resolve_metric`` (aliases such as ``auc`` for ``roc_auc``), ``higher_is_better``,
  and the binned metrics of completeness and purity in bins of peak magnitude
  (``binned_metric_name``, ``parse_binned_metric``, ``binned_metrics``);
- ``sort_table``: rows in the study's order of tasks, architectures and initialisations.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from alertlib.core.vocab import ARCH_ORDER, INIT_ORDER, order_key

# Metric names vary between writers; the headline looks a requested name up through these aliases.
METRIC_ALIASES = {
    "auc": ("auc", "roc_auc", "auroc", "roc_auc_ovr"),
    "f1": ("f1", "f1_score", "f1_at_0.5"),
    "macro_f1": ("macro_f1", "f1_macro"),
    "balanced_accuracy": ("balanced_accuracy", "bacc"),
}
# Metric names containing one of these words are better when lower.
LOWER_IS_BETTER_WORDS = ("loss", "brier", "error", "latency", "mem", "ece", "time")

# Completeness and purity in bins of peak magnitude are stored as metrics named
# ``[<policy>_]<quantity>_<low>-<high>`` (``alertlib.learn.metrics``: ``bts_p1_completeness_17.00-17.25``)
# or ``<quantity>_<low>_<high>`` (``completeness_17.00_17.25``); ``parse_binned_metric`` reads both.
BINNED_QUANTITIES = ("completeness", "purity")
_BINNED_RE = re.compile(
    r"^(?:(?P<policy>\w+?)_)?(?P<quantity>[A-Za-z][A-Za-z0-9]*)_(?P<low>\d+(?:\.\d+)?)[-_](?P<high>\d+(?:\.\d+)?)$"
)

# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` are better (false for losses, latency, memory...)."""
    lowered = str(metric).lower()
    return not any(word in lowered for word in LOWER_IS_BETTER_WORDS)


def resolve_metric(results: pd.DataFrame, name: str) -> str | None:
    """The metric name used in ``results`` for ``name`` (itself, or one of its ``METRIC_ALIASES``).

    Returns None when neither the name nor an alias is present.
    """
    present = set(results["metric"].unique())
    for candidate in (name, *METRIC_ALIASES.get(name, ())):
        if candidate in present:
            return candidate
    return None


def sort_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rows in the study's order: task, architecture and initialisation orders, fraction, metric, seed."""
    if table.empty:
        return table.reset_index(drop=True)
    keys = [
        c
        for c in ("task", "arch", "init", "treatment", "baseline", "train_fraction", "metric", "seed")
        if c in table.columns
    ]

    def position(series: pd.Series) -> pd.Series:
        # Known names by their place in the study's order, unknown ones after them, alphabetically.
        if series.name == "arch":
            return series.map(lambda v: "{:04d}|{}".format(*order_key(v, ARCH_ORDER)))
        if series.name in ("init", "treatment", "baseline"):
            return series.map(lambda v: "{:04d}|{}".format(*order_key(v, INIT_ORDER)))
        return series

    return table.sort_values(keys, key=position, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Per-run files as long tables
# --------------------------------------------------------------------------------------------

RUN_DESCRIPTORS = ("run_id", "task", "arch", "init", "train_fraction", "seed")


def load_per_run_tables(
    folder: str | Path, filename: str = "predictions_test.parquet", descriptors: Sequence[str] = RUN_DESCRIPTORS
) -> pd.DataFrame:
    """One long table from a per-run file of every run under ``folder``, tagged with its run.

    Each run folder holds ``results.parquet`` (``alertlib.learn.finetune``) beside files such as
    ``predictions_test.parquet`` or ``curves.csv``; this reads ``filename`` of every run and adds
    the run's ``descriptors`` (from its results table) as columns, ready for the figures.

    Runs without ``filename`` are skipped with a warning that counts them and names one.
    """
    frames, missing = [], []
    for results_path in sorted(Path(folder).rglob("results.parquet")):
        path = results_path.parent / filename
        if not path.is_file():
            missing.append(path)
            continue
        run = pd.read_parquet(results_path, columns=list(descriptors))
        if run.empty:
            missing.append(results_path)
            continue
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        frames.append(table.assign(**{name: run[name].iloc[0] for name in descriptors}))
    if missing:
        warnings.warn(
            f"{len(missing)} runs under {folder} have no {filename} (e.g. {missing[0]}); they are left out",
            stacklevel=2,
        )
    if not frames:
        return pd.DataFrame(columns=list(descriptors))
    return pd.concat(frames, ignore_index=True)


def check_columns(table: pd.DataFrame, required: Iterable[str], what: str) -> None:
    """Raise a ValueError naming the missing columns of ``table`` (described as ``what``)."""
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {list(table.columns)}")


# --------------------------------------------------------------------------------------------
# Completeness and purity in bins of peak magnitude
# --------------------------------------------------------------------------------------------


class BinnedMetric(NamedTuple):
    """A metric computed in one bin of peak magnitude, read from its name."""

    policy: str  # source-level policy (e.g. ``bts_p1``), "" when the name has none
    quantity: str  # e.g. ``completeness`` or ``purity``
    low: float  # bin edges in magnitudes, low <= peakmag < high
    high: float


def binned_metric_name(quantity: str, low: float, high: float, policy: str = "") -> str:
    """The results-table name of a binned metric, in the form ``alertlib.learn.metrics`` writes.

    ``binned_metric_name("purity", 17, 17.25, "bts_p1")`` -> ``"bts_p1_purity_17.00-17.25"``;
    without a policy, ``"purity_17.00-17.25"``. ``parse_binned_metric`` reads it back.
    """
    if not low < high:
        raise ValueError(f"a bin needs low < high, got [{low}, {high}]")
    return f"{policy + '_' if policy else ''}{quantity}_{low:.2f}-{high:.2f}"


def parse_binned_metric(name: str) -> BinnedMetric | None:
    """The policy, quantity and bin of a binned metric name, or None for any other metric.

    Accepted forms: ``[<policy>_]<quantity>_<low>-<high>`` (as ``alertlib.learn.metrics`` writes, e.g.
    ``bts_p1_completeness_17.00-17.25``) and ``[<policy>_]<quantity>_<low>_<high>`` (e.g.
    ``completeness_17.00_17.25``). The quantity is the last word before the edges; the edges are
    magnitudes with low < high (an error otherwise, since it means a writer's bug).
    """
    match = _BINNED_RE.match(str(name))
    if match is None:
        return None
    low, high = float(match["low"]), float(match["high"])
    if not low < high:
        raise ValueError(f"binned metric {name!r} has its bin edges the wrong way round ({low} >= {high})")
    return BinnedMetric(match["policy"] or "", match["quantity"], low, high)


def binned_metrics(table: pd.DataFrame, quantities: Iterable[str] = BINNED_QUANTITIES) -> pd.DataFrame:
    """The rows of ``table`` whose ``metric`` is a binned quantity, with the bin parsed out.

    Works on the results table and on the output of ``summarise_over_seeds`` alike.

    Returns
    -------
    pandas.DataFrame
        The matching rows plus columns ``policy`` ("" when none), ``quantity``, ``mag_low``,
        ``mag_high`` and ``mag_center``.
    """
    quantities = set(quantities)
    parsed = table["metric"].map(parse_binned_metric)
    keep = parsed.map(lambda p: p is not None and p.quantity in quantities).astype(bool)
    selected = table[keep].copy()
    parts = parsed[keep]
    selected["policy"] = [p.policy for p in parts]
    selected["quantity"] = [p.quantity for p in parts]
    selected["mag_low"] = [p.low for p in parts]
    selected["mag_high"] = [p.high for p in parts]
    selected["mag_center"] = (selected["mag_low"] + selected["mag_high"]) / 2.0
    return selected.reset_index(drop=True)


def modality_comparison(summary: pd.DataFrame, metric: str = "roc_auc") -> pd.DataFrame:
    """Image-only models beside their image + metadata versions (``<arch>+meta``), mean over replicates.

    ``summary`` is :func:`alertlib.report.seeds.summarise_over_seeds`'s table. One row per task,
    image architecture and initialisation that has an image + metadata run; a column per input kind
    (``image``, ``image + meta``, ``image + meta-frozen``) with the mean of ``metric``. The intervals of
    the differences are the primary contrasts' (:mod:`alertlib.report.contrasts`, notebook 05).
    """
    rows = summary[summary["metric"] == metric]
    parts = rows["arch"].astype(str).str.partition("+")
    rows = rows.assign(
        image_arch=parts[0], inputs=parts[2].map(lambda suffix: f"image + {suffix}" if suffix else "image")
    )
    wide = rows.pivot_table(index=["task", "image_arch", "init"], columns="inputs", values="mean", aggfunc="first")
    with_meta = [column for column in wide.columns if column != "image"]
    if not with_meta:
        return pd.DataFrame(columns=["task", "image_arch", "init", "image"])
    wide = wide[wide[with_meta].notna().any(axis=1)].reset_index()
    wide.columns.name = None
    return wide
