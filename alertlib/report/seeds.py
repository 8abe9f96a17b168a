"""Statistics over replicates: means with intervals, and paired differences.

A study replicate (a *seed*) draws its own simulated sky, split and test set and trains every model
on it, so the values of different seeds are independent draws. Every comparison of the study is a
mean over replicates with Student's t interval (95% by default, :func:`alertlib.report.intervals.t_interval`),
and every difference is paired by replicate, with its own interval and two-sided p-value:

1. ``summarise_over_seeds``: mean, standard deviation and interval per
   (task, arch, init, train_fraction, metric).
2. ``paired_differences``: galaxy pre-training minus each alternative initialisation, same
   task, architecture and training fraction, matched by seed.
3. ``architecture_differences``: each architecture and initialisation minus the custom CNN
   (``btsbot_cnn``), matched by seed.

The input is the tidy results table of ``alertlib.learn.results`` (one row per run and metric).
Rows of learning-rate sweep runs that were not chosen (``lr_selected`` False) are left out
silently; runs that failed the validation gate (``gate_passed == 0``) are left out of every mean and
difference and counted (``n_failed_gate``; :mod:`alertlib.report.gate`).

``method="bootstrap"`` gives the percentile bootstrap instead (``scipy.stats.bootstrap``, drawing
from ``numpy.random.default_rng(seed)``). With a handful of replicates it is narrow (it cannot be
wider than the spread of the values) and covers far less than its nominal level
(``tests/test_intervals.py`` measures it), so it describes the seeds that were run and is not the
default. With one replicate neither method says anything: the t interval is undefined (NaN), the
bootstrap one has zero width; both are flagged ``interval_degenerate``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.stats

from alertlib.core.vocab import REFERENCE_ARCH, is_galaxy_init, ordered_inits
from alertlib.report.gate import mark_gate_failures, selected_rows
from alertlib.report.intervals import t_interval
from alertlib.report.tables import check_columns, sort_table

# A result is identified by these columns (plus the seed, over which we summarise).
SUMMARY_KEYS = ("task", "arch", "init", "train_fraction", "metric")
COMPARISON_KEYS = ("task", "arch", "train_fraction", "metric")
INTERVAL_METHODS = ("t", "bootstrap")

# --------------------------------------------------------------------------------------------
# Intervals of a mean: Student's t (default) and the percentile bootstrap
# --------------------------------------------------------------------------------------------


def bootstrap_mean_interval(
    values, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile-bootstrap interval (``scipy.stats.bootstrap``).

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
    result = scipy.stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=n_resamples,
        # Resampled in batches so that long inputs (e.g. per-alert values) need no huge index array.
        batch=max(1, 4_000_000 // count),
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return (float(values.mean()), float(low), float(high))


def mean_interval(
    values, method: str = "t", confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float, float]:
    """Mean of ``values`` (one per replicate) with its interval and two-sided p-value for a zero mean.

    Parameters
    ----------
    values:
        Finite numbers, one per replicate (or per pair of replicates, for a paired difference).
    method:
        ``"t"``: Student's t interval and the one-sample t-test's p-value (``intervals.t_interval``);
        ``"bootstrap"``: the percentile bootstrap (``bootstrap_mean_interval``), whose p-value is NaN.
    confidence, n_resamples, seed:
        Coverage of the interval; the bootstrap's resamples and seed (unused by ``"t"``).

    Returns
    -------
    (mean, low, high, p_value)
        With no value, all NaN. With one value, the t interval and p-value are NaN and the
        bootstrap interval is ``(mean, mean)``.
    """
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}, got {method!r}")
    if method == "bootstrap":
        mean, low, high = bootstrap_mean_interval(values, n_resamples, confidence, seed)
        return (mean, low, high, math.nan)
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError(f"mean_interval: values must be finite, got {values.tolist()}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    interval = t_interval(values, confidence)
    return (interval.estimate, interval.low, interval.high, interval.p_value)


def _is_degenerate(count: int, low: float, high: float) -> bool:
    """Whether an interval over ``count`` values says nothing: undefined (NaN) or of zero width."""
    return bool(count > 0 and (count < 2 or not np.isfinite(low) or low == high))


# --------------------------------------------------------------------------------------------
# Per-seed values and their summary
# --------------------------------------------------------------------------------------------


def per_seed_values(results: pd.DataFrame, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per (task, arch, init, train_fraction, metric, seed) with its ``value`` and ``failed_gate``.

    Rows with ``lr_selected`` False (learning-rate sweep runs not chosen) are left out. Every run is
    kept, flagged ``failed_gate`` when it recorded ``gate_passed == 0``: the statistics leave those
    out and count them. A non-finite value is kept as it is: it is expected where a metric is
    undefined (an AUC on a test set with one class, a completeness in a bin without positives), and
    the statistics over seeds leave it out and count it (``n_non_finite``). The same run loaded
    twice (same ``run_id`` and metric) is kept once, with a warning. Two different runs for the same
    key and seed are an error: the table mixes studies (e.g. two profiles or data versions) and must
    be filtered first.

    Parameters
    ----------
    results:
        The tidy results table (``alertlib.learn.results.COLUMNS``; ``run_id`` is optional).
    metrics:
        Keep only these metric names (all when None).
    """
    check_columns(results, (*SUMMARY_KEYS, "seed", "value"), "results table")
    table = selected_rows(results)
    if "run_id" in table.columns:
        repeated = table.duplicated(["run_id", "metric"], keep="last")
        if repeated.any():
            warnings.warn(
                f"dropped {int(repeated.sum())} repeated rows of the same run_id and metric (a run loaded twice)",
                stacklevel=2,
            )
            table = table[~repeated]
    table = mark_gate_failures(table)
    if metrics is not None:
        table = table[table["metric"].isin(list(metrics))].copy()
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    table["train_fraction"] = table["train_fraction"].astype(float)
    key = [*SUMMARY_KEYS, "seed"]
    clash = table.duplicated(key, keep=False)
    if clash.any():
        first = table.loc[clash, key].drop_duplicates().head(3).to_dict("records")
        raise ValueError(
            f"results hold more than one run for {int(clash.sum())} rows' (task, arch, init, train_fraction, "
            f"metric, seed), e.g. {first}. The table mixes studies: filter it to one study first "
            f"(e.g. on data_version, code_version or config) before summarising."
        )
    return sort_table(table[[*key, "value", "failed_gate"]])


def _split(values: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rows of ``per_seed_values`` that count (finite, gate passed), the non-finite ones, and
    those of runs that failed the gate."""
    failed = values["failed_gate"].to_numpy(dtype=bool)
    finite = np.isfinite(values["value"].to_numpy(dtype=np.float64))
    return values[finite & ~failed], values[~finite & ~failed], values[failed]


def _left_out_counts(values: pd.DataFrame, keys: list[str]) -> tuple[dict[tuple, int], dict[tuple, int]]:
    """How many non-finite values, and how many runs that failed the gate, each combination of ``keys`` has."""
    _, non_finite, failed = _split(values)
    counts = [{key: int(count) for key, count in part.groupby(keys).size().items()} for part in (non_finite, failed)]
    return counts[0], counts[1]


SUMMARY_COLUMNS = (
    *SUMMARY_KEYS,
    "n_seeds",
    "n_non_finite",
    "n_failed_gate",
    "seeds",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "interval_degenerate",
    "interval_method",
)


def summarise_over_seeds(
    results: pd.DataFrame,
    metrics: Iterable[str] | None = None,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "t",
) -> pd.DataFrame:
    """Mean and interval over replicates for each (task, arch, init, train_fraction, metric).

    Parameters
    ----------
    results:
        The tidy results table.
    metrics:
        Metric names to summarise (all when None).
    n_resamples, confidence, seed, method:
        The interval (see ``mean_interval``): Student's t by default, ``"bootstrap"`` for the
        percentile bootstrap.

    Returns
    -------
    pandas.DataFrame
        Columns ``SUMMARY_COLUMNS``: ``task, arch, init, train_fraction, metric, n_seeds,
        n_non_finite, n_failed_gate, seeds, mean, std, ci_low, ci_high, interval_degenerate,
        interval_method``. ``n_seeds`` counts the replicates that enter the mean (finite value, gate
        passed) and ``seeds`` lists them (e.g. ``"0,1,2"``); ``n_non_finite`` counts those left out
        because their value is not finite (the metric undefined for that run) and ``n_failed_gate``
        those whose run failed the validation gate. ``std`` is the sample standard deviation (NaN for
        one replicate); ``interval_degenerate`` is true where the interval says nothing (one
        replicate, or identical values). Only the combinations present appear; one without a value
        that counts has ``n_seeds`` 0 and NaN statistics.
    """
    values = per_seed_values(results, metrics)
    rows = []
    for key, group in values.groupby(list(SUMMARY_KEYS), sort=False):
        usable, non_finite, failed = _split(group)
        mean, low, high, _ = mean_interval(usable["value"], method, confidence, n_resamples, seed)
        rows.append(
            {
                **dict(zip(SUMMARY_KEYS, key, strict=True)),
                "n_seeds": len(usable),
                "n_non_finite": len(non_finite),
                "n_failed_gate": len(failed),
                "seeds": ",".join(str(s) for s in sorted(usable["seed"])),
                "mean": mean,
                "std": float(usable["value"].std(ddof=1)) if len(usable) > 1 else math.nan,
                "ci_low": low,
                "ci_high": high,
                "interval_degenerate": _is_degenerate(len(usable), low, high),
                "interval_method": method,
            }
        )
    return sort_table(pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)))


# --------------------------------------------------------------------------------------------
# Paired differences
# --------------------------------------------------------------------------------------------


def paired_row(
    treatment: pd.Series,
    baseline: pd.Series,
    method: str = "t",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict:
    """Difference treatment - baseline over the index values (replicates) both have, with its interval.

    Returns the ``PAIRED_COLUMNS`` other than ``n_non_finite`` and ``n_failed_gate``.
    """
    common = treatment.index.intersection(baseline.index)
    differences = (treatment.loc[common] - baseline.loc[common]).to_numpy(dtype=np.float64)
    mean, low, high, p_value = mean_interval(differences, method, confidence, n_resamples, seed)
    baseline_mean = float(baseline.loc[common].mean()) if len(common) else math.nan
    return {
        "n_pairs": len(common),
        "n_unpaired": len(treatment.index.symmetric_difference(baseline.index)),
        "treatment_mean": float(treatment.loc[common].mean()) if len(common) else math.nan,
        "baseline_mean": baseline_mean,
        "difference": mean,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "relative_difference": mean / baseline_mean if len(common) and baseline_mean != 0.0 else math.nan,
        "interval_degenerate": _is_degenerate(len(common), low, high),
    }


PAIRED_COLUMNS = (
    "n_pairs",
    "n_unpaired",
    "n_non_finite",
    "n_failed_gate",
    "treatment_mean",
    "baseline_mean",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "relative_difference",
    "interval_degenerate",
)


def _compared_inits(inits, treatment_inits, baseline_inits) -> tuple[list[str], list[str]]:
    """Treatment and baseline initialisations: as given, else galaxy ones against every other one present."""
    present = ordered_inits(inits)
    treatments = ordered_inits(treatment_inits) if treatment_inits is not None else []
    if treatment_inits is None:
        treatments = [i for i in present if is_galaxy_init(i)]
    if baseline_inits is not None:
        baselines = ordered_inits(baseline_inits)
    else:
        baselines = [i for i in present if i not in treatments]
    return treatments, baselines


def paired_differences(
    results: pd.DataFrame,
    metrics: Iterable[str] | None = None,
    treatment_inits: Iterable[str] | None = None,
    baseline_inits: Iterable[str] | None = None,
    by: Sequence[str] = COMPARISON_KEYS,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "t",
) -> pd.DataFrame:
    """Galaxy pre-training minus each alternative initialisation, matched by seed, with intervals.

    For each group of ``by`` (by default the same task, architecture, training fraction and
    metric), each treatment initialisation and each baseline initialisation present in that group,
    the difference treatment - baseline is taken seed by seed over the seeds both have, then
    averaged, with Student's t interval over the pairs (``method="bootstrap"``: the percentile
    bootstrap). Leaving ``arch`` out of ``by`` pools architectures: pairs are then matched on
    (arch, seed). Runs that failed the validation gate are left out (their partners are then unpaired).

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
    n_resamples, confidence, seed, method:
        The interval (see ``mean_interval``).

    Returns
    -------
    pandas.DataFrame
        Columns ``*by, treatment, baseline, n_pairs, n_unpaired, n_non_finite, n_failed_gate,
        treatment_mean, baseline_mean, difference, ci_low, ci_high, p_value, relative_difference,
        interval_degenerate``. ``n_unpaired`` counts seeds with a usable value for only one of the
        two; ``n_non_finite`` counts the values of either that are not finite and ``n_failed_gate``
        the runs of either that failed the gate, both left out; ``treatment_mean`` and
        ``baseline_mean`` are over the paired seeds; ``p_value`` is the paired t-test's (NaN for the
        bootstrap); ``relative_difference`` is difference / baseline_mean. A pair appears where both
        initialisations have a usable value in the group.
    """
    by = list(by)
    if "metric" not in by or not set(by) <= set(COMPARISON_KEYS):
        raise ValueError(f"by must be a subset of {COMPARISON_KEYS} that includes 'metric', got {by}")
    match_on = ["seed", *[k for k in COMPARISON_KEYS if k not in by]]
    all_values = per_seed_values(results, metrics)
    values, _, _ = _split(all_values)
    non_finite, failed = _left_out_counts(all_values, [*by, "init"])
    treatments, baselines = _compared_inits(all_values["init"], treatment_inits, baseline_inits)
    interval = {"method": method, "confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    rows = []
    # Groups and initialisations come from every run, so a comparison whose runs all failed the gate
    # (or are all non-finite) still appears, with no pairs and its left-out counts.
    usable = {key: part.set_index(match_on)["value"] for key, part in values.groupby([*by, "init"], sort=False)}
    empty = values.iloc[:0].set_index(match_on)["value"]
    for key, group in all_values.groupby(by, sort=False):
        by_init = {init: usable.get((*key, init), empty) for init in group["init"].unique()}
        for treatment in treatments:
            for baseline in baselines:
                if treatment == baseline or treatment not in by_init or baseline not in by_init:
                    continue
                paired = paired_row(by_init[treatment], by_init[baseline], **interval)
                paired["n_non_finite"] = non_finite.get((*key, treatment), 0) + non_finite.get((*key, baseline), 0)
                paired["n_failed_gate"] = failed.get((*key, treatment), 0) + failed.get((*key, baseline), 0)
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
    method: str = "t",
) -> pd.DataFrame:
    """Each (architecture, initialisation) minus the custom CNN, matched by seed, with intervals.

    Within each (task, train_fraction, metric), the reference is ``reference_arch`` with
    ``reference_init`` (default: its ``scratch`` run, else its first initialisation in
    ``INIT_ORDER``). Groups without the reference are left out. The interval is Student's t over
    the pairs (``method="bootstrap"``: the percentile bootstrap); runs that failed the validation
    gate are left out and counted.

    Returns
    -------
    pandas.DataFrame
        Columns ``task, train_fraction, metric, arch, init, reference_arch, reference_init`` and the
        paired columns of ``paired_differences`` (treatment = the architecture, baseline = the CNN).
    """
    all_values = per_seed_values(results, metrics)
    values, _, _ = _split(all_values)
    keys = ["task", "train_fraction", "metric"]
    non_finite, failed = _left_out_counts(all_values, [*keys, "arch", "init"])
    interval = {"method": method, "confidence": confidence, "n_resamples": n_resamples, "seed": seed}
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
            paired = paired_row(part.set_index("seed")["value"], reference, **interval)
            model, ref = (*key, arch, init), (*key, reference_arch, ref_init)
            paired["n_non_finite"] = non_finite.get(model, 0) + non_finite.get(ref, 0)
            paired["n_failed_gate"] = failed.get(model, 0) + failed.get(ref, 0)
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
