"""The study's claims: primary contrasts, exploratory comparisons, benchmark ratios, and their sentences.

1. ``primary_contrasts`` (:mod:`alertlib.report.contrasts`): the comparisons the profile states
   before the run, each with Student's t interval over replicates, the hierarchical bootstrap
   beside it, Holm's adjustment over the family and a verdict.
2. ``exploratory_comparisons``: every other comparison (galaxy pre-training against each
   alternative, per architecture and pooled; generic pre-training against scratch; every standard
   architecture against the custom CNN), with t intervals and unadjusted p-values, and no verdict.
3. ``efficiency_ratios``: speed and memory ratios against the custom CNN, from the benchmark
   table (rows chosen by ``select_benchmark_rows``), measured once.
4. ``headline_table`` gathers 1-3, one row per comparison, with a ``status`` column
   (``primary``, ``exploratory``, ``measured``); ``verdicts`` states the primary and measured rows
   in sentences generated from their numbers.

Inputs are tables only: the tidy results table of ``alertlib.learn.results``, the test predictions
and the efficiency benchmark table.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from alertlib.core.vocab import ARCH_ORDER, CLASSIC_ARCHS, GENERIC_INITS, REFERENCE_ARCH, order_key
from alertlib.report.contrasts import contrast_key, contrast_sentence, format_p, primary_contrasts
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
    "status",
    "claim",
    "task",
    "train_fraction",
    "metric",
    "scope",
    "treatment",
    "baseline",
    "n",
    "n_failed_gate",
    "treatment_value",
    "baseline_value",
    "effect",
    "effect_kind",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "boot_low",
    "boot_high",
    "confidence",
    "relative_effect",
    "detail",
    "verdict",
)
# The headline columns a reader needs (tables in notebooks and the README), in table order.
HEADLINE_SUMMARY_COLUMNS = (
    "status",
    "claim",
    "metric",
    "scope",
    "treatment",
    "baseline",
    "n",
    "treatment_value",
    "baseline_value",
    "effect",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
)
PRIMARY, EXPLORATORY, MEASURED = "primary", "exploratory", "measured"
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
    confidence: float = 0.95,
    seed: int = 0,
    contrasts: Sequence[Mapping] | None = None,
    predictions: pd.DataFrame | None = None,
    n_boot: int = 1000,
) -> pd.DataFrame:
    """The study's claims with the measured numbers, whatever they are, one row per comparison.

    Rows, in order: the primary contrasts (``status`` ``primary``, :func:`primary_contrasts` of
    ``contrasts`` with ``predictions``, ``n_boot`` and ``seed``); the exploratory comparisons
    (``exploratory``, :func:`exploratory_comparisons` with the arguments of the same names, leaving
    out the primary ones); the speed and peak-memory ratios of the standard architectures against
    the custom CNN from ``benchmark``, per device (``measured``; left out when ``benchmark`` is None;
    rows chosen by ``select_benchmark_rows(**benchmark_selection)``).

    Returns
    -------
    pandas.DataFrame
        Columns ``HEADLINE_COLUMNS``. ``effect_kind`` is ``difference`` (treatment - baseline, with
        Student's t interval over ``n`` paired replicates, its p-value and, for primary rows, the
        Holm p-value and the bootstrap interval) or ``ratio`` (model / CNN from one benchmark run,
        no interval); ``verdict`` is the sentence ``verdict`` writes for primary and measured rows,
        empty for exploratory ones.
    """
    primary = primary_contrasts(results, predictions, contrasts, confidence, n_boot, seed) if contrasts else None
    rows = [_primary_row(r) for r in primary.to_dict("records")] if primary is not None else []
    exploratory = exploratory_comparisons(
        results,
        task,
        train_fraction,
        accuracy_metrics,
        reference_arch,
        reference_init,
        pool_architectures,
        standard_archs,
        confidence,
        contrasts,
    )
    rows += exploratory.to_dict("records")
    if benchmark is not None:
        ratios = efficiency_ratios(benchmark, reference_model=reference_arch, **(benchmark_selection or {}))
        rows += _efficiency_rows(ratios[ratios["model"].map(lambda arch: _is_standard(arch, standard_archs))])
    table = pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))
    table["verdict"] = [verdict(row) if row["status"] != EXPLORATORY else "" for _, row in table.iterrows()]
    return table


def _is_standard(arch: str, standard_archs: Sequence[str] | None) -> bool:
    """Whether ``arch`` is a standard image-only architecture (default: neither a ``CLASSIC_ARCHS`` one nor +meta)."""
    return arch in standard_archs if standard_archs is not None else arch not in CLASSIC_ARCHS and "+" not in arch


def exploratory_comparisons(
    results: pd.DataFrame,
    task: str = "bts",
    train_fraction: float = 1.0,
    accuracy_metrics: Sequence[str] = ("auc", "f1"),
    reference_arch: str = REFERENCE_ARCH,
    reference_init: str | None = None,
    pool_architectures: bool = True,
    standard_archs: Sequence[str] | None = None,
    confidence: float = 0.95,
    contrasts: Sequence[Mapping] | None = None,
) -> pd.DataFrame:
    """Every comparison of the study that is not a primary contrast, marked exploratory.

    (a) galaxy pre-training (every ``galaxy*`` initialisation) minus each alternative (scratch,
    synthetic, imagenet...) per architecture, and pooled over architectures (pairs matched on
    architecture and seed) when ``pool_architectures`` and more than one architecture contributes;
    then generic pre-training (``GENERIC_INITS``) minus scratch; (b) every standard (architecture,
    initialisation) minus the custom CNN. Each is a mean difference over replicates with Student's
    t interval and its unadjusted p-value: a description of what was measured, not a claim, so no
    verdict is written (``verdict`` is empty) and no p-value is adjusted.

    Parameters
    ----------
    results:
        The tidy results table; only rows of ``task`` and ``train_fraction`` are used.
    accuracy_metrics:
        Metric names, looked up through ``METRIC_ALIASES`` (``auc`` finds ``roc_auc``); a metric
        that is absent is reported in a warning and left out.
    standard_archs:
        The architectures compared with the custom CNN in (b); default every architecture not in
        ``CLASSIC_ARCHS`` (so the braai network is not counted as a standard one).
    contrasts:
        The primary contrasts: the comparisons they make are left out here.

    Returns
    -------
    pandas.DataFrame
        Columns ``HEADLINE_COLUMNS``, ``status`` ``exploratory``.
    """
    subset = results[(results["task"] == task) & np.isclose(results["train_fraction"].astype(float), train_fraction)]
    metrics = _headline_metrics(subset, accuracy_metrics, task, train_fraction)
    rows: list[dict] = []
    if metrics:
        rows += _pretraining_rows(subset, metrics, task, pool_architectures, confidence)
        rows += _architecture_rows(
            subset, metrics, task, reference_arch, reference_init, lambda a: _is_standard(a, standard_archs), confidence
        )
    primary = {contrast_key(results, contrast) for contrast in contrasts or ()}
    rows = [{**row, "status": EXPLORATORY, "verdict": ""} for row in rows if row["_key"] not in primary]
    return pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))


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
    subset: pd.DataFrame, metrics: list[str], task: str, pool_architectures: bool, confidence: float
) -> list[dict]:
    """Claim (a): galaxy pre-training minus each alternative per architecture (and pooled), then
    generic pre-training minus scratch."""
    rows = []
    pretraining = paired_differences(subset, metrics, confidence=confidence)
    for _, r in pretraining.iterrows():
        key = (r["arch"], r["treatment"], r["arch"], r["baseline"])
        rows.append(_difference_row(CLAIM_PRETRAINING, r, r["arch"], r["treatment"], r["baseline"], task, key))
    if pool_architectures and pretraining["arch"].nunique() > 1:
        pooled = paired_differences(subset, metrics, by=("task", "train_fraction", "metric"), confidence=confidence)
        for _, r in pooled.iterrows():
            key = (POOLED_SCOPE, r["treatment"], POOLED_SCOPE, r["baseline"])
            rows.append(_difference_row(CLAIM_PRETRAINING, r, POOLED_SCOPE, r["treatment"], r["baseline"], task, key))
    generic = paired_differences(subset, metrics, GENERIC_INITS, ("scratch",), confidence=confidence)
    for _, r in generic.iterrows():
        key = (r["arch"], r["treatment"], r["arch"], r["baseline"])
        rows.append(_difference_row(CLAIM_GENERIC, r, r["arch"], r["treatment"], r["baseline"], task, key))
    return rows


def _architecture_rows(
    subset: pd.DataFrame,
    metrics: list[str],
    task: str,
    reference_arch: str,
    reference_init: str | None,
    is_standard: Callable[[str], bool],
    confidence: float,
) -> list[dict]:
    """Claim (b): every standard (architecture, initialisation) minus the custom CNN."""
    rows = []
    accuracy = architecture_differences(subset, metrics, reference_arch, reference_init, confidence=confidence)
    accuracy = accuracy[accuracy["arch"].map(is_standard)]
    for _, r in accuracy.iterrows():
        treatment = f"{r['arch']} ({r['init']})"
        baseline = f"{r['reference_arch']} ({r['reference_init']})"
        key = (r["arch"], r["init"], r["reference_arch"], r["reference_init"])
        rows.append(_difference_row(CLAIM_ACCURACY, r, "", treatment, baseline, task, key))
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
                    "status": MEASURED,
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
                    "relative_effect": r[ratio] - 1.0,
                    "detail": detail,
                }
            )
    return rows


def _difference_row(
    claim: str, r: pd.Series, scope: str, treatment: str, baseline: str, task: str, models: tuple
) -> dict:
    """A headline row of a paired difference of ``alertlib.report.seeds``; ``_key`` names the comparison."""
    fraction = float(r["train_fraction"])
    return {
        "claim": claim,
        "task": task,
        "train_fraction": fraction,
        "metric": r["metric"],
        "scope": scope,
        "treatment": treatment,
        "baseline": baseline,
        "n": int(r["n_pairs"]),
        "n_failed_gate": int(r["n_failed_gate"]),
        "treatment_value": r["treatment_mean"],
        "baseline_value": r["baseline_mean"],
        "effect": r["difference"],
        "effect_kind": "difference",
        "ci_low": r["ci_low"],
        "ci_high": r["ci_high"],
        "p_value": r["p_value"],
        "relative_effect": r["relative_difference"],
        "detail": _left_out(int(r["n_unpaired"]), int(r["n_non_finite"]), int(r["n_failed_gate"])),
        "_key": (task, fraction, fraction, r["metric"], *models),
    }


def _primary_row(r: Mapping) -> dict:
    """A headline row of a primary contrast (:func:`primary_contrasts`)."""
    baseline_mean = r["baseline_mean"]
    detail = _left_out(int(r["n_unpaired"]), int(r["n_non_finite"]), int(r["n_failed_gate"]))
    return {
        "status": PRIMARY,
        "claim": r["name"],
        "task": r["task"],
        "train_fraction": r["train_fraction"],
        "metric": r["metric"],
        "scope": "",
        "treatment": r["treatment"],
        "baseline": r["baseline"],
        "n": int(r["n_replicates"]),
        "n_failed_gate": int(r["n_failed_gate"]),
        "treatment_value": r["treatment_mean"],
        "baseline_value": baseline_mean,
        "effect": r["difference"],
        "effect_kind": "difference",
        "ci_low": r["ci_low"],
        "ci_high": r["ci_high"],
        "p_value": r["p_value"],
        "p_holm": r["p_holm"],
        "boot_low": r["boot_low"],
        "boot_high": r["boot_high"],
        "confidence": r["confidence"],
        "relative_effect": r["difference"] / baseline_mean if baseline_mean else math.nan,
        "detail": "; ".join(part for part in (detail, f"bootstrap {r['boot_note']}") if part),
    }


def _left_out(n_unpaired: int, n_non_finite: int, n_failed_gate: int = 0) -> str:
    """What a difference row leaves out, for its ``detail``: unpaired seeds, non-finite values, gate failures."""
    parts = [f"{n_failed_gate} runs failed the validation gate"] if n_failed_gate else []
    if n_unpaired:
        parts.append(f"{n_unpaired} unpaired seeds left out")
    if n_non_finite:
        parts.append(f"{n_non_finite} non-finite values left out")
    return "; ".join(parts)


def _format_ratio(ratio: float) -> str:
    return "n/a" if not np.isfinite(ratio) else f"{ratio:.2f}x"


def verdict(row, decimals: int = 3) -> str:
    """One sentence for one headline row, generated from its numbers.

    Primary rows: the verdict of :func:`alertlib.report.contrasts.contrast_sentence` ("... beats
    ..." or "inconclusive", with the Holm p-value). Exploratory rows: a description without a
    verdict ("galaxy_sim minus scratch on resnet18 is +0.012 auc [...] (3 replicates, unadjusted
    p = 0.020; exploratory)"). Rows without a status (older tables): "galaxy_sim beats scratch on
    resnet18 by +0.012 auc [+0.004, +0.020] (3 replicates)" when the interval excludes 0, else
    "inconclusive"; the direction of "beats" follows ``higher_is_better``. Ratios: "resnet18
    processes 2.31x the alerts per second of btsbot_cnn (cpu, float32, batch 256): faster."

    Parameters
    ----------
    row:
        A row of ``headline_table`` or of ``primary_contrasts`` (a mapping or a pandas Series).
    decimals:
        Decimals for differences and their intervals.
    """
    row = dict(row)
    if "n_replicates" in row:  # a row of primary_contrasts itself
        return contrast_sentence(row, decimals)
    if row["effect_kind"] == "ratio":
        return _ratio_verdict(row)
    if row.get("status") == PRIMARY:
        return contrast_sentence(
            {
                **row,
                "name": row["claim"],
                "n_replicates": row["n"],
                "difference": row["effect"],
            },
            decimals,
        )
    return _difference_sentence(row, decimals)


def _difference_sentence(row: dict, decimals: int) -> str:
    """The sentence of an exploratory difference row, or of a row without a status."""
    treatment, baseline, metric = row["treatment"], row["baseline"], row["metric"]
    scope = f" on {row['scope']}" if row.get("scope") else ""
    n = int(row["n"])
    if n == 0 or not np.isfinite(row["effect"]):
        return f"{treatment} vs {baseline}{scope} ({metric}): no replicates in common, so no comparison."
    effect = f"{row['effect']:+.{decimals}f} {metric}"
    if n == 1:
        return (
            f"{treatment} vs {baseline}{scope}: {effect} from a single replicate: no interval, no evidence either way."
        )
    relative = row.get("relative_effect", math.nan)
    relative_text = f", {relative * 100:+.1f}% relative" if relative is not None and np.isfinite(relative) else ""
    interval = f"[{row['ci_low']:+.{decimals}f}, {row['ci_high']:+.{decimals}f}]"
    # Pooled rows pair runs on (architecture, seed); the others on the seed alone.
    unit = "architecture-replicate pairs" if row.get("scope") == POOLED_SCOPE else "replicates"
    if row.get("status") == EXPLORATORY:
        p_text = f", unadjusted p = {format_p(row.get('p_value', math.nan))}"
        return f"{treatment} minus {baseline}{scope} is {effect} {interval} ({n} {unit}{relative_text}{p_text}; exploratory)."
    counted = f"({n} {unit}{relative_text})"
    if row["ci_low"] <= 0.0 <= row["ci_high"]:
        return (
            f"{treatment} vs {baseline}{scope}: inconclusive: {effect} {interval} {counted}; the interval includes 0."
        )
    if (row["effect"] > 0) == higher_is_better(metric):
        return f"{treatment} beats {baseline}{scope} by {effect} {interval} {counted}."
    return f"{treatment} is worse than {baseline}{scope} by {effect} {interval} {counted}."


RATIO_TOLERANCE = 0.05  # a ratio this close to 1 is "about the same": one run on a shared machine


def _ratio_verdict(row: dict) -> str:
    treatment, baseline, ratio = row["treatment"], row["baseline"], row["effect"]
    where = f" ({row['scope']})" if row.get("scope") else ""
    if not np.isfinite(ratio):
        return f"{treatment} vs {baseline}{where} ({row['metric']}): not measured for both, so no comparison."
    same = abs(ratio - 1.0) <= RATIO_TOLERANCE
    if row["metric"] == "alerts_per_s":
        judgement = "about the same speed" if same else ("faster" if ratio > 1 else "slower")
        return f"{treatment} processes {ratio:.2f}x the alerts per second of {baseline}{where}: {judgement}."
    if row["metric"] == "peak_mem_mb":
        judgement = "about the same memory" if same else ("less memory" if ratio < 1 else "more memory")
        return f"{treatment} needs {ratio:.2f}x the peak memory of {baseline}{where}: {judgement}."
    return f"{treatment} / {baseline}{where} ({row['metric']}): {ratio:.2f}x."


def verdicts(table: pd.DataFrame, decimals: int = 3) -> list[str]:
    """The sentences of a headline table's primary and measured rows, in order.

    Exploratory rows get none (they are descriptions, not claims). A table without a ``status``
    column (an older headline, or a table of ratios) gets a sentence for every row.
    """
    if "status" in table.columns:
        table = table[table["status"].isin((PRIMARY, MEASURED))]
    return [verdict(row, decimals) for _, row in table.iterrows()]
