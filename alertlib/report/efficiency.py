"""Claims drawn from the efficiency benchmark's tables (:mod:`alertlib.bench`), and its two figures.

- the custom CNN against every other model, per device and format (:func:`custom_cnn_ratios`,
  :func:`custom_cnn_verdicts`);
- the CPU goal: ConvNeXt-pico and ResNet-18 reach :data:`LIMIT_GOAL_FRACTION` of the device's
  float32 matrix-product rate at batch 256, and :data:`ROOFLINE_GOAL_FRACTION` of their roofline
  limit, the lower of the compute and bandwidth limits of each of their operators
  (:func:`limit_goal_table`, :func:`roofline_table`; :mod:`alertlib.bench.roofline`);
- the GPU goal: a Rubin night in under a minute (:func:`night_report`);
- alerts per second against batch size (:func:`plot_throughput`), the achieved fraction of the
  matrix-product rate (:func:`plot_limit_fraction`) and of the roofline limit (:func:`plot_roofline_fraction`).
"""

from __future__ import annotations

from alertlib.bench.tables import best_variant_rows, common_batch_size, measured_rows

# The CPU goal: these models at this batch size reach this fraction of the float32 matrix-product rate.
LIMIT_GOAL_FRACTION = 0.6
LIMIT_GOAL_MODELS = ("convnext_pico", "resnet18")
LIMIT_GOAL_BATCH_SIZE = 256
# ... and this fraction of their roofline limit (compute and memory bandwidth, operator by operator).
ROOFLINE_GOAL_FRACTION = 0.6
# The GPU goal: a Rubin night of 10 million alerts in under a minute.
# Decoding: the fast decoder's one-core rate over the inflate-only ceiling, for ZTF Avro (issue #19).
DECODE_CEILING_GOAL_FRACTION = 0.5
DECODE_COLUMNS = (
    "table",
    "cpu",
    "folder",
    "fast_alerts_per_s",
    "astropy_alerts_per_s",
    "ratio",
    "gunzip_ceiling_alerts_per_s",
    "ceiling_fraction",
    "one_worker_alerts_per_s",
    "two_workers_alerts_per_s",
    "workers_speedup",
    "date",
)

NIGHT_GOAL_ALERTS_PER_S = 200_000.0
ALERTS_PER_NIGHT = 1e7


def custom_cnn_ratios(table, batch_size: int | None = None, dtype: str | None = None):
    """Speed and memory of each model (its fastest variant) over the custom CNN's, per device and format.

    The measured rows of ``table`` passed to :func:`alertlib.report.claims.efficiency_ratios` (ours only),
    for each (device, format) in turn; ``batch_size`` None means the largest batch size at which
    every model of that device and format was measured (:func:`alertlib.bench.tables.common_batch_size`),
    so that a stage with larger batches for a few models does not leave the others out.
    """
    import pandas as pd

    from alertlib.report.claims import efficiency_ratios

    ok = measured_rows(table)
    frames = []
    for (device, fmt), rows in ok.groupby(["device", "dtype"], sort=True):
        if dtype is not None and fmt != dtype:
            continue
        size = batch_size if batch_size is not None else common_batch_size(rows)
        frames.append(efficiency_ratios(rows, device=device, dtype=fmt, batch_size=size))
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else efficiency_ratios(ok.iloc[:0])


def custom_cnn_verdicts(ratios) -> list[str]:
    """Sentences from :func:`custom_cnn_ratios`: a count per device, then one per model (:func:`alertlib.report.claims.verdict`)."""
    from alertlib.core.vocab import CLASSIC_ARCHS
    from alertlib.report.claims import verdict

    sentences = []
    for (device, dtype, size), group in ratios.groupby(["device", "dtype", "batch_size"], sort=False):
        # The claim is about standard architectures; other custom networks (braai) are reported one by one.
        standard = group[~group["model"].isin(CLASSIC_ARCHS)]
        faster, lighter = standard["speed_ratio"] > 1.0, standard["memory_ratio"] < 1.0
        sentences.append(
            f"{device}, {dtype}, batch {size}: {int(faster.sum())} of {len(standard)} standard architectures infer "
            f"faster than the custom CNN, {int(lighter.sum())} of {len(standard)} with less peak memory, "
            f"{int((faster & lighter).sum())} both."
        )
        for row in group.itertuples():
            for metric, ratio in (("alerts_per_s", row.speed_ratio), ("peak_mem_mb", row.memory_ratio)):
                sentences.append(
                    verdict(
                        {
                            "treatment": row.model,
                            "baseline": row.reference_model,
                            "effect": ratio,
                            "effect_kind": "ratio",
                            "metric": metric,
                            "scope": f"{device}, {dtype}, batch {size}",
                        }
                    )
                )
    return sentences


def limit_goal_table(
    table,
    models=LIMIT_GOAL_MODELS,
    batch_size: int = LIMIT_GOAL_BATCH_SIZE,
    threshold: float = LIMIT_GOAL_FRACTION,
    roofline_threshold: float = ROOFLINE_GOAL_FRACTION,
):
    """The CPU goal, per model and format: does the best achieved FLOP/s at ``batch_size`` reach ``threshold``?

    The CPU goal is stated against the device's measured **float32** rate, so ``meets_goal`` compares
    ``float32_limit_fraction`` (achieved FLOP/s over the float32 ceiling of the same device) with
    ``threshold``. ``limit_fraction`` stays the fraction of the same format's own ceiling: a bfloat16
    model can exceed the float32 rate while using a small part of the bfloat16 one.

    ``roofline_fraction`` is the rate over the roofline limit of the same format
    (:func:`roofline_table`), and ``meets_roofline_goal`` compares it with ``roofline_threshold``
    (None where the table has no roofline).
    """
    best = best_variant_rows(table[(table["impl"] == "alertlib") & (table["batch_size"] == batch_size)])
    rows = best[best["model"].isin(models)].copy()
    rows["float32_limit_fraction"] = rows["limit_fraction"].where(rows["dtype"] == "float32")
    other = rows["dtype"] != "float32"
    if "ceiling_flops" in table.columns and other.any():
        float32 = table[table["dtype"] == "float32"].groupby("device")["ceiling_flops"].max()
        ceiling = rows.loc[other, "device"].map(float32).astype(float)
        rows.loc[other, "float32_limit_fraction"] = (
            2.0 * rows.loc[other, "macs"] * rows.loc[other, "alerts_per_s"] / ceiling
        )
    rows["meets_goal"] = rows["float32_limit_fraction"] >= threshold
    rows = _with_roofline_goal(rows, roofline_threshold)
    columns = ["device", "dtype", "model", "variant", "batch_size", "alerts_per_s", "limit_fraction"]
    roofline = ["roofline_alerts_per_s", "roofline_fraction", "meets_roofline_goal"]
    return rows[[*columns, "float32_limit_fraction", "meets_goal", *roofline]].reset_index(drop=True)


def _with_roofline_goal(rows, threshold: float):
    """``rows`` with ``meets_roofline_goal``: ``roofline_fraction >= threshold``, None where the table
    has no roofline (tables measured before it existed)."""
    import numpy as np

    rows = rows.copy()
    for column in ("roofline_alerts_per_s", "roofline_fraction"):
        if column not in rows.columns:
            rows[column] = np.nan
    known = rows["roofline_fraction"].notna()
    rows["meets_roofline_goal"] = (rows["roofline_fraction"] >= threshold).astype(object).where(known, None)
    return rows


def roofline_table(
    table,
    models=LIMIT_GOAL_MODELS,
    batch_size: int = LIMIT_GOAL_BATCH_SIZE,
    threshold: float = ROOFLINE_GOAL_FRACTION,
):
    """Each model's rate beside its two limits, per device and format, at ``batch_size`` (fastest variant).

    ``matmul_limit_alerts_per_s`` is the limit if every operator ran at the matrix-product rate
    (ceiling / 2 x multiply-adds); ``roofline_alerts_per_s`` takes each operator at the lower of that
    rate and the memory bandwidth times its arithmetic intensity (:mod:`alertlib.bench.roofline`), so
    it is never above the first. ``roofline_memory_share`` is the share of the roofline's time in
    operators that bandwidth limits; ``arithmetic_intensity`` is FLOPs per byte of the whole pass.
    ``models`` None keeps every model.
    """
    best = best_variant_rows(table[(table["impl"] == "alertlib") & (table["batch_size"] == batch_size)])
    rows = best if models is None else best[best["model"].isin(models)]
    rows = _with_roofline_goal(rows, threshold)
    for column in ("bandwidth_bytes_per_s", "bytes_per_alert", "roofline_memory_share"):
        if column not in rows.columns:
            rows[column] = float("nan")
    rows["matmul_limit_alerts_per_s"] = rows["ceiling_flops"] / (2.0 * rows["macs"])
    rows["arithmetic_intensity"] = 2.0 * rows["macs"] / rows["bytes_per_alert"]
    columns = ["device", "dtype", "model", "variant", "batch_size", "alerts_per_s", "matmul_limit_alerts_per_s"]
    columns += ["roofline_alerts_per_s", "limit_fraction", "roofline_fraction", "meets_roofline_goal"]
    columns += ["roofline_memory_share", "arithmetic_intensity", "bytes_per_alert", "ceiling_flops"]
    columns += ["bandwidth_bytes_per_s"]
    return rows[columns].sort_values(["device", "dtype", "model"]).reset_index(drop=True)


def night_report(
    table,
    model: str = "convnext_pico",
    dtype: str = "bfloat16",
    target_alerts_per_s: float = NIGHT_GOAL_ALERTS_PER_S,
    alerts_per_night: float = ALERTS_PER_NIGHT,
) -> str:
    """One sentence: the best measured rate of ``model`` in ``dtype``, against a target, and a night's time.

    The default target is the GPU goal (:data:`NIGHT_GOAL_ALERTS_PER_S`: a Rubin night of 10 million
    alerts in under a minute).
    """
    rows = measured_rows(table)
    rows = rows[(rows["model"] == model) & (rows["dtype"] == dtype) & (rows["impl"] == "alertlib")]
    if rows.empty:
        return f"{model} was not measured in {dtype}: no rate to compare with {target_alerts_per_s:,.0f} alerts/s."
    best = rows.loc[rows["alerts_per_s"].idxmax()]
    met = "meets" if best["alerts_per_s"] >= target_alerts_per_s else "misses"
    where = best["gpu_name"] if best["device"] == "cuda" else best["cpu_model"]
    return (
        f"{model} {dtype} on {best['device']} ({where}): {best['alerts_per_s']:,.0f} alerts/s at batch "
        f"{int(best['batch_size'])} ({best['variant']}), {best['limit_fraction']:.1%} of the matrix-product rate; "
        f"{met} the target of {target_alerts_per_s:,.0f} alerts/s; {alerts_per_night:,.0f} alerts take "
        f"{alerts_per_night / best['alerts_per_s']:.0f} s."
    )


# ----------------------------------------------------------------------------------------------
# Figures (peak memory against parameters: alertlib.report.figures.plot_speed_memory)
# ----------------------------------------------------------------------------------------------


def plot_throughput(table, dtype: str = "float32"):
    """Alerts per second against batch size, one line per model and implementation (fastest variant).

    One panel per device; btsbot's classes are dashed. Returns a ``matplotlib.figure.Figure``.
    """
    from alertlib.report.figures import arch_marker, new_figure

    best = best_variant_rows(table[table["dtype"] == dtype])
    devices = sorted(best["device"].unique())
    figure, axes = new_figure(1, max(len(devices), 1), panel_size=(5.0, 3.8))
    for ax, device in zip(axes[0], devices, strict=False):
        for (model, impl), group in best[best["device"] == device].groupby(["model", "impl"]):
            group = group.sort_values("batch_size")
            ax.plot(
                group["batch_size"],
                group["alerts_per_s"],
                "--" if impl == "btsbot" else "-",
                marker=arch_marker(model),
                label=f"{model}" + (" (btsbot)" if impl == "btsbot" else ""),
            )
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="alerts per second (fastest variant)")
        ax.set_title(f"{device}, {dtype}", fontsize=8)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    return figure


def plot_limit_fraction(table, batch_size: int = LIMIT_GOAL_BATCH_SIZE, dtype: str = "float32"):
    """Achieved fraction of the device's matrix-product rate per model and variant, at one batch size."""
    label = "achieved FLOP/s / matrix-product FLOP/s"
    return _fraction_bars(table, "limit_fraction", LIMIT_GOAL_FRACTION, label, batch_size, dtype)


def plot_roofline_fraction(table, batch_size: int = LIMIT_GOAL_BATCH_SIZE, dtype: str = "float32"):
    """Achieved fraction of each model's roofline limit per variant, at one batch size, beside the goal.

    The roofline limit takes each operator at the lower of the matrix-product rate and the memory
    bandwidth times its arithmetic intensity (:mod:`alertlib.bench.roofline`); the fraction of the
    matrix-product rate alone is :func:`plot_limit_fraction`'s. Tables measured before the roofline
    existed have no bar.
    """
    label = "alerts per second / roofline limit"
    return _fraction_bars(table, "roofline_fraction", ROOFLINE_GOAL_FRACTION, label, batch_size, dtype)


def _fraction_bars(table, column: str, goal: float, xlabel: str, batch_size: int, dtype: str):
    """One panel per device: ``column`` of our models per variant as bars, at ``batch_size`` and
    ``dtype``, with ``goal`` as a dotted line; rows where ``column`` is empty or absent are left out."""
    from alertlib.report.figures import new_figure

    ok = measured_rows(table)
    ok = ok[(ok["impl"] == "alertlib") & (ok["dtype"] == dtype) & (ok["batch_size"] == batch_size)]
    ok = ok[ok[column].notna()] if column in ok.columns else ok.iloc[:0]
    devices = sorted(ok["device"].unique())
    figure, axes = new_figure(1, max(len(devices), 1), panel_size=(5.0, 3.8))
    for ax, device in zip(axes[0], devices, strict=False):
        pivot = ok[ok["device"] == device].pivot_table(index="model", columns="variant", values=column)
        pivot.plot.barh(ax=ax)
        ax.axvline(goal, color="grey", linestyle=":", label=f"goal {goal}")
        ax.set(xlabel=xlabel, ylabel="")
        ax.set_title(f"{device}, {dtype}, batch {batch_size}", fontsize=8)
        ax.legend(fontsize=6)
    return figure


def decode_table(decode, goal: float = DECODE_CEILING_GOAL_FRACTION):
    """The decode tables' rows (:func:`alertlib.bench.tables.load_decode_tables`) with the goal beside them.

    ``ceiling_fraction`` is the fast decoder's one-core rate over the inflate-only ceiling, both timed
    in turns in one run (tables measured before it existed leave it empty: it is not recomputed from
    rates timed apart); ``meets_ceiling_goal`` compares it with ``goal`` for ZTF Avro folders (None
    elsewhere, and where it was not measured). ``workers_speedup``: 2 decoding processes over 1. Rows
    without the fast decoder's rate (ablation tables, such as the Avro walker against fastavro) are
    left out.
    """
    rows = decode[decode["fast_alerts_per_s"].notna()] if "fast_alerts_per_s" in decode else decode.iloc[:0]
    rows = rows.copy()
    for column in DECODE_COLUMNS:
        if column not in rows.columns:
            rows[column] = float("nan")
    ztf_avro = rows["folder"].astype(str).str.startswith("ztf") & rows["ceiling_fraction"].notna()
    rows["meets_ceiling_goal"] = (rows["ceiling_fraction"] >= goal).astype(object).where(ztf_avro, None)
    return rows[[*DECODE_COLUMNS, "meets_ceiling_goal"]].reset_index(drop=True)
