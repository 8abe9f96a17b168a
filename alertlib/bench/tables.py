"""Benchmark tables: reading them, the rows that hold a measurement, the fastest variant, ours beside btsbot's.

The tables are read by :func:`alertlib.learn.inference.load_benchmark_tables` (scoring chooses its
format and variant from them too); the claims drawn from them are in :mod:`alertlib.report.efficiency`.
"""

from __future__ import annotations

import re

from alertlib.learn.inference import benchmark_tables_dir, load_benchmark_tables

__all__ = [
    "benchmark_tables_dir",
    "best_variant_rows",
    "common_batch_size",
    "compare_implementations",
    "default_table_name",
    "load_benchmark_tables",
    "load_decode_tables",
    "measured_rows",
]

# The committed decode tables (benchmarks/bench_decode.py), under data/benchmarks/.
DECODE_DIR_NAME = "decode"


def measured_rows(table):
    """The rows that hold a measurement (``status == "ok"``), without skipped, failed or out-of-memory ones."""
    return table[table["status"] == "ok"]


def best_variant_rows(table):
    """For each (table, model, impl, device, dtype, batch size), the row of the fastest variant."""
    ok = measured_rows(table)
    keys = [k for k in ("table", "model", "impl", "device", "dtype", "batch_size") if k in ok.columns]
    return ok.loc[ok.groupby(keys, dropna=False)["alerts_per_s"].idxmax()].reset_index(drop=True)


def compare_implementations(table):
    """Ours against btsbot's, for the same architecture, format, variant and batch size.

    ``speed_ratio`` > 1 means ours is faster; ``within_spread`` is true when each median rate lies
    inside the other's inter-quartile range (a tie on this machine); ``at_least_as_fast`` is
    ``speed_ratio >= 1`` or a tie.
    """
    import pandas as pd

    ok = measured_rows(table)
    keys = ["model", "device", "dtype", "variant", "batch_size"]
    fields = ["alerts_per_s", "alerts_per_s_q25", "alerts_per_s_q75", "peak_mem_mb", "params", "macs"]
    ours = ok[ok["impl"] == "alertlib"][keys + fields]
    theirs = ok[ok["impl"] == "btsbot"][keys + fields]
    paired = pd.merge(ours, theirs, on=keys, suffixes=("_alertlib", "_btsbot"))
    paired["speed_ratio"] = paired["alerts_per_s_alertlib"] / paired["alerts_per_s_btsbot"]
    paired["within_spread"] = paired["alerts_per_s_alertlib"].between(
        paired["alerts_per_s_q25_btsbot"], paired["alerts_per_s_q75_btsbot"]
    ) | paired["alerts_per_s_btsbot"].between(paired["alerts_per_s_q25_alertlib"], paired["alerts_per_s_q75_alertlib"])
    paired["at_least_as_fast"] = (paired["speed_ratio"] >= 1.0) | paired["within_spread"]
    return paired.sort_values(keys).reset_index(drop=True)


def common_batch_size(table) -> int | None:
    """The largest batch size at which every model of ``table`` (ours, measured) has a row; None if there is none."""
    ok = measured_rows(table)
    ok = ok[ok["impl"] == "alertlib"] if "impl" in ok.columns else ok
    sizes = [set(group["batch_size"]) for _, group in ok.groupby("model")]
    shared = set.intersection(*sizes) if sizes else set()
    return int(max(shared)) if shared else None


def default_table_name(device: str, stamp: dict | None = None) -> str:
    """``<device>_<cpu or gpu model>[_<threads>t].csv``: a table name that says where it was measured."""
    from alertlib.core.provenance import machine_stamp

    stamp = stamp or machine_stamp()
    what = stamp["gpu_name"] if device.startswith("cuda") else stamp["cpu_model"]
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\([^)]*\)", "", what.lower())).strip("-") or "unknown"
    threads = f"_{stamp['cpu_threads']}t" if device == "cpu" else ""
    return f"{device.split(':')[0]}_{slug}{threads}.csv"


def load_decode_tables(folder=None):
    """Every decode table (``benchmarks/bench_decode.py``; default the CSVs in ``data/benchmarks/decode/``),
    one after the other with the file's name in ``table``; None when there is none."""
    import pandas as pd

    folder = benchmark_tables_dir() / DECODE_DIR_NAME if folder is None else folder
    paths = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    frames = [pd.read_csv(path).assign(table=path.name) for path in paths]
    return pd.concat(frames, ignore_index=True) if frames else None
