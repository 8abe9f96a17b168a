"""The study's claims: benchmark ratios, the headline table and the sentences that state it.

1. ``efficiency_ratios``: speed and memory ratios against the custom CNN, from the benchmark
   table (rows chosen by ``select_benchmark_rows``).
2. ``headline_table`` gathers the paired differences of ``alertlib.report.seeds`` (galaxy
   pre-training against the alternatives, generic pre-training against scratch, the standard
   architectures against the custom CNN) and the ratios of 1, one row per comparison.
3. ``verdict`` turns each row into a sentence generated from its numbers; ``verdicts`` does it for
   a whole table.

Inputs are tables only: the tidy results table of ``alertlib.learn.results`` and the efficiency
benchmark table.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from alertlib.core.vocab import ARCH_ORDER, CLASSIC_ARCHS, GENERIC_INITS, REFERENCE_ARCH, order_key
from alertlib.report.seeds import architecture_differences, paired_differences
from alertlib.report.tables import check_columns, higher_is_better, resolve_metric

# --------------------------------------------------------------------------------------------
# The efficiency benchmark
# --------------------------------------------------------------------------------------------


# Benchmark columns compared with the custom CNN, and the name of each ratio (model / reference).
RATIO_COLUMNS = (
    ("alerts_per_s", "speed_ratio"),
    ("latency_ms", "latency_ratio"),
    ("peak_mem_mb", "memory_ratio"),
    ("params", "params_ratio"),
    ("macs", "macs_ratio"),
)


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
            for column, ratio_name in RATIO_COLUMNS:
                value = float(row[column]) if column in row.index else math.nan
                reference_value = float(ref[column]) if column in ref.index else math.nan
                record[column] = value
                record[f"reference_{column}"] = reference_value
                record[ratio_name] = value / reference_value if reference_value else math.nan
            rows.append(record)
    columns = ["device", "dtype", "batch_size", "model", "variant", "reference_model", "reference_variant"]
    for column, ratio_name in RATIO_COLUMNS:
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
    metrics = _headline_metrics(subset, accuracy_metrics, task, train_fraction)
    bootstrap = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}

    def is_standard(arch) -> bool:
        return arch in standard_archs if standard_archs is not None else arch not in CLASSIC_ARCHS

    rows: list[dict] = []
    if metrics:
        rows += _pretraining_rows(subset, metrics, task, pool_architectures, bootstrap)
        rows += _architecture_rows(subset, metrics, task, reference_arch, reference_init, is_standard, bootstrap)
    if benchmark is not None:
        ratios = efficiency_ratios(benchmark, reference_model=reference_arch, **(benchmark_selection or {}))
        rows += _efficiency_rows(ratios[ratios["model"].map(is_standard)])
    table = pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))
    table["verdict"] = [verdict(row) for _, row in table.iterrows()]
    return table


def _headline_metrics(subset: pd.DataFrame, requested: Sequence[str], task: str, train_fraction: float) -> list[str]:
    """The names in ``subset`` of the requested accuracy metrics; a warning names each one absent."""
    metrics = []
    for name in requested:
        found = resolve_metric(subset, name) if not subset.empty else None
        if found is None:
            available = sorted(subset["metric"].unique())[:20] if not subset.empty else []
            warnings.warn(
                f"headline_table: metric {name!r} (or an alias) not found for task {task!r}, "
                f"train_fraction {train_fraction}; available: {available}",
                stacklevel=3,
            )
        else:
            metrics.append(found)
    return metrics


def _pretraining_rows(
    subset: pd.DataFrame, metrics: list[str], task: str, pool_architectures: bool, bootstrap: dict
) -> list[dict]:
    """Claim (a): galaxy pre-training minus each alternative per architecture (and pooled), then
    generic pre-training minus scratch."""
    rows = []
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
    return rows


def _architecture_rows(
    subset: pd.DataFrame,
    metrics: list[str],
    task: str,
    reference_arch: str,
    reference_init: str | None,
    is_standard: Callable[[str], bool],
    bootstrap: dict,
) -> list[dict]:
    """Claim (b): every standard (architecture, initialisation) minus the custom CNN."""
    rows = []
    accuracy = architecture_differences(subset, metrics, reference_arch, reference_init, **bootstrap)
    accuracy = accuracy[accuracy["arch"].map(is_standard)]
    for _, r in accuracy.iterrows():
        treatment = f"{r['arch']} ({r['init']})"
        baseline = f"{r['reference_arch']} ({r['reference_init']})"
        rows.append(_difference_row(CLAIM_ACCURACY, r, "", treatment, baseline, task))
    return rows


def _efficiency_rows(ratios: pd.DataFrame) -> list[dict]:
    """Claim (c): a speed row and a peak-memory row per model of ``efficiency_ratios``."""
    rows = []
    for _, r in ratios.iterrows():
        scope = f"{r['device']}, {r['dtype']}, batch {r['batch_size']}"
        detail = f"variants {r['variant']} vs {r['reference_variant']}; params ratio {_format_ratio(r['params_ratio'])}"
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
    return rows


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
        "detail": _left_out(int(r["n_unpaired"]), int(r["n_non_finite"])),
    }


def _left_out(n_unpaired: int, n_non_finite: int) -> str:
    """What a difference row leaves out, for its ``detail``: unpaired seeds and non-finite values."""
    parts = [f"{n_unpaired} unpaired seeds left out"] if n_unpaired else []
    if n_non_finite:
        parts.append(f"{n_non_finite} non-finite values left out")
    return "; ".join(parts)


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
