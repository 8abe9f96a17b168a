"""``alertlib benchmark``: inference speed and memory per model, beside btsbot's, against the device limit.

The settings come from a profile's ``benchmark:`` block (:func:`alertlib.study.profiles.load_profile`),
then the command line's overrides; :func:`alertlib.bench.runner.run_benchmark` measures, and the table
is written to ``data/benchmarks/<device>_<chip>.csv`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alertlib.bench.zoo import IMPLS
from alertlib.learn.inference import DTYPES, VARIANTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="default", help="profile whose benchmark: block gives the defaults")
    parser.add_argument("--profiles-file", default=None, help="a YAML file with extra profiles")
    parser.add_argument("--models", nargs="+", default=None, help="architectures (default: the profile's)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=None)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the profile's)")
    parser.add_argument("--dtypes", nargs="+", default=None, choices=DTYPES)
    parser.add_argument("--variants", nargs="+", default=None, choices=VARIANTS)
    parser.add_argument("--impls", nargs="+", default=None, choices=IMPLS)
    parser.add_argument("--compile-batch-sizes", nargs="+", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the profile's)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--min-repeats", type=int, default=None)
    parser.add_argument("--max-repeats", type=int, default=None)
    parser.add_argument("--min-time-s", type=float, default=None)
    parser.add_argument("--ceiling-sizes", nargs="+", type=int, default=None, help="matrix sides for the ceiling")
    parser.add_argument("--include-gpu-only", action="store_true", help="also run GPU-only models (MaxViT) on CPU")
    parser.add_argument(
        "--out", default=None, help="output .csv/.parquet (default data/benchmarks/<device>_<chip>.csv)"
    )
    isolation = parser.add_mutually_exclusive_group()
    isolation.add_argument(
        "--isolate", dest="isolate", action="store_true", default=None, help="each job in its own subprocess"
    )
    isolation.add_argument(
        "--in-process", dest="isolate", action="store_false", help="all jobs in this process (the default on CUDA)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="ignore the journal of an interrupted run and measure every job again"
    )


def settings_from_args(args: argparse.Namespace):
    """The :class:`alertlib.bench.runner.BenchmarkSettings` of these arguments (the profile's, then the overrides)."""
    from alertlib.bench.runner import BenchmarkSettings
    from alertlib.study.profiles import load_profile

    overrides = {
        "models": args.models,
        "batch_sizes": args.batch_sizes,
        "device": args.device,
        "dtypes": args.dtypes,
        "variants": args.variants,
        "impls": args.impls,
        "compile_batch_sizes": args.compile_batch_sizes,
        "threads": args.threads,
        "warmup": args.warmup,
        "min_repeats": args.min_repeats,
        "max_repeats": args.max_repeats,
        "min_time_s": args.min_time_s,
        "ceiling_sizes": args.ceiling_sizes,
        "isolate": args.isolate,
    }
    settings = BenchmarkSettings.from_profile(load_profile(args.profile, args.profiles_file), **overrides)
    if args.include_gpu_only:
        settings.gpu_only_models = ()
    if settings.device.startswith("cuda") and args.threads is None:
        settings.threads = None  # threads matter only for CPU inference
    return settings


def run(args: argparse.Namespace) -> int:
    from alertlib.bench.runner import run_benchmark
    from alertlib.bench.tables import benchmark_tables_dir, default_table_name, measured_rows
    from alertlib.report.efficiency import custom_cnn_ratios, custom_cnn_verdicts

    settings = settings_from_args(args)
    out = Path(args.out) if args.out else benchmark_tables_dir() / default_table_name(settings.device)
    table = run_benchmark(settings, out=out, resume=not args.fresh)
    print(f"wrote {len(table)} rows to {out}")
    ok = table[table["status"] == "ok"]
    summary = ok.groupby(["model", "impl", "dtype", "batch_size"])[["alerts_per_s", "limit_fraction"]].max()
    print(summary.to_string(float_format=lambda value: f"{value:.3g}"))
    if "btsbot_cnn" in set(measured_rows(table)["model"]):
        for sentence in custom_cnn_verdicts(custom_cnn_ratios(table, settings.report_batch_size)):
            print(sentence)
    problems = table[~table["status"].isin(["ok", "skipped"])]
    for row in problems.itertuples():
        print(f"{row.status}: {row.model}/{row.impl}/{row.dtype}/{row.variant} batch {row.batch_size}: {row.note}")
    return 1 if (problems["status"] == "error").any() else 0
