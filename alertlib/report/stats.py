"""Statistics over seeds: means, bootstrap intervals, paired differences and the study's headline table.

Every comparison of the study is a mean over seeds with a percentile-bootstrap interval (95% by
default), and every claim is a paired difference matched by seed, with its own interval:

1. ``summarise_over_seeds``: mean, standard deviation and interval per
   (task, arch, init, train_fraction, metric).
2. ``paired_differences``: galaxy pre-training minus each alternative initialisation, same
   task, architecture and training fraction, matched by seed.
3. ``architecture_differences``: each architecture and initialisation minus the custom CNN
   (``btsbot_cnn``), matched by seed.
4. ``efficiency_ratios``: speed and memory ratios against the custom CNN, from the benchmark table.
5. ``headline_table`` gathers 2-4 for the study's claims and ``verdict`` turns each row into a
   sentence generated from its numbers.

Inputs are tables only: the tidy results table of ``alertlib.learn.results`` (one row per run and metric),
per-run test predictions, and the efficiency benchmark table. Everything is deterministic: the
bootstrap draws from ``numpy.random.default_rng(seed)``.

A caution that the verdicts repeat: with a handful of seeds a percentile bootstrap interval is
narrow (it cannot be wider than the spread of the seeds' values), so it is a description of the
seeds that were run, not a guarantee; with one seed it is degenerate (zero width) and says nothing.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from alertlib.core.vocab import (
    ARCH_ORDER,
    CLASSIC_ARCHS,
    GENERIC_INITS,
    INIT_ORDER,
    REFERENCE_ARCH,
    is_galaxy_init,
    order_key,
    ordered_inits,
)

# A result is identified by these columns (plus the seed, over which we summarise).
SUMMARY_KEYS = ("task", "arch", "init", "train_fraction", "metric")
COMPARISON_KEYS = ("task", "arch", "train_fraction", "metric")

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
# The bootstrap
# --------------------------------------------------------------------------------------------


def bootstrap_mean_interval(
    values, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile-bootstrap interval.

    Parameters
    ----------
    values:
        One number per seed (or per pair of seeds, for a paired difference). Must be finite.
    n_resamples:
        Bootstrap resamples (each draws ``len(values)`` values with replacement).
    confidence:
        Coverage of the interval, e.g. 0.95 for the 2.5th and 97.5th percentiles.
    seed:
        Seed of ``numpy.random.default_rng``: the same inputs and seed give the same interval.

    Returns
    -------
    (mean, low, high)
        With one value the interval is degenerate: ``low == high == mean``. With none, all NaN.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError(f"bootstrap_mean_interval: values must be finite, got {values.tolist()}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    count = len(values)
    if count == 0:
        return (math.nan, math.nan, math.nan)
    if np.all(values == values[0]):
        # One value or identical values: every resample has that mean, so the interval has zero width.
        # Returned exactly (a floating-point mean of equal numbers can differ in the last bit).
        value = float(values[0])
        return (value, value, value)
    mean = float(values.mean())
    rng = np.random.default_rng(seed)
    resampled_means = np.empty(n_resamples)
    # Draw in chunks so that long inputs (e.g. per-alert values) do not need a huge index array.
    chunk = max(1, 4_000_000 // count)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        indices = rng.integers(0, count, size=(stop - start, count))
        resampled_means[start:stop] = values[indices].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled_means, [tail, 1.0 - tail])
    return (mean, float(low), float(high))


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


# --------------------------------------------------------------------------------------------
# Per-seed values and their summary
# --------------------------------------------------------------------------------------------


def check_columns(table: pd.DataFrame, required: Iterable[str], what: str) -> None:
    """Raise a ValueError naming the missing columns of ``table`` (described as ``what``)."""
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {list(table.columns)}")


def per_seed_values(results: pd.DataFrame, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per (task, arch, init, train_fraction, metric, seed) with its ``value``.

    Rows with a non-finite value (e.g. an AUC on a test set with one class) are dropped with a
    warning that counts them. The same run loaded twice (same ``run_id`` and metric) is kept once,
    also with a warning. Two different runs for the same key and seed are an error: the table mixes
    studies (e.g. two profiles or data versions) and must be filtered first.

    Parameters
    ----------
    results:
        The tidy results table (``alertlib.learn.results.COLUMNS``; ``run_id`` is optional).
    metrics:
        Keep only these metric names (all when None).
    """
    check_columns(results, (*SUMMARY_KEYS, "seed", "value"), "results table")
    table = results
    if metrics is not None:
        table = table[table["metric"].isin(list(metrics))]
    table = table.copy()
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    table["train_fraction"] = table["train_fraction"].astype(float)
    non_finite = ~np.isfinite(table["value"].to_numpy(dtype=np.float64))
    if non_finite.any():
        examples = table.loc[non_finite, ["arch", "init", "seed", "metric"]].head(3).to_dict("records")
        warnings.warn(
            f"dropped {int(non_finite.sum())} results rows with a non-finite value (e.g. {examples})",
            stacklevel=2,
        )
        table = table[~non_finite]
    if "run_id" in table.columns:
        repeated = table.duplicated(["run_id", "metric"], keep="last")
        if repeated.any():
            warnings.warn(
                f"dropped {int(repeated.sum())} repeated rows of the same run_id and metric (a run loaded twice)",
                stacklevel=2,
            )
            table = table[~repeated]
    key = [*SUMMARY_KEYS, "seed"]
    clash = table.duplicated(key, keep=False)
    if clash.any():
        first = table.loc[clash, key].drop_duplicates().head(3).to_dict("records")
        raise ValueError(
            f"results hold more than one run for {int(clash.sum())} rows' (task, arch, init, train_fraction, "
            f"metric, seed), e.g. {first}. The table mixes studies: filter it to one study first "
            f"(e.g. on data_version, code_version or config) before summarising."
        )
    return sort_table(table[[*key, "value"]])


def summarise_over_seeds(
    results: pd.DataFrame,
    metrics: Iterable[str] | None = None,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean and bootstrap interval over seeds for each (task, arch, init, train_fraction, metric).

    Parameters
    ----------
    results:
        The tidy results table.
    metrics:
        Metric names to summarise (all when None).
    n_resamples, confidence, seed:
        The bootstrap (see ``bootstrap_mean_interval``).

    Returns
    -------
    pandas.DataFrame
        Columns ``task, arch, init, train_fraction, metric, n_seeds, seeds, mean, std, ci_low, ci_high,
        interval_degenerate``; ``seeds`` lists the seeds (e.g. ``"0,1,2"``), ``std`` is the sample
        standard deviation (NaN for one seed), ``interval_degenerate`` is true where one seed (or
        identical values) gives a zero-width interval. Only the combinations present appear.
    """
    values = per_seed_values(results, metrics)
    rows = []
    for key, group in values.groupby(list(SUMMARY_KEYS), sort=False):
        mean, low, high = bootstrap_mean_interval(group["value"], n_resamples, confidence, seed)
        rows.append(
            {
                **dict(zip(SUMMARY_KEYS, key, strict=True)),
                "n_seeds": len(group),
                "seeds": ",".join(str(s) for s in sorted(group["seed"])),
                "mean": mean,
                "std": float(group["value"].std(ddof=1)) if len(group) > 1 else math.nan,
                "ci_low": low,
                "ci_high": high,
                "interval_degenerate": bool(low == high),
            }
        )
    columns = [*SUMMARY_KEYS, "n_seeds", "seeds", "mean", "std", "ci_low", "ci_high", "interval_degenerate"]
    return sort_table(pd.DataFrame(rows, columns=columns))


# --------------------------------------------------------------------------------------------
# Paired differences
# --------------------------------------------------------------------------------------------


def _paired_row(treatment: pd.Series, baseline: pd.Series, n_resamples: int, confidence: float, seed: int) -> dict:
    """Difference treatment - baseline over the keys (seeds) both have, with its bootstrap interval."""
    common = treatment.index.intersection(baseline.index)
    differences = (treatment.loc[common] - baseline.loc[common]).to_numpy(dtype=np.float64)
    mean, low, high = bootstrap_mean_interval(differences, n_resamples, confidence, seed)
    baseline_mean = float(baseline.loc[common].mean()) if len(common) else math.nan
    return {
        "n_pairs": len(common),
        "n_unpaired": len(treatment.index.symmetric_difference(baseline.index)),
        "treatment_mean": float(treatment.loc[common].mean()) if len(common) else math.nan,
        "baseline_mean": baseline_mean,
        "difference": mean,
        "ci_low": low,
        "ci_high": high,
        "relative_difference": mean / baseline_mean if len(common) and baseline_mean != 0.0 else math.nan,
        "interval_degenerate": bool(len(common) > 0 and low == high),
    }


PAIRED_COLUMNS = (
    "n_pairs",
    "n_unpaired",
    "treatment_mean",
    "baseline_mean",
    "difference",
    "ci_low",
    "ci_high",
    "relative_difference",
    "interval_degenerate",
)


def paired_differences(
    results: pd.DataFrame,
    metrics: Iterable[str] | None = None,
    treatment_inits: Iterable[str] | None = None,
    baseline_inits: Iterable[str] | None = None,
    by: Sequence[str] = COMPARISON_KEYS,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Galaxy pre-training minus each alternative initialisation, matched by seed, with intervals.

    For each group of ``by`` (by default the same task, architecture, training fraction and
    metric), each treatment initialisation and each baseline initialisation present in that group,
    the difference treatment - baseline is taken seed by seed over the seeds both have, then
    averaged and bootstrapped. Leaving ``arch`` out of ``by`` pools architectures: pairs are then
    matched on (arch, seed).

    Parameters
    ----------
    results:
        The tidy results table.
    metrics:
        Metric names (all when None).
    treatment_inits:
        Default: every initialisation whose name starts with ``galaxy`` (``is_galaxy_init``).
    baseline_inits:
        Default: every other initialisation present (scratch, synthetic, imagenet...).
    by:
        Grouping columns, a subset of ``COMPARISON_KEYS`` that includes ``metric``.

    Returns
    -------
    pandas.DataFrame
        Columns ``*by, treatment, baseline, n_pairs, n_unpaired, treatment_mean, baseline_mean,
        difference, ci_low, ci_high, relative_difference, interval_degenerate``. ``n_unpaired``
        counts seeds present for only one of the two; ``treatment_mean`` and ``baseline_mean`` are
        over the paired seeds; ``relative_difference`` is difference / baseline_mean.
    """
    by = list(by)
    if "metric" not in by or not set(by) <= set(COMPARISON_KEYS):
        raise ValueError(f"by must be a subset of {COMPARISON_KEYS} that includes 'metric', got {by}")
    match_on = ["seed", *[k for k in COMPARISON_KEYS if k not in by]]
    values = per_seed_values(results, metrics)
    present = ordered_inits(values["init"])
    treatments = ordered_inits(treatment_inits) if treatment_inits is not None else []
    if treatment_inits is None:
        treatments = [i for i in present if is_galaxy_init(i)]
    if baseline_inits is not None:
        baselines = ordered_inits(baseline_inits)
    else:
        baselines = [i for i in present if i not in treatments]
    rows = []
    for key, group in values.groupby(by, sort=False):
        by_init = {init: part.set_index(match_on)["value"] for init, part in group.groupby("init")}
        for treatment in treatments:
            for baseline in baselines:
                if treatment == baseline or treatment not in by_init or baseline not in by_init:
                    continue
                paired = _paired_row(by_init[treatment], by_init[baseline], n_resamples, confidence, seed)
                rows.append({**dict(zip(by, key, strict=True)), "treatment": treatment, "baseline": baseline, **paired})
    return sort_table(pd.DataFrame(rows, columns=[*by, "treatment", "baseline", *PAIRED_COLUMNS]))


def reference_init_for(inits: Iterable[str], preferred: str | None) -> str | None:
    """The reference's initialisation: ``preferred`` if present, else scratch, else the first in order."""
    inits = ordered_inits(inits)
    if preferred is not None:
        return preferred if preferred in inits else None
    return "scratch" if "scratch" in inits else (inits[0] if inits else None)


def architecture_differences(
    results: pd.DataFrame,
    metrics: Iterable[str] | None = None,
    reference_arch: str = REFERENCE_ARCH,
    reference_init: str | None = None,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Each (architecture, initialisation) minus the custom CNN, matched by seed, with intervals.

    Within each (task, train_fraction, metric), the reference is ``reference_arch`` with
    ``reference_init`` (default: its ``scratch`` run, else its first initialisation in
    ``INIT_ORDER``). Groups without the reference are left out.

    Returns
    -------
    pandas.DataFrame
        Columns ``task, train_fraction, metric, arch, init, reference_arch, reference_init`` and the
        paired columns of ``paired_differences`` (treatment = the architecture, baseline = the CNN).
    """
    values = per_seed_values(results, metrics)
    keys = ["task", "train_fraction", "metric"]
    rows = []
    for key, group in values.groupby(keys, sort=False):
        reference_rows = group[group["arch"] == reference_arch]
        ref_init = reference_init_for(reference_rows["init"], reference_init)
        if ref_init is None:
            continue
        reference = reference_rows[reference_rows["init"] == ref_init].set_index("seed")["value"]
        for (arch, init), part in group.groupby(["arch", "init"], sort=False):
            if arch == reference_arch:
                continue
            paired = _paired_row(part.set_index("seed")["value"], reference, n_resamples, confidence, seed)
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "arch": arch,
                    "init": init,
                    "reference_arch": reference_arch,
                    "reference_init": ref_init,
                    **paired,
                }
            )
    columns = [*keys, "arch", "init", "reference_arch", "reference_init", *PAIRED_COLUMNS]
    return sort_table(pd.DataFrame(rows, columns=columns))


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


# --------------------------------------------------------------------------------------------
# Predictions: confusion tables
# --------------------------------------------------------------------------------------------

# Multi-class predictions: ``alertlib.learn.finetune`` writes ``label`` (class index), ``predicted`` (class
# index) and ``prob_<class>`` columns in class-index order; other writers may use ``alert_class``,
# ``predicted_class`` and ``score_<class>``. Both are read.
TRUE_CLASS_COLUMNS = ("alert_class", "label")
PREDICTED_CLASS_COLUMNS = ("predicted_class", "predicted")
CLASS_SCORE_PREFIXES = ("prob_", "score_")


def is_multiclass(predictions: pd.DataFrame) -> bool:
    """Whether a predictions table is multi-class (it has a class column or per-class scores).

    Columns that hold no value at all are ignored: a binary subset of a table concatenated over
    tasks keeps the (empty) per-class columns of the multi-class runs.
    """
    columns = set(predictions.columns[predictions.notna().any()])
    return (
        "alert_class" in columns
        or any(c in columns for c in PREDICTED_CLASS_COLUMNS)
        or any(c.startswith(CLASS_SCORE_PREFIXES) for c in columns)
    )


def true_and_predicted(predictions: pd.DataFrame, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, list]:
    """True and predicted classes of a predictions table, and the classes in order.

    Binary tables have ``label`` (0/1) and ``score`` (probability of class 1); the prediction is
    ``score >= threshold`` and the classes are ``[0, 1]``. Multi-class tables have the true class in
    ``alert_class`` or ``label``, and the prediction in ``predicted_class`` / ``predicted`` or as the
    highest of the per-class columns ``prob_<class>`` / ``score_<class>``. Class indices are turned
    into names when per-class columns give them (column order = class index, as
    ``alertlib.learn.finetune`` writes them).
    """
    if not is_multiclass(predictions):
        check_columns(predictions, ("label", "score"), "binary predictions table")
        truth = predictions["label"].to_numpy().astype(int)
        predicted = (predictions["score"].to_numpy(dtype=np.float64) >= threshold).astype(int)
        return truth, predicted, [0, 1]
    true_column = next((c for c in TRUE_CLASS_COLUMNS if c in predictions.columns), None)
    if true_column is None:
        raise ValueError(
            f"multi-class predictions need a true class column {TRUE_CLASS_COLUMNS}; found {list(predictions.columns)}"
        )
    truth = predictions[true_column].to_numpy()
    prefix = next((p for p in CLASS_SCORE_PREFIXES if any(c.startswith(p) for c in predictions.columns)), None)
    score_columns = [c for c in predictions.columns if prefix and c.startswith(prefix)]
    names = np.array([c[len(prefix) :] for c in score_columns]) if score_columns else None
    predicted_column = next((c for c in PREDICTED_CLASS_COLUMNS if c in predictions.columns), None)
    if predicted_column is not None:
        predicted = predictions[predicted_column].to_numpy()
    elif names is not None:
        predicted = np.argmax(predictions[score_columns].to_numpy(dtype=np.float64), axis=1)
    else:
        raise ValueError(
            f"multi-class predictions need a predicted class column {PREDICTED_CLASS_COLUMNS} or per-class "
            f"columns {CLASS_SCORE_PREFIXES}<class>; found {list(predictions.columns)}"
        )
    if names is not None:
        # Integer class indices become the names the per-class columns carry.
        def to_names(values: np.ndarray) -> np.ndarray:
            return names[values.astype(int)] if np.issubdtype(values.dtype, np.integer) else values.astype(str)

        truth, predicted = to_names(truth), to_names(predicted)
        order = [*names.tolist(), *sorted(set(truth.tolist()) - set(names.tolist()))]
        return truth, predicted, order
    classes = sorted(set(truth.tolist()) | set(predicted.tolist()), key=str)
    return truth, predicted, classes


def confusion_table(predictions: pd.DataFrame, threshold: float = 0.5, normalise: bool = True) -> pd.DataFrame:
    """Confusion matrix (rows: true class, columns: predicted class) of one predictions table.

    Parameters
    ----------
    predictions:
        See ``true_and_predicted`` for the columns. Concatenate several seeds' tables to pool them.
    normalise:
        Divide each row by its count (so each row is the distribution of predictions for that true
        class; its diagonal is the per-class accuracy). Rows with no examples stay NaN.
    """
    from sklearn.metrics import confusion_matrix

    truth, predicted, classes = true_and_predicted(predictions, threshold)
    counts = confusion_matrix(truth, predicted, labels=classes).astype(np.float64)
    if normalise:
        totals = counts.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            counts = np.where(totals > 0, counts / totals, np.nan)
    table = pd.DataFrame(counts, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))
    return table


# --------------------------------------------------------------------------------------------
# The efficiency benchmark
# --------------------------------------------------------------------------------------------


def select_benchmark_rows(
    benchmark: pd.DataFrame,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    impl: str | None = "alertlib",
    variant: str | None = None,
) -> pd.DataFrame:
    """One benchmark row per (device, model): the measurement the comparisons use.

    Parameters
    ----------
    benchmark:
        The efficiency table (:data:`alertlib.bench.profiling.ROW_COLUMNS`; one row per model, impl, device, dtype,
        variant and batch size).
    device:
        Keep this device only (all devices when None; each is handled separately).
    dtype:
        Default per device: ``float32`` when present, else the first dtype in sorted order.
    batch_size:
        Default per device: the largest batch size measured on it (at the chosen dtype).
    impl:
        Keep this implementation (``alertlib`` or ``btsbot``); None keeps all.
    variant:
        Keep this variant (``eager``, ``channels_last``, ``compile``...). None picks, per model, the
        variant with the highest ``alerts_per_s`` (the one the study uses for inference).

    Returns
    -------
    pandas.DataFrame
        The chosen rows, in the study's architecture order within each device.
    """
    check_columns(benchmark, ("model", "device", "dtype", "variant", "batch_size", "alerts_per_s"), "benchmark table")
    table = benchmark
    if impl is not None and "impl" in table.columns:
        table = table[table["impl"] == impl]
    if device is not None:
        table = table[table["device"] == device]
    chosen = []
    for _device, rows in table.groupby("device", sort=True):
        dtypes = sorted(rows["dtype"].astype(str).unique())
        chosen_dtype = dtype if dtype is not None else ("float32" if "float32" in dtypes else dtypes[0])
        rows = rows[rows["dtype"] == chosen_dtype]
        if rows.empty:
            continue
        chosen_batch = batch_size if batch_size is not None else int(rows["batch_size"].max())
        rows = rows[rows["batch_size"] == chosen_batch]
        if variant is not None:
            rows = rows[rows["variant"] == variant]
        key = ["model", *(["impl"] if "impl" in rows.columns else [])]
        if variant is not None and rows.duplicated(key).any():
            raise ValueError(
                f"benchmark table holds several rows for the same model, device {_device}, dtype {chosen_dtype}, "
                f"batch {chosen_batch}, variant {variant}: filter it to one benchmark run first"
            )
        best = rows.sort_values("alerts_per_s", ascending=False, kind="stable").drop_duplicates(key, keep="first")
        chosen.append(best)
    if not chosen:
        return table.iloc[0:0].copy()
    selected = pd.concat(chosen, ignore_index=True)
    order = selected["model"].map(lambda m: order_key(m, ARCH_ORDER))
    selected = selected.assign(_order=order).sort_values(["device", "_order"], kind="stable")
    return selected.drop(columns="_order").reset_index(drop=True)


def efficiency_ratios(
    benchmark: pd.DataFrame,
    reference_model: str = REFERENCE_ARCH,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    impl: str | None = "alertlib",
    variant: str | None = None,
) -> pd.DataFrame:
    """Speed and memory of each model relative to the custom CNN, per device.

    Rows come from ``select_benchmark_rows`` (same arguments). Ratios are model / reference:
    ``speed_ratio`` > 1 means more alerts per second than the CNN, ``memory_ratio`` < 1 means less
    peak memory, ``params_ratio`` and ``macs_ratio`` compare sizes and multiply-adds.

    Returns
    -------
    pandas.DataFrame
        Columns ``device, dtype, batch_size, model, variant, reference_model, reference_variant,
        alerts_per_s, reference_alerts_per_s, speed_ratio, latency_ms, reference_latency_ms,
        latency_ratio, peak_mem_mb, reference_peak_mem_mb, memory_ratio, params, reference_params,
        params_ratio, macs, reference_macs, macs_ratio``. Devices without the reference are left out.
    """
    selected = select_benchmark_rows(benchmark, device, dtype, batch_size, impl, variant)
    rows = []
    for device_name, group in selected.groupby("device", sort=False):
        reference = group[group["model"] == reference_model]
        if reference.empty:
            warnings.warn(
                f"benchmark on {device_name}: no row for the reference model {reference_model!r} at the chosen "
                f"dtype/batch size/variant; no ratios for this device",
                stacklevel=2,
            )
            continue
        ref = reference.iloc[0]
        for _, row in group[group["model"] != reference_model].iterrows():
            record = {
                "device": device_name,
                "dtype": row["dtype"],
                "batch_size": int(row["batch_size"]),
                "model": row["model"],
                "variant": row["variant"],
                "reference_model": reference_model,
                "reference_variant": ref["variant"],
            }
            for column, ratio_name in (
                ("alerts_per_s", "speed_ratio"),
                ("latency_ms", "latency_ratio"),
                ("peak_mem_mb", "memory_ratio"),
                ("params", "params_ratio"),
                ("macs", "macs_ratio"),
            ):
                value = float(row[column]) if column in row.index else math.nan
                reference_value = float(ref[column]) if column in ref.index else math.nan
                record[column] = value
                record[f"reference_{column}"] = reference_value
                record[ratio_name] = value / reference_value if reference_value else math.nan
            rows.append(record)
    columns = ["device", "dtype", "batch_size", "model", "variant", "reference_model", "reference_variant"]
    for column, ratio_name in (
        ("alerts_per_s", "speed_ratio"),
        ("latency_ms", "latency_ratio"),
        ("peak_mem_mb", "memory_ratio"),
        ("params", "params_ratio"),
        ("macs", "macs_ratio"),
    ):
        columns += [column, f"reference_{column}", ratio_name]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------
# The headline table and its verdicts
# --------------------------------------------------------------------------------------------

HEADLINE_COLUMNS = (
    "claim",
    "task",
    "train_fraction",
    "metric",
    "scope",
    "treatment",
    "baseline",
    "n",
    "treatment_value",
    "baseline_value",
    "effect",
    "effect_kind",
    "ci_low",
    "ci_high",
    "relative_effect",
    "detail",
    "verdict",
)
# The headline columns a reader needs (tables in notebooks and the README), in table order.
HEADLINE_SUMMARY_COLUMNS = tuple(
    c
    for c in HEADLINE_COLUMNS
    if c not in ("task", "train_fraction", "effect_kind", "relative_effect", "detail", "verdict")
)
CLAIM_PRETRAINING = "galaxy pre-training vs alternatives"
CLAIM_GENERIC = "generic pre-training vs scratch"
CLAIM_ACCURACY = "standard architecture vs custom CNN: accuracy"
CLAIM_SPEED = "standard architecture vs custom CNN: speed"
CLAIM_MEMORY = "standard architecture vs custom CNN: memory"
POOLED_SCOPE = "all architectures"  # scope of the pre-training rows pooled over architectures


def headline_table(
    results: pd.DataFrame,
    benchmark: pd.DataFrame | None = None,
    task: str = "bts",
    train_fraction: float = 1.0,
    accuracy_metrics: Sequence[str] = ("auc", "f1"),
    reference_arch: str = REFERENCE_ARCH,
    reference_init: str | None = None,
    pool_architectures: bool = True,
    standard_archs: Sequence[str] | None = None,
    benchmark_selection: dict | None = None,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """The study's claims with the measured numbers, whatever they are, one row per comparison.

    (a) galaxy pre-training (every ``galaxy*`` initialisation) minus each alternative (scratch,
    synthetic, imagenet...) per architecture, and pooled over architectures (pairs matched on
    architecture and seed) when ``pool_architectures`` and more than one architecture contributes;
    then generic pre-training (``GENERIC_INITS``) minus scratch, the third side of the comparison;
    (b) every standard (architecture, initialisation) minus the custom CNN, in each accuracy metric;
    (c) speed and peak-memory ratios of the standard architectures against the custom CNN, from the
    benchmark table, per device.

    Parameters
    ----------
    results:
        The tidy results table; only rows of ``task`` and ``train_fraction`` are used.
    benchmark:
        The efficiency table; (c) is left out when None.
    accuracy_metrics:
        Metric names, looked up through ``METRIC_ALIASES`` (``auc`` finds ``roc_auc``); a metric
        that is absent is reported in a warning and left out.
    standard_archs:
        The architectures compared with the custom CNN in (b) and (c); default every architecture
        not in ``CLASSIC_ARCHS`` (so the braai network is not counted as a standard one).
    benchmark_selection:
        Keyword arguments for ``select_benchmark_rows`` (device, dtype, batch_size, impl, variant).

    Returns
    -------
    pandas.DataFrame
        Columns ``HEADLINE_COLUMNS``. ``effect_kind`` is ``difference`` (treatment - baseline, with a
        bootstrap interval over ``n`` paired seeds) or ``ratio`` (model / CNN from one benchmark run,
        no interval); ``verdict`` is the sentence ``verdict`` writes for the row.
    """
    subset = results[(results["task"] == task) & np.isclose(results["train_fraction"].astype(float), train_fraction)]
    metrics = []
    for name in accuracy_metrics:
        found = resolve_metric(subset, name) if not subset.empty else None
        if found is None:
            available = sorted(subset["metric"].unique())[:20] if not subset.empty else []
            warnings.warn(
                f"headline_table: metric {name!r} (or an alias) not found for task {task!r}, "
                f"train_fraction {train_fraction}; available: {available}",
                stacklevel=2,
            )
        else:
            metrics.append(found)
    bootstrap = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}

    def is_standard(arch) -> bool:
        return arch in standard_archs if standard_archs is not None else arch not in CLASSIC_ARCHS

    rows: list[dict] = []
    if metrics:
        pretraining = paired_differences(subset, metrics, **bootstrap)
        for _, r in pretraining.iterrows():
            rows.append(_difference_row(CLAIM_PRETRAINING, r, r["arch"], r["treatment"], r["baseline"], task))
        if pool_architectures and pretraining["arch"].nunique() > 1:
            pooled = paired_differences(subset, metrics, by=("task", "train_fraction", "metric"), **bootstrap)
            for _, r in pooled.iterrows():
                rows.append(_difference_row(CLAIM_PRETRAINING, r, POOLED_SCOPE, r["treatment"], r["baseline"], task))
        generic = paired_differences(subset, metrics, GENERIC_INITS, ("scratch",), **bootstrap)
        for _, r in generic.iterrows():
            rows.append(_difference_row(CLAIM_GENERIC, r, r["arch"], r["treatment"], r["baseline"], task))
        accuracy = architecture_differences(subset, metrics, reference_arch, reference_init, **bootstrap)
        accuracy = accuracy[accuracy["arch"].map(is_standard)]
        for _, r in accuracy.iterrows():
            treatment = f"{r['arch']} ({r['init']})"
            baseline = f"{r['reference_arch']} ({r['reference_init']})"
            rows.append(_difference_row(CLAIM_ACCURACY, r, "", treatment, baseline, task))
    if benchmark is not None:
        ratios = efficiency_ratios(benchmark, reference_model=reference_arch, **(benchmark_selection or {}))
        ratios = ratios[ratios["model"].map(is_standard)]
        for _, r in ratios.iterrows():
            scope = f"{r['device']}, {r['dtype']}, batch {r['batch_size']}"
            detail = (
                f"variants {r['variant']} vs {r['reference_variant']}; params ratio {_format_ratio(r['params_ratio'])}"
            )
            for claim, metric, column, ratio in (
                (CLAIM_SPEED, "alerts_per_s", "alerts_per_s", "speed_ratio"),
                (CLAIM_MEMORY, "peak_mem_mb", "peak_mem_mb", "memory_ratio"),
            ):
                rows.append(
                    {
                        "claim": claim,
                        "task": "",
                        "train_fraction": math.nan,
                        "metric": metric,
                        "scope": scope,
                        "treatment": r["model"],
                        "baseline": r["reference_model"],
                        "n": 1,
                        "treatment_value": r[column],
                        "baseline_value": r[f"reference_{column}"],
                        "effect": r[ratio],
                        "effect_kind": "ratio",
                        "ci_low": math.nan,
                        "ci_high": math.nan,
                        "relative_effect": r[ratio] - 1.0,
                        "detail": detail,
                    }
                )
    table = pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))
    table["verdict"] = [verdict(row) for _, row in table.iterrows()]
    return table


def _difference_row(claim: str, r: pd.Series, scope: str, treatment: str, baseline: str, task: str) -> dict:
    return {
        "claim": claim,
        "task": task,
        "train_fraction": float(r["train_fraction"]),
        "metric": r["metric"],
        "scope": scope,
        "treatment": treatment,
        "baseline": baseline,
        "n": int(r["n_pairs"]),
        "treatment_value": r["treatment_mean"],
        "baseline_value": r["baseline_mean"],
        "effect": r["difference"],
        "effect_kind": "difference",
        "ci_low": r["ci_low"],
        "ci_high": r["ci_high"],
        "relative_effect": r["relative_difference"],
        "detail": f"{int(r['n_unpaired'])} unpaired seeds left out" if r["n_unpaired"] else "",
    }


def _format_ratio(ratio: float) -> str:
    return "n/a" if not np.isfinite(ratio) else f"{ratio:.2f}x"


def verdict(row, decimals: int = 3) -> str:
    """One sentence for one headline row, generated from its numbers.

    Differences: "galaxy_sim beats scratch on resnet18 by +0.012 auc [+0.004, +0.020] (3 seeds)",
    "... interval includes 0: no evidence of a difference", or, with one seed, "interval degenerate
    (one seed): no evidence either way". The direction of "beats" follows ``higher_is_better``.
    Ratios: "resnet18 processes 2.31x the alerts per second of btsbot_cnn (cpu, float32, batch 256)".

    Parameters
    ----------
    row:
        A row of ``headline_table`` (a mapping or a pandas Series).
    decimals:
        Decimals for differences and their intervals.
    """
    row = dict(row)
    treatment, baseline = row["treatment"], row["baseline"]
    scope = f" on {row['scope']}" if row.get("scope") and row["effect_kind"] == "difference" else ""
    metric = row["metric"]
    if row["effect_kind"] == "ratio":
        return _ratio_verdict(row)
    n = int(row["n"])
    if n == 0 or not np.isfinite(row["effect"]):
        return f"{treatment} vs {baseline}{scope} ({metric}): no seeds in common, so no comparison."
    effect = f"{row['effect']:+.{decimals}f} {metric}"
    relative = row.get("relative_effect", math.nan)
    relative_text = f", {relative * 100:+.1f}% relative" if relative is not None and np.isfinite(relative) else ""
    if n == 1:
        return (
            f"{treatment} vs {baseline}{scope}: {effect} from a single seed; interval degenerate (one seed): "
            f"no evidence either way."
        )
    low, high = row["ci_low"], row["ci_high"]
    interval = f"[{low:+.{decimals}f}, {high:+.{decimals}f}]"
    # Pooled rows pair runs on (architecture, seed); the others on the seed alone.
    unit = "architecture-seed pairs" if row.get("scope") == POOLED_SCOPE else "seeds"
    seeds = f"({n} {unit}{relative_text})"
    if low <= 0.0 <= high:
        return f"{treatment} vs {baseline}{scope}: {effect} {interval} {seeds}; interval includes 0: no evidence of a difference."
    better = (row["effect"] > 0) == higher_is_better(metric)
    if better:
        return f"{treatment} beats {baseline}{scope} by {effect} {interval} {seeds}."
    return f"{treatment} is worse than {baseline}{scope} by {effect} {interval} {seeds}."


def _ratio_verdict(row: dict) -> str:
    treatment, baseline, ratio = row["treatment"], row["baseline"], row["effect"]
    where = f" ({row['scope']})" if row.get("scope") else ""
    if not np.isfinite(ratio):
        return f"{treatment} vs {baseline}{where} ({row['metric']}): not measured for both, so no comparison."
    if row["metric"] == "alerts_per_s":
        judgement = "faster" if ratio > 1 else ("slower" if ratio < 1 else "the same speed")
        return f"{treatment} processes {ratio:.2f}x the alerts per second of {baseline}{where}: {judgement}."
    if row["metric"] == "peak_mem_mb":
        judgement = "less memory" if ratio < 1 else ("more memory" if ratio > 1 else "the same memory")
        return f"{treatment} needs {ratio:.2f}x the peak memory of {baseline}{where}: {judgement}."
    return f"{treatment} / {baseline}{where} ({row['metric']}): {ratio:.2f}x."


def verdicts(table: pd.DataFrame, decimals: int = 3) -> list[str]:
    """The verdict sentence of every row of a headline table, in order."""
    return [verdict(row, decimals) for _, row in table.iterrows()]
