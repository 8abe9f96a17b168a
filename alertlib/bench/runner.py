"""The whole benchmark: its settings, its jobs, the ceiling before and after them, and the journal of an interrupted run.

:func:`run_benchmark` measures the device's matrix-product ceiling, every job (each in its own
subprocess on CPU, :func:`alertlib.bench.measure.run_isolated`), and the ceiling again, then stamps every
row with the machine and the code version. Each finished job is journalled beside the output, so that a
run started again with the same settings takes the finished jobs from it; :func:`table_from_journal`
completes a run that was cut short.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from alertlib.bench.measure import run_in_process, run_isolated, unmeasured_rows
from alertlib.bench.roofline import measure_memory_bandwidth, operator_costs, roofline_limit
from alertlib.bench.timing import limit_fraction, measure_matmul_ceiling
from alertlib.bench.zoo import BTSBOT_CLASSES, GPU_ONLY_MODELS, IMPLS, btsbot_architectures_file
from alertlib.learn.inference import DTYPES, VARIANTS

# The columns of a benchmark table, in order; the machine stamp's keys follow.
ROW_COLUMNS = (
    "model",
    "impl",
    "device",
    "dtype",
    "variant",
    "batch_size",
    "input_size",
    "alerts_per_s",
    "alerts_per_s_q25",
    "alerts_per_s_q75",
    "latency_ms",
    "latency_iqr_ms",
    "repeats",
    "first_call_s",
    "peak_mem_mb",
    "peak_mem_warmup_mb",
    "params",
    "macs",
    "achieved_flops",
    "ceiling_flops",
    "ceiling_start_flops",
    "ceiling_end_flops",
    "ceiling_matmul_size",
    "limit_fraction",
    "bandwidth_bytes_per_s",
    "bandwidth_start_bytes_per_s",
    "bandwidth_end_bytes_per_s",
    "bytes_per_alert",
    "roofline_alerts_per_s",
    "roofline_fraction",
    "roofline_memory_share",
    "status",
    "note",
    "load_avg_1m",
    "code_version",
    "measured_at",
)


@dataclass
class BenchmarkSettings:
    """What to measure and how long; the fields of a profile's ``benchmark:`` block."""

    models: tuple[str, ...] = ("btsbot_cnn", "convnext_pico")
    batch_sizes: tuple[int, ...] = (1, 16, 64, 256)
    device: str = "cpu"
    dtypes: tuple[str, ...] = ("float32",)
    variants: tuple[str, ...] = ("eager", "channels_last", "compile")
    impls: tuple[str, ...] = IMPLS
    # The compile variants only at these batch sizes (each new size recompiles); None for all.
    compile_batch_sizes: tuple[int, ...] | None = None
    threads: int | None = 2
    warmup: int = 2
    min_repeats: int = 5
    max_repeats: int = 30
    min_time_s: float = 1.0
    ceiling_sizes: tuple[int, ...] | None = None
    ceiling_repeats: int = 5
    # Memory bandwidth (alertlib.bench.roofline): MiB per tensor (None: 256 on CPU, 1024 on GPU), repeats.
    bandwidth_mb: int | None = None
    bandwidth_repeats: int = 5
    gpu_only_models: tuple[str, ...] = GPU_ONLY_MODELS
    seed: int = 0
    job_timeout_s: float | None = None
    # Each job in its own subprocess (True), or all in this one (False); None: isolated on CPU,
    # where the peak resident set size is per process, and in-process on CUDA, where
    # max_memory_allocated is measured from a per-job baseline and a subprocess would add a CUDA
    # start-up to every job.
    isolate: bool | None = None
    # The batch size at which conclusions are drawn (None: the largest measured).
    report_batch_size: int | None = None

    @classmethod
    def from_profile(cls, profile: dict, **overrides) -> BenchmarkSettings:
        """Settings from a resolved profile's ``benchmark:`` block, then ``overrides`` (None values ignored)."""
        block = dict(profile.get("benchmark") or {})
        block.setdefault("seed", profile.get("seed", 0))
        block.update({key: value for key, value in overrides.items() if value is not None})
        unknown = set(block) - set(cls.__dataclass_fields__)
        if unknown:
            raise KeyError(f"unknown benchmark settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        for key in ("models", "batch_sizes", "dtypes", "variants", "impls", "compile_batch_sizes", "ceiling_sizes"):
            if block.get(key) is not None:
                block[key] = tuple(block[key])
        if "gpu_only_models" in block:
            block["gpu_only_models"] = tuple(block["gpu_only_models"] or ())
        return cls(**block)

    def validate(self) -> None:
        """Clear errors for settings that cannot be measured here."""
        import torch

        bad = [v for v in self.variants if v not in VARIANTS] + [d for d in self.dtypes if d not in DTYPES]
        bad += [i for i in self.impls if i not in IMPLS]
        if bad:
            raise ValueError(
                f"unknown variants/dtypes/impls {bad}; variants {VARIANTS}, dtypes {DTYPES}, impls {IMPLS}"
            )
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(
                f"--device cuda asked for, but CUDA is not available here (torch {torch.__version__}, "
                f"CUDA build {torch.version.cuda or 'none'}); use --device cpu, or run "
                "benchmarks/gpu_benchmark.sh on a GPU machine"
            )
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise ValueError(f"device must be cpu or cuda, not {self.device!r}")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError(f"batch sizes must be positive integers, got {self.batch_sizes}")


def benchmark_jobs(settings: BenchmarkSettings) -> tuple[list[dict], list[dict]]:
    """The measurement jobs of a run, and the rows of models skipped (with the reason)."""
    jobs, skipped = [], []
    for model in settings.models:
        for impl in settings.impls:
            if impl == "btsbot" and model not in BTSBOT_CLASSES:
                continue  # btsbot has no class for this architecture: nothing to set beside ours
            for dtype in settings.dtypes:
                for variant in settings.variants:
                    sizes = settings.batch_sizes
                    if variant.startswith("compile") and settings.compile_batch_sizes is not None:
                        sizes = tuple(size for size in sizes if size in settings.compile_batch_sizes)
                    if not sizes:
                        continue
                    base = {"model": model, "impl": impl, "device": settings.device.split(":")[0]}
                    base.update(dtype=dtype, variant=variant)
                    if settings.device == "cpu" and model in settings.gpu_only_models:
                        note = f"GPU only: {model} sees 224x224 inputs and is too slow for a CPU benchmark"
                        skipped += [{**base, "batch_size": size, "status": "skipped", "note": note} for size in sizes]
                        continue
                    jobs.append(
                        {
                            **base,
                            "device": settings.device,
                            "batch_sizes": list(sizes),
                            "threads": settings.threads,
                            "seed": settings.seed,
                            "warmup": settings.warmup,
                            "min_repeats": settings.min_repeats,
                            "max_repeats": settings.max_repeats,
                            "min_time_s": settings.min_time_s,
                        }
                    )
    return jobs, skipped


# ----------------------------------------------------------------------------------------------
# A run, step by step
# ----------------------------------------------------------------------------------------------


def _device_limits(settings: BenchmarkSettings) -> dict[str, dict]:
    """The device's limits: its matrix-product ceiling in each format of the run
    (:func:`measure_matmul_ceiling`), and its memory bandwidth under ``"bandwidth"``
    (:func:`alertlib.bench.roofline.measure_memory_bandwidth`)."""
    ceilings = {
        dtype: measure_matmul_ceiling(settings.device, dtype, settings.ceiling_sizes, repeats=settings.ceiling_repeats)
        for dtype in settings.dtypes
    }
    bandwidth = measure_memory_bandwidth(settings.device, settings.bandwidth_mb, settings.bandwidth_repeats)
    return {**ceilings, "bandwidth": bandwidth}


def _open_journal(out: str | Path | None, resume: bool) -> tuple[Path | None, dict[str, list[dict]]]:
    """The journal beside ``out`` and the jobs it holds as finished (none unless ``resume``); a stale one is removed."""
    journal = None if out is None else partial_results_path(out)
    finished = {} if journal is None or not resume else read_partial_results(journal)
    if finished:
        print(f"resuming: {len(finished)} finished jobs read from {journal} (pass --fresh to measure them again)")
    elif journal is not None and journal.exists():
        journal.unlink()
    return journal, finished


def _measure_jobs(jobs, settings: BenchmarkSettings, journal: Path | None, finished: dict, progress: bool):
    """Every job's rows, in order: taken from ``finished`` when there, else measured and journalled."""
    from tqdm.auto import tqdm

    isolate = settings.isolate if settings.isolate is not None else not settings.device.startswith("cuda")
    rows = []
    bar = tqdm(jobs, desc=f"benchmark[{settings.device}]", unit="job", disable=not progress)
    for job in bar:
        bar.set_postfix_str(f"{job['model']}/{job['impl']}/{job['dtype']}/{job['variant']}")
        key = job_key(job)
        if key in finished:
            rows += finished[key]
            continue
        job_rows = run_isolated(job, settings.job_timeout_s) if isolate else run_in_process(job)
        rows += job_rows
        if journal is not None:
            append_partial_results(journal, key, job_rows)
    return rows


def _stamp_rows(rows: list[dict], settings: BenchmarkSettings, start_limits: dict, end_limits: dict) -> list[str]:
    """Give every row its ceilings, bandwidth, code version, time and machine stamp; return the stamp's columns."""
    from alertlib.core.provenance import code_version, machine_stamp

    stamp = machine_stamp()
    stamp["cpu_threads"] = int(settings.threads or stamp["cpu_threads"])
    measured_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    start_bandwidth, end_bandwidth = start_limits["bandwidth"]["bytes_per_s"], end_limits["bandwidth"]["bytes_per_s"]
    costs = OperatorCostCache()
    for row in rows:
        start, end = start_limits[row["dtype"]], end_limits[row["dtype"]]
        ceiling = max(start["flops"], end["flops"])
        row.update(
            ceiling_start_flops=start["flops"],
            ceiling_end_flops=end["flops"],
            ceiling_matmul_size=start["size"] if start["flops"] >= end["flops"] else end["size"],
            bandwidth_start_bytes_per_s=start_bandwidth,
            bandwidth_end_bytes_per_s=end_bandwidth,
            code_version=code_version(),
            measured_at=row.pop("finished_at", None) or measured_at,
            **stamp,
        )
        _against_ceiling(row, ceiling, max(start_bandwidth, end_bandwidth), costs)
    return list(stamp)


def run_benchmark(
    settings: BenchmarkSettings, out: str | Path | None = None, progress: bool = True, resume: bool = True
):
    """Measure the ceiling, every job (in its own subprocess on CPU), and the ceiling again; return the table.

    Parameters
    ----------
    settings:
        What to measure (:class:`BenchmarkSettings`).
    out:
        Optional ``.csv`` or ``.parquet`` path; the table is written there atomically. While the
        run goes on, each finished job is journalled beside it (:func:`partial_results_path`).
    resume:
        Take the jobs already finished in that journal (an interrupted run of the same settings)
        instead of measuring them again; the ceilings are measured again in any case.

    Returns
    -------
    pandas.DataFrame
        One row per (model, impl, dtype, variant, batch size), columns :data:`ROW_COLUMNS` then the
        machine stamp.
    """
    import pandas as pd
    import torch

    from alertlib.core.files import write_table

    settings.validate()
    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    if "btsbot" in settings.impls and any(model in BTSBOT_CLASSES for model in settings.models):
        btsbot_architectures_file()  # fail now, with instructions, rather than in every job
    jobs, skipped = benchmark_jobs(settings)
    journal, finished = _open_journal(out, resume)
    start_limits = _device_limits(settings)
    rows = list(skipped) + _measure_jobs(jobs, settings, journal, finished, progress)
    end_limits = _device_limits(settings)
    stamp_columns = _stamp_rows(rows, settings, start_limits, end_limits)
    table = pd.DataFrame(rows).reindex(columns=[*ROW_COLUMNS, *stamp_columns])
    if out is not None:
        write_table(Path(out), table)
        journal.unlink(missing_ok=True)
    return table


class OperatorCostCache:
    """:func:`alertlib.bench.roofline.operator_costs` of each (model, impl, dtype, batch size), counted once;
    None (and the reason in :attr:`failures`) for a model whose operators cannot be counted."""

    def __init__(self):
        self._costs: dict[tuple, list | None] = {}
        self.failures: dict[tuple, str] = {}

    def __call__(self, row: dict) -> list | None:
        key = (row["model"], row["impl"], row["dtype"], int(row["batch_size"]))
        if key not in self._costs:
            try:
                model, impl, dtype, batch_size = key
                self._costs[key] = operator_costs(model, impl, batch_size=batch_size, dtype=dtype)
            except Exception as error:  # noqa: BLE001 - a count that fails must not lose the measured table
                self._costs[key] = None
                self.failures[key] = f"operators not counted ({type(error).__name__}: {error})"[:300]
        return self._costs[key]


def _against_ceiling(row: dict, ceiling: float, bandwidth: float = math.nan, costs=None) -> None:
    """Set a row's ``ceiling_flops`` and bandwidth and, for a measurement, its achieved FLOP/s,
    ``limit_fraction`` and roofline (:func:`alertlib.bench.roofline.roofline_limit`; ``costs``, an
    :class:`OperatorCostCache`, gives a row's operators)."""
    row["ceiling_flops"] = ceiling
    row["bandwidth_bytes_per_s"] = bandwidth
    if row.get("status") != "ok":
        return
    row["achieved_flops"] = 2.0 * row["macs"] * row["alerts_per_s"]
    row["limit_fraction"] = limit_fraction(row["macs"], row["alerts_per_s"], ceiling)
    costs = costs or OperatorCostCache()
    operators = costs(row)
    if operators is None:
        failure = costs.failures[(row["model"], row["impl"], row["dtype"], int(row["batch_size"]))]
        row["note"] = "; ".join(filter(None, [row.get("note"), failure]))
        return
    limit = roofline_limit(operators, int(row["batch_size"]), ceiling, bandwidth)
    row["bytes_per_alert"] = limit["bytes_per_alert"]
    row["roofline_alerts_per_s"] = limit["alerts_per_s"]
    row["roofline_fraction"] = row["alerts_per_s"] / limit["alerts_per_s"]
    row["roofline_memory_share"] = limit["memory_share"]


# ----------------------------------------------------------------------------------------------
# The journal of a run, and completing a run that was cut short
# ----------------------------------------------------------------------------------------------


def job_key(job: dict) -> str:
    """A job's identity for resuming: everything that decides what it measures and how."""
    return json.dumps(job, sort_keys=True)


def partial_results_path(out: str | Path) -> Path:
    """Where a run writing ``out`` journals each finished job (``<out>.partial.jsonl``), removed once ``out`` is written."""
    out = Path(out)
    return out.with_name(out.name + ".partial.jsonl")


def append_partial_results(journal: Path, key: str, rows: list[dict]) -> None:
    """Append one finished job's rows to the journal (one JSON line, flushed to disk)."""
    journal.parent.mkdir(parents=True, exist_ok=True)
    with open(journal, "a") as handle:
        finished_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        handle.write(json.dumps({"job": key, "rows": [{**row, "finished_at": finished_at} for row in rows]}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_partial_results(journal: Path) -> dict[str, list[dict]]:
    """Finished jobs from a journal, by :func:`job_key`; failed jobs are left out so that they run again.

    A last line cut short (the run was killed while writing it) is ignored and reported.
    """
    finished: dict[str, list[dict]] = {}
    if not journal.is_file():
        return finished
    for number, line in enumerate(journal.read_text().splitlines(), start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            print(f"{journal}:{number}: unreadable journal line ignored (the run was interrupted while writing it)")
            continue
        if all(row.get("status") != "error" for row in entry["rows"]):
            finished[entry["job"]] = entry["rows"]
    return finished


def table_from_journal(
    settings: BenchmarkSettings, journal: str | Path, same_machine_table, measured_at: str | None = None
):
    """The table of a run that was cut short before its end, from its journal and a sibling table.

    A run's ceilings and machine stamp are attached at its end (:func:`run_benchmark`); a run killed
    before then (e.g. when a lent GPU's time ran out) leaves only its journal. This completes it with
    the ceilings (per format, the best in ``same_machine_table``) and the machine stamp of another
    table measured on the same machine in the same session, and says so in each row's ``note``.
    Jobs of ``settings`` that the journal does not hold get ``status="skipped"`` rows that say they
    were not measured, so that nothing is silently missing.

    Parameters
    ----------
    settings:
        The settings of the interrupted run (its job list).
    journal:
        Its ``<out>.partial.jsonl`` (:func:`partial_results_path`).
    same_machine_table:
        A complete table from the same machine and session (``ceiling_flops`` for each format in
        the journal, and the stamp columns).
    measured_at:
        When the interrupted run measured (e.g. from its log); default: when its journal entries
        say, else the reference table's time.
    """
    import pandas as pd

    reference = same_machine_table
    journal = Path(journal)
    finished = read_partial_results(journal)
    jobs, skipped = benchmark_jobs(settings)
    stamp_columns = [c for c in reference.columns if c not in ROW_COLUMNS and c not in ("table", "stage")]
    stamp = reference.iloc[0][stamp_columns].to_dict()
    best = reference.loc[reference.groupby("dtype")["ceiling_flops"].idxmax()].set_index("dtype")
    ceilings, sizes = best["ceiling_flops"], best["ceiling_matmul_size"]
    source = (
        f"ceiling and machine stamp from a table of the same machine ({reference['measured_at'].iloc[0]}): "
        f"this run was cut short before its end-of-run ceiling"
    )
    bandwidth = float(reference["bandwidth_bytes_per_s"].max()) if "bandwidth_bytes_per_s" in reference else math.nan
    costs = OperatorCostCache()
    rows = list(skipped)
    for job in jobs:
        key = job_key(job)
        if key in finished:
            rows += [{**row, "note": "; ".join(filter(None, [row.get("note"), source]))} for row in finished[key]]
            continue
        rows += unmeasured_rows(
            job, "skipped", f"not measured: the run was interrupted before this job ({journal.name})"
        )
    for row in rows:
        if row["dtype"] not in ceilings:
            raise KeyError(f"{reference!r} has no ceiling for {row['dtype']}; use a table that measured it")
        finished_at = row.pop("finished_at", None)
        row.update(
            ceiling_start_flops=math.nan,
            ceiling_end_flops=math.nan,
            bandwidth_start_bytes_per_s=math.nan,
            bandwidth_end_bytes_per_s=math.nan,
            ceiling_matmul_size=sizes[row["dtype"]],
            code_version=reference["code_version"].iloc[0],
            measured_at=measured_at or finished_at or reference["measured_at"].iloc[0],
            **stamp,
        )
        _against_ceiling(row, float(ceilings[row["dtype"]]), bandwidth, costs)
    return pd.DataFrame(rows).reindex(columns=[*ROW_COLUMNS, *stamp_columns])
