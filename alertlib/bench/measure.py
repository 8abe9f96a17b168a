"""One measurement job: one model in one format and variant, timed at each batch size, with its memory peak.

:func:`measure_job` measures in this process. :func:`run_isolated` runs it in a fresh Python process
(``python -m alertlib.bench.measure JOB.json ROWS.json``), so that on CPU the peak resident set size is
the job's own; :func:`run_in_process` runs it here and frees what it held (on GPU, where memory is
counted from a per-job baseline). A job that fails gives rows with ``status="error"`` either way.
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from alertlib.bench.timing import configure_backends, current_rss_bytes, peak_rss_bytes, time_calls
from alertlib.bench.zoo import build_model, load_btsbot_architectures, model_params_and_macs
from alertlib.core.paths import REPO_ROOT
from alertlib.core.vocab import STAMP_SIZE
from alertlib.learn.inference import prepare_for_inference, torch_dtype, uses_channels_last


def _example_alerts(batch_size: int, device: str, dtype: str, channels_last: bool, seed: int):
    """Random triplets with the scale of L2-normalised cutouts (each cutout's norm about 1)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, STAMP_SIZE, STAMP_SIZE, generator=generator) / STAMP_SIZE
    images = images.to(device=device, dtype=torch_dtype(dtype))
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


def _first_use_of_kernels(device: str, dtype: str) -> None:
    """A tiny convolution and matrix product, so that library start-up is not counted as a model's memory."""
    import torch

    images = torch.ones(2, 3, 8, 8, device=device, dtype=torch_dtype(dtype))
    weight = torch.ones(4, 3, 3, 3, device=device, dtype=torch_dtype(dtype))
    with torch.inference_mode():
        features = torch.nn.functional.conv2d(images, weight).flatten(1)
        features @ features.T
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _is_out_of_memory(error: BaseException) -> bool:
    return "out of memory" in str(error).lower() or type(error).__name__ == "OutOfMemoryError"


def _memory_baseline(job: dict) -> int:
    """Set up the process for ``job`` and return the memory in use before its model is built.

    Imports and the first use of the device's kernels happen before the baseline: they are not this
    model's inference.
    """
    import torch

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    device = job["device"]
    configure_backends(device)
    import timm  # noqa: F401
    import torch.utils.flop_counter  # noqa: F401

    from alertlib.learn import models  # noqa: F401

    if job["impl"] == "btsbot":
        load_btsbot_architectures()
    _first_use_of_kernels(device, job["dtype"])
    gc.collect()
    return torch.cuda.memory_allocated(device) if device.startswith("cuda") else current_rss_bytes()


def _time_batch(runnable, job: dict, batch_size: int) -> tuple:
    """Time ``runnable`` on one batch of example alerts: (timing, steady-state peak, warm-up peak) in bytes.

    On CUDA, cuDNN's autotuner tries algorithms (with their workspaces) during the warm-up calls; the
    steady-state peak is that of the timed calls, with the chosen algorithms. On CPU the two peaks are
    the process's peak resident set size.
    """
    import torch

    device, dtype, variant = job["device"], job["dtype"], job["variant"]
    on_cuda = device.startswith("cuda")
    alerts = _example_alerts(batch_size, device, dtype, uses_channels_last(variant), int(job["seed"]))
    warmup_peak = []
    if on_cuda:
        torch.cuda.reset_peak_memory_stats(device)

    def steady_state():
        if on_cuda:
            warmup_peak.append(torch.cuda.max_memory_allocated(device))
            torch.cuda.reset_peak_memory_stats(device)

    with torch.inference_mode():
        timing = time_calls(
            lambda: runnable(alerts),
            device,
            warmup=int(job["warmup"]),
            min_repeats=int(job["min_repeats"]),
            max_repeats=int(job["max_repeats"]),
            min_time_s=float(job["min_time_s"]),
            after_warmup=steady_state,
        )
    peak = torch.cuda.max_memory_allocated(device) if on_cuda else peak_rss_bytes()
    return timing, peak, warmup_peak[0] if warmup_peak else peak


def _measured_row(row: dict, timing, peak: int, warmup_peak: int, baseline: int) -> dict:
    """``row`` with the rates, latency and memory of one batch size."""
    batch_size = row["batch_size"]
    return {
        **row,
        "alerts_per_s": batch_size / timing.median_s,
        "alerts_per_s_q25": batch_size / timing.q75_s,
        "alerts_per_s_q75": batch_size / timing.q25_s,
        "latency_ms": 1000.0 * timing.median_s,
        "latency_iqr_ms": 1000.0 * timing.iqr_s,
        "repeats": timing.repeats,
        "first_call_s": timing.first_call_s,
        "peak_mem_mb": (peak - baseline) / 2**20,
        "peak_mem_warmup_mb": (warmup_peak - baseline) / 2**20,
        # Other processes on the machine slow a timing down: the load says how busy it was.
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan,
        "status": "ok",
        "note": "",
    }


def measure_job(job: dict) -> list[dict]:
    """Build one model in one variant and time it at each batch size (in increasing order), in this process.

    ``job`` holds ``model``, ``impl``, ``device``, ``dtype``, ``variant``, ``batch_sizes``,
    ``threads``, ``seed`` and the timing settings ``warmup``, ``min_repeats``, ``max_repeats``,
    ``min_time_s``. Returns one partial row per batch size (no ceiling, no stamp); a batch size that
    runs out of memory gives a row with ``status="oom"`` and ends the job.
    """
    import torch

    device, dtype, variant = job["device"], job["dtype"], job["variant"]
    baseline = _memory_baseline(job)
    torch.manual_seed(int(job["seed"]))
    model = build_model(job["model"], job["impl"])
    runnable = prepare_for_inference(model, variant, device, dtype)
    rows = []
    for batch_size in sorted(int(size) for size in job["batch_sizes"]):
        row = {"model": job["model"], "impl": job["impl"], "device": device.split(":")[0], "dtype": dtype}
        row.update(variant=variant, batch_size=batch_size, input_size=STAMP_SIZE)
        try:
            timing, peak, warmup_peak = _time_batch(runnable, job, batch_size)
        except (RuntimeError, MemoryError) as error:
            if not _is_out_of_memory(error):
                raise
            rows.append({**row, "status": "oom", "note": f"out of memory at batch {batch_size}"})
            break
        rows.append(_measured_row(row, timing, peak, warmup_peak, baseline))
    # Counting multiply-adds (on another instance) waits until the end, so that memory it frees
    # cannot be reused unseen by the timed model.
    del runnable, model
    params, macs = model_params_and_macs(job["model"], job["impl"])
    return [{**row, "params": params, "macs": macs} for row in rows]


def unmeasured_rows(job: dict, status: str, note: str) -> list[dict]:
    """One row per batch size of ``job`` that holds no measurement: its ``status`` and the reason."""
    base = {key: job[key] for key in ("model", "impl", "dtype", "variant")}
    return [
        {**base, "device": job["device"].split(":")[0], "batch_size": size, "status": status, "note": note}
        for size in job["batch_sizes"]
    ]


def run_isolated(job: dict, timeout_s: float | None = None) -> list[dict]:
    """Run :func:`measure_job` in a fresh Python process, so that its memory peak is its own.

    A job that fails gives one row per batch size with ``status="error"`` and the end of its
    error output in ``note``, so that one broken model does not lose the rest of the table.
    """
    with tempfile.TemporaryDirectory(prefix="alertlib-bench-") as folder:
        job_file, result_file = Path(folder) / "job.json", Path(folder) / "rows.json"
        job_file.write_text(json.dumps(job))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        if job.get("threads"):
            env["OMP_NUM_THREADS"] = str(job["threads"])
        try:
            completed = subprocess.run(
                [sys.executable, "-m", "alertlib.bench.measure", str(job_file), str(result_file)],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout_s,
            )
            failure = None if completed.returncode == 0 else completed.stderr.strip()[-600:]
        except subprocess.TimeoutExpired:
            failure = f"timed out after {timeout_s} s"
        if failure is None and result_file.is_file():
            return json.loads(result_file.read_text())
    return unmeasured_rows(job, "error", failure or "the worker wrote no result")


def run_in_process(job: dict) -> list[dict]:
    """Run :func:`measure_job` in this process, then free what it held (used on GPU; see :class:`alertlib.bench.runner.BenchmarkSettings`).

    On CUDA the peak is ``max_memory_allocated`` minus what was allocated before the model was
    built, which is the job's own in any process once the previous job's tensors are freed; this
    saves a Python and CUDA start-up per job. A job that fails gives ``status="error"`` rows, as in
    :func:`run_isolated`.
    """
    import torch

    try:
        return measure_job(job)
    except Exception as error:  # noqa: BLE001 - one broken model must not lose the rest of the table
        return unmeasured_rows(job, "error", f"{type(error).__name__}: {error}"[-600:])
    finally:
        gc.collect()
        if job["variant"].startswith("compile"):
            torch._dynamo.reset()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _worker_main(argv: list[str]) -> int:
    """Entry point of the isolated subprocess: ``python -m alertlib.bench.measure JOB.json ROWS.json``."""
    job_file, result_file = argv
    rows = measure_job(json.loads(Path(job_file).read_text()))
    Path(result_file).write_text(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
