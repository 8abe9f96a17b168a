"""Efficiency benchmark: inference speed and memory of every model, side by side with btsbot, against the device's limit.

What is measured, for each model of the study (:data:`alertlib.learn.models.STUDY_ARCHS`), each
implementation (``alertlib``: our :func:`alertlib.learn.models.create_model`; ``btsbot``: the ``btsbot``
package's own classes ``um_cnn``, ``ConvNeXt`` and ``MaxViT`` for the same architecture), each number
format (``float32``; ``bfloat16``) and each inference variant (:data:`VARIANTS`):

- ``alerts_per_s`` and ``latency_ms`` (one forward pass of a batch) at each batch size: warm-up
  calls first, then repeated calls until both a minimum count and a minimum time are reached; the
  median is reported with its inter-quartile range. GPU calls are timed with CUDA events.
- ``peak_mem_mb``: the memory the model and its inference take beyond an idle process. On CPU, the
  peak resident set size (``getrusage``) of an isolated subprocess, minus its resident size before
  the model was built; on GPU, ``torch.cuda.max_memory_allocated`` during the timed calls (weights,
  activations and workspace of the algorithms cuDNN chose; not the CUDA context).
  ``peak_mem_warmup_mb`` is the peak of the warm-up calls, which on GPU includes cuDNN's algorithm
  search (``cudnn.benchmark``) and can be many times larger; on CPU the two are the same number.
  Each (model, implementation, format, variant) runs in its own subprocess on CPU (in one process
  on GPU, from a per-job baseline), its batch sizes in increasing order, so the peak after batch
  ``b`` is that of batch ``b``.
- ``params`` and ``macs`` (multiply-adds per alert, ``torch.utils.flop_counter``).
- **the limit**: the device's own rate on a large matrix product (float32, and bfloat16 where
  asked), measured at the start and at the end of the same run (the better of the two is the
  ceiling, both are kept); ``limit_fraction`` = achieved FLOP/s (2 x ``macs`` x ``alerts_per_s``)
  divided by the ceiling of the same format.

Every row carries the machine stamp (:func:`alertlib.core.provenance.machine_stamp`) and the code version.
float32 means strict float32 on GPU: TF32 is switched off for both the models and the ceiling, so
the fraction compares like with like.

The btsbot package cannot be imported whole without its heavy dependencies; only its
``architectures.py`` file is loaded (:func:`load_btsbot_architectures`), which needs torch and timm.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from alertlib.core.paths import REPO_ROOT, data_dir

IMPLS = ("alertlib", "btsbot")
# eager: the module as built; channels_last: NHWC memory format for weights and inputs;
# compile: torch.compile (inductor, weights frozen as constants); compile_channels_last: both.
VARIANTS = ("eager", "channels_last", "compile", "compile_channels_last")
DTYPES = ("float32", "bfloat16")
STAMP_SIDE = 63

# Our architecture name -> the btsbot class that builds the same network.
BTSBOT_CLASSES = {
    "btsbot_cnn": "um_cnn",
    "convnext_pico": "ConvNeXt",
    "convnext_nano": "ConvNeXt",
    "maxvit_tiny_rw_224": "MaxViT",
}
# The authors' head sizes (STUDY_NOTES.md), in btsbot's config keys.
BTSBOT_HEAD_CONFIG = {"fc1_neurons": 256, "fc2_neurons": 8, "dropout": 0.7}
# Models too slow to benchmark on a laptop CPU (MaxViT sees 224x224 inputs): GPU only by default.
GPU_ONLY_MODELS = ("maxvit_tiny_rw_224",)

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
    "status",
    "note",
    "load_avg_1m",
    "code_version",
    "measured_at",
)

TABLES_DIR_NAME = "benchmarks"


def benchmark_tables_dir() -> Path:
    """Folder of committed benchmark tables (``data/benchmarks``)."""
    return data_dir() / TABLES_DIR_NAME


# ----------------------------------------------------------------------------------------------
# The models: ours and btsbot's
# ----------------------------------------------------------------------------------------------


def btsbot_architectures_file() -> Path:
    """Where btsbot's ``architectures.py`` is: ``$ALERTLIB_BTSBOT_ARCHITECTURES``, else the installed package.

    Raises
    ------
    FileNotFoundError
        When btsbot is not installed; says how to install it.
    """
    env = os.environ.get("ALERTLIB_BTSBOT_ARCHITECTURES")
    if env:
        path = Path(env)
        if not path.is_file():
            raise FileNotFoundError(f"$ALERTLIB_BTSBOT_ARCHITECTURES points to {path}, which does not exist")
        return path
    # find_spec on a top-level package locates it without running its __init__ (which needs `datasets`).
    spec = importlib.util.find_spec("btsbot")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "architectures.py"
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        "the btsbot package is not installed, so its models cannot be benchmarked side by side: "
        "run `.venv/bin/pip install --no-deps btsbot==2.0.7` (make setup does), or set "
        "$ALERTLIB_BTSBOT_ARCHITECTURES to a copy of btsbot/architectures.py, or pass --impls alertlib"
    )


def load_btsbot_architectures():
    """btsbot's ``architectures`` module, loaded from its file alone (the package import needs ``datasets``)."""
    module = sys.modules.get("_btsbot_architectures")
    if module is not None:
        return module
    path = btsbot_architectures_file()
    spec = importlib.util.spec_from_file_location("_btsbot_architectures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["_btsbot_architectures"] = module
    return module


def btsbot_config(arch: str) -> dict:
    """The config btsbot's class needs to build ``arch`` from scratch, with the same sizes as ours."""
    from alertlib.core.vocab import STAMP_SIZE
    from alertlib.learn.models import BTSBOT_CNN_CONFIG

    if arch not in BTSBOT_CLASSES:
        raise KeyError(f"btsbot has no class for {arch!r}; it has: {', '.join(BTSBOT_CLASSES)}")
    if arch == "btsbot_cnn":
        return {**BTSBOT_CNN_CONFIG, "image_size": STAMP_SIZE}
    return {"model_kind": arch, "pretrained": False, **BTSBOT_HEAD_CONFIG}


def build_model(arch: str, impl: str = "alertlib"):
    """A freshly initialised model: ours (:func:`alertlib.learn.models.create_model`) or btsbot's class for ``arch``."""
    if impl == "alertlib":
        from alertlib.learn.models import create_model

        return create_model(arch, "scratch", num_outputs=1)
    if impl == "btsbot":
        architectures = load_btsbot_architectures()
        return getattr(architectures, BTSBOT_CLASSES[arch])(btsbot_config(arch))
    raise ValueError(f"unknown implementation {impl!r}; use one of {IMPLS}")


def count_macs(model, images) -> int:
    """Multiply-adds of one forward pass of ``images`` (FLOPs / 2, ``torch.utils.flop_counter``)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(images)
    return int(counter.get_total_flops() // 2)


def model_params_and_macs(arch: str, impl: str = "alertlib") -> tuple[int, int]:
    """Parameters and multiply-adds per 63x63 alert: :func:`alertlib.learn.models.model_cost` for ours, counted for btsbot's."""
    import torch

    from alertlib.learn.models import count_parameters, model_cost

    if impl == "alertlib":
        cost = model_cost(arch)
        return int(cost["params"]), int(cost["macs"])
    model = build_model(arch, impl).eval()
    return count_parameters(model), count_macs(model, torch.zeros(1, 3, STAMP_SIDE, STAMP_SIDE))


# ----------------------------------------------------------------------------------------------
# Inference variants
# ----------------------------------------------------------------------------------------------


def torch_dtype(dtype: str):
    """``"float32"`` / ``"bfloat16"`` -> the torch dtype."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {DTYPES}")
    return getattr(torch, dtype)


def uses_channels_last(variant: str) -> bool:
    """Whether the variant keeps weights and inputs in channels-last (NHWC) memory format."""
    return variant in ("channels_last", "compile_channels_last")


def prepare_for_inference(model, variant: str = "eager", device: str = "cpu", dtype: str = "float32"):
    """Put ``model`` in eval mode on ``device`` in ``dtype``, in the memory format and form of ``variant``.

    ``compile`` variants use ``torch.compile`` with the weights frozen as constants (inductor's
    ``freezing``), which lets it fold batch norms and pre-pack weights; call the result under
    ``torch.inference_mode()``.
    """
    import torch

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {VARIANTS}")
    model = model.eval().to(device=device, dtype=torch_dtype(dtype))
    if uses_channels_last(variant):
        model = model.to(memory_format=torch.channels_last)
    if variant.startswith("compile"):
        model = torch.compile(model, options={"freezing": True})
    return model


def _this_machine(device: str) -> tuple[str, str]:
    """The stamp column that names the device (``gpu_name`` or ``cpu_model``), and its value here."""
    from alertlib.core.provenance import cpu_model

    if device.startswith("cuda"):
        import torch

        return "gpu_name", torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return "cpu_model", cpu_model()


def _machine_rows(rows, device: str):
    """The rows measured on this very machine (same CPU model, or same GPU), when there are any; else all."""
    column, here = _this_machine(device)
    if column not in rows.columns:
        return rows
    same = rows[rows[column] == here]
    return same if len(same) else rows


def _measured_here(rows, device: str) -> bool:
    """Whether ``rows`` come from this very machine (see :func:`_machine_rows`)."""
    column, here = _this_machine(device)
    return column in rows.columns and not rows.empty and bool((rows[column] == here).all())


def _inference_rows(arch: str, device: str, dtypes, table, allow_compile: bool):
    table = load_benchmark_tables() if table is None else table
    if table is None or len(table) == 0:
        return None
    rows = table[
        (table["model"] == arch)
        & (table["impl"] == "alertlib")
        & (table["device"] == device.split(":")[0])
        & (table["dtype"].isin(list(dtypes)))
        & (table["status"] == "ok")
    ]
    if not allow_compile:
        rows = rows[~rows["variant"].str.startswith("compile")]
    return _machine_rows(rows, device) if len(rows) else None


def choose_inference(
    arch: str,
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int | None = None,
    n_alerts: int | None = None,
    table=None,
    allow_compile: bool = True,
) -> tuple[str, str]:
    """The fastest measured (format, variant) for scoring ``n_alerts`` alerts with ``arch`` here.

    Parameters
    ----------
    arch:
        The architecture's name.
    device:
        ``cpu`` or ``cuda`` (``cuda:1`` counts as ``cuda``).
    dtype:
        ``float32`` or ``bfloat16`` to fix the format; ``auto`` to let the measurements choose
        between them.
    batch_size:
        Compare at the measured batch size nearest to this one; None for the largest measured.
    n_alerts:
        How many alerts will be scored. The choice minimises the expected time, first call
        (compilation, for ``compile``) plus ``n_alerts`` / alerts per second; None ignores the
        first call (a long-running scorer).
    table:
        A benchmark table; None reads every table in ``data/benchmarks/``. Rows measured on this
        very machine (same CPU model or GPU) are preferred over rows of other machines; with
        ``dtype="auto"``, bfloat16 is chosen only from this machine's own rows.
    allow_compile:
        False leaves out the ``compile`` variants.

    Returns
    -------
    (dtype, variant)
        ``(dtype, "eager")`` (``float32`` for ``auto``) when ``arch`` was never measured here.
    """
    dtypes = DTYPES if dtype == "auto" else (dtype,)
    fallback = ("float32" if dtype == "auto" else dtype, "eager")
    rows = _inference_rows(arch, device, dtypes, table, allow_compile)
    if rows is None or rows.empty:
        return fallback
    if dtype == "auto" and not _measured_here(rows, device):
        # bfloat16 is fast only where the hardware has it (AMX, AVX-512-BF16, tensor cores): take
        # another machine's word for the variant, not for the format.
        rows = rows[rows["dtype"] == "float32"]
        if rows.empty:
            return fallback
    sizes = sorted(rows["batch_size"].unique())
    nearest = sizes[-1] if batch_size is None else min(sizes, key=lambda size: (abs(size - batch_size), -size))
    at_size = rows[rows["batch_size"] == nearest]
    expected = 1.0 / at_size["alerts_per_s"]  # the rate decides for a long-running scorer
    if n_alerts is not None:
        first = at_size["first_call_s"].fillna(0.0) if "first_call_s" in at_size.columns else 0.0
        expected = first + n_alerts / at_size["alerts_per_s"]
    best = at_size.loc[expected.idxmin()]
    return str(best["dtype"]), str(best["variant"])


def best_inference_variant(
    arch: str,
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int | None = None,
    table=None,
    allow_compile: bool = True,
) -> str:
    """The fastest measured variant for ``arch`` on this kind of device in ``dtype`` (:func:`choose_inference`).

    Returns a name from :data:`VARIANTS`; ``eager`` when no measurement of ``arch`` exists.
    """
    return choose_inference(arch, device, dtype, batch_size, None, table, allow_compile)[1]


def optimise_for_inference(
    model,
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int | None = None,
    variant: str | None = None,
    allow_compile: bool = True,
    n_alerts: int | None = None,
):
    """Prepare a model for inference in the fastest format and variant measured for its architecture.

    Parameters
    ----------
    model:
        A model from :func:`alertlib.learn.models.create_model` (its ``arch`` attribute picks the rows).
    dtype:
        ``float32``, ``bfloat16``, or ``auto`` (whichever the benchmark tables of this machine
        show faster; see :func:`choose_inference`).
    variant:
        Force a variant; None asks :func:`choose_inference`.
    n_alerts:
        How many alerts will be scored (so that compilation is chosen only when it pays off).

    Returns
    -------
    (model, dtype, variant)
        The prepared model, and the format and variant used. Feed it inputs in that format and
        memory format (:func:`uses_channels_last`) and call it under ``torch.inference_mode()``.
    """
    arch = getattr(model, "arch", None)
    if variant is None or dtype == "auto":
        chosen_dtype, chosen_variant = (
            choose_inference(arch, device, dtype, batch_size, n_alerts, allow_compile=allow_compile)
            if arch
            else ("float32" if dtype == "auto" else dtype, "eager")
        )
        dtype = chosen_dtype
        variant = variant or chosen_variant
    return prepare_for_inference(model, variant, device, dtype), dtype, variant


# ----------------------------------------------------------------------------------------------
# Timing and memory
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Summary of repeated timed calls (seconds)."""

    median_s: float
    q25_s: float
    q75_s: float
    repeats: int
    first_call_s: float

    @property
    def iqr_s(self) -> float:
        return self.q75_s - self.q25_s


def summarise_times(seconds: list[float], first_call_s: float = math.nan) -> Timing:
    """Median and quartiles of call times."""
    import numpy as np

    if not seconds:
        raise ValueError("no timed calls to summarise")
    q25, median, q75 = np.percentile(np.asarray(seconds, dtype=float), [25, 50, 75])
    return Timing(float(median), float(q25), float(q75), len(seconds), float(first_call_s))


def time_calls(
    call,
    device: str = "cpu",
    warmup: int = 2,
    min_repeats: int = 5,
    max_repeats: int = 30,
    min_time_s: float = 1.0,
    after_warmup=None,
) -> Timing:
    """Time ``call()`` after ``warmup`` calls: at least ``min_repeats`` calls and ``min_time_s`` seconds.

    On CUDA each call is bracketed by CUDA events (device time, not host time). ``after_warmup``,
    if given, is called once between the warm-up and the timed calls.
    """
    import torch

    on_cuda = device.startswith("cuda")
    first_call_s = math.nan
    for index in range(max(warmup, 1)):
        start = time.perf_counter()
        call()
        if on_cuda:
            torch.cuda.synchronize(device)
        if index == 0:
            first_call_s = time.perf_counter() - start
    if after_warmup is not None:
        after_warmup()
    seconds: list[float] = []
    spent = 0.0
    while len(seconds) < max_repeats and (len(seconds) < min_repeats or spent < min_time_s):
        if on_cuda:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            call()
            end.record()
            end.synchronize()
            seconds.append(begin.elapsed_time(end) / 1000.0)
        else:
            start = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - start)
        spent += seconds[-1]
    return summarise_times(seconds, first_call_s)


def current_rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``getrusage``)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def set_float32_strict(device: str) -> None:
    """Float32 means float32: switch TF32 off on CUDA for matrix products and convolutions."""
    import torch

    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def configure_backends(device: str) -> None:
    """The settings every measurement on ``device`` runs under, the same for ours and btsbot's.

    Strict float32 (:func:`set_float32_strict`), and on CUDA cuDNN's autotuner
    (``cudnn.benchmark``): a broker scores batches of one fixed shape, so the fastest convolution
    algorithm for that shape is chosen once, during the warm-up calls.
    """
    import torch

    set_float32_strict(device)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True


def measure_matmul_ceiling(
    device: str = "cpu",
    dtype: str = "float32",
    sizes: list[int] | tuple[int, ...] | None = None,
    warmup: int = 2,
    repeats: int = 5,
) -> dict:
    """The device's own rate on large square matrix products: the limit a model's FLOP/s is compared to.

    Parameters
    ----------
    sizes:
        Matrix sides to try; the best median rate over them is the ceiling. Default (1024, 2048)
        on CPU and (4096, 8192) on GPU.

    Returns
    -------
    dict
        ``{"device", "dtype", "flops", "size", "per_size"}``: FLOP/s (2 n^3 / median time) of the
        best size, that size, and the rate of each size.
    """
    import torch

    set_float32_strict(device)
    sizes = tuple(sizes or ((4096, 8192) if device.startswith("cuda") else (1024, 2048)))
    generator = torch.Generator().manual_seed(0)
    per_size = {}
    for size in sizes:
        left = torch.randn(size, size, generator=generator).to(device=device, dtype=torch_dtype(dtype))
        right = torch.randn(size, size, generator=generator).to(device=device, dtype=torch_dtype(dtype))
        timing = time_calls(
            lambda left=left, right=right: torch.matmul(left, right),
            device,
            warmup=warmup,
            min_repeats=repeats,
            max_repeats=repeats,
            min_time_s=0.0,
        )
        per_size[int(size)] = 2.0 * size**3 / timing.median_s
        del left, right
    best = max(per_size, key=per_size.get)
    return {"device": device, "dtype": dtype, "flops": per_size[best], "size": best, "per_size": per_size}


def limit_fraction(macs: float, alerts_per_s: float, ceiling_flops: float) -> float:
    """Achieved FLOP/s (2 x multiply-adds per alert x alerts per second) over the device's ceiling."""
    if not ceiling_flops or ceiling_flops <= 0:
        return math.nan
    return 2.0 * macs * alerts_per_s / ceiling_flops


# ----------------------------------------------------------------------------------------------
# One measurement job, run in an isolated subprocess
# ----------------------------------------------------------------------------------------------


def _example_alerts(batch_size: int, device: str, dtype: str, channels_last: bool, seed: int):
    """Random triplets with the scale of L2-normalised cutouts (each cutout's norm about 1)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, STAMP_SIDE, STAMP_SIDE, generator=generator) / STAMP_SIDE
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


def measure_job(job: dict) -> list[dict]:
    """Build one model in one variant and time it at each batch size (in increasing order), in this process.

    ``job`` holds ``model``, ``impl``, ``device``, ``dtype``, ``variant``, ``batch_sizes``,
    ``threads``, ``seed`` and the timing settings ``warmup``, ``min_repeats``, ``max_repeats``,
    ``min_time_s``. Returns one partial row per batch size (no ceiling, no stamp); a batch size that
    runs out of memory gives a row with ``status="oom"`` and ends the job.
    """
    import torch

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    device, dtype, variant = job["device"], job["dtype"], job["variant"]
    configure_backends(device)
    on_cuda = device.startswith("cuda")
    # Imports and the first use of the device's kernels happen before the baseline: they are not
    # this model's inference. Counting multiply-adds (on another instance) waits until the end, so
    # that memory it frees cannot be reused unseen by the timed model.
    import timm  # noqa: F401
    import torch.utils.flop_counter  # noqa: F401

    from alertlib.learn import models  # noqa: F401

    if job["impl"] == "btsbot":
        load_btsbot_architectures()
    _first_use_of_kernels(device, dtype)
    gc.collect()
    baseline = torch.cuda.memory_allocated(device) if on_cuda else current_rss_bytes()
    torch.manual_seed(int(job["seed"]))
    model = build_model(job["model"], job["impl"])
    runnable = prepare_for_inference(model, variant, device, dtype)
    rows = []
    for batch_size in sorted(int(size) for size in job["batch_sizes"]):
        row = {"model": job["model"], "impl": job["impl"], "device": device.split(":")[0], "dtype": dtype}
        row.update(variant=variant, batch_size=batch_size, input_size=STAMP_SIDE)
        try:
            alerts = _example_alerts(batch_size, device, dtype, uses_channels_last(variant), int(job["seed"]))
            warmup_peak = []
            if on_cuda:
                torch.cuda.reset_peak_memory_stats(device)

            def steady_state(warmup_peak=warmup_peak):
                # cuDNN's autotuner tries algorithms (with their workspaces) during the warm-up calls;
                # the steady-state peak is that of the timed calls, with the chosen algorithms.
                if on_cuda:
                    warmup_peak.append(torch.cuda.max_memory_allocated(device))
                    torch.cuda.reset_peak_memory_stats(device)

            with torch.inference_mode():
                timing = time_calls(
                    lambda alerts=alerts, runnable=runnable: runnable(alerts),
                    device,
                    warmup=int(job["warmup"]),
                    min_repeats=int(job["min_repeats"]),
                    max_repeats=int(job["max_repeats"]),
                    min_time_s=float(job["min_time_s"]),
                    after_warmup=steady_state,
                )
            peak = torch.cuda.max_memory_allocated(device) if on_cuda else peak_rss_bytes()
            first_peak = warmup_peak[0] if warmup_peak else peak
        except (RuntimeError, MemoryError) as error:
            if not _is_out_of_memory(error):
                raise
            rows.append({**row, "status": "oom", "note": f"out of memory at batch {batch_size}"})
            break
        row.update(
            alerts_per_s=batch_size / timing.median_s,
            alerts_per_s_q25=batch_size / timing.q75_s,
            alerts_per_s_q75=batch_size / timing.q25_s,
            latency_ms=1000.0 * timing.median_s,
            latency_iqr_ms=1000.0 * timing.iqr_s,
            repeats=timing.repeats,
            first_call_s=timing.first_call_s,
            peak_mem_mb=(peak - baseline) / 2**20,
            peak_mem_warmup_mb=(first_peak - baseline) / 2**20,
            # Other processes on the machine slow a timing down: the load says how busy it was.
            load_avg_1m=os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan,
            status="ok",
            note="",
        )
        rows.append(row)
        del alerts
    del runnable, model
    params, macs = model_params_and_macs(job["model"], job["impl"])
    return [{**row, "params": params, "macs": macs} for row in rows]


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
                [sys.executable, "-m", "alertlib.bench.profiling", str(job_file), str(result_file)],
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


def unmeasured_rows(job: dict, status: str, note: str) -> list[dict]:
    """One row per batch size of ``job`` that holds no measurement: its ``status`` and the reason."""
    base = {key: job[key] for key in ("model", "impl", "dtype", "variant")}
    return [
        {**base, "device": job["device"].split(":")[0], "batch_size": size, "status": status, "note": note}
        for size in job["batch_sizes"]
    ]


def run_in_process(job: dict) -> list[dict]:
    """Run :func:`measure_job` in this process, then free what it held (used on GPU; see :class:`BenchmarkSettings`).

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
    """Entry point of the isolated subprocess: ``python -m alertlib.bench.profiling JOB.json ROWS.json``."""
    job_file, result_file = argv
    rows = measure_job(json.loads(Path(job_file).read_text()))
    Path(result_file).write_text(json.dumps(rows))
    return 0


# ----------------------------------------------------------------------------------------------
# The whole benchmark
# ----------------------------------------------------------------------------------------------


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
    from tqdm.auto import tqdm

    from alertlib.core.files import write_table
    from alertlib.core.provenance import code_version, machine_stamp

    settings.validate()
    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    if "btsbot" in settings.impls and any(model in BTSBOT_CLASSES for model in settings.models):
        btsbot_architectures_file()  # fail now, with instructions, rather than in every job
    jobs, skipped = benchmark_jobs(settings)

    def ceilings() -> dict[str, dict]:
        return {
            dtype: measure_matmul_ceiling(
                settings.device, dtype, settings.ceiling_sizes, repeats=settings.ceiling_repeats
            )
            for dtype in settings.dtypes
        }

    isolate = settings.isolate if settings.isolate is not None else not settings.device.startswith("cuda")
    journal = None if out is None else partial_results_path(out)
    finished = {} if journal is None or not resume else read_partial_results(journal)
    if finished:
        print(f"resuming: {len(finished)} finished jobs read from {journal} (pass --fresh to measure them again)")
    elif journal is not None and journal.exists():
        journal.unlink()

    start_ceilings = ceilings()
    rows = list(skipped)
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
    end_ceilings = ceilings()

    stamp = machine_stamp()
    stamp["cpu_threads"] = int(settings.threads or stamp["cpu_threads"])
    measured_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for row in rows:
        start, end = start_ceilings[row["dtype"]], end_ceilings[row["dtype"]]
        ceiling = max(start["flops"], end["flops"])
        row.update(
            ceiling_start_flops=start["flops"],
            ceiling_end_flops=end["flops"],
            ceiling_matmul_size=start["size"] if start["flops"] >= end["flops"] else end["size"],
            code_version=code_version(),
            measured_at=row.pop("finished_at", None) or measured_at,
            **stamp,
        )
        _against_ceiling(row, ceiling)
    columns = [*ROW_COLUMNS, *stamp]
    table = pd.DataFrame(rows).reindex(columns=columns)
    if out is not None:
        write_table(Path(out), table)
        journal.unlink(missing_ok=True)
    return table


def _against_ceiling(row: dict, ceiling: float) -> None:
    """Set a row's ``ceiling_flops`` and, for a measurement, its achieved FLOP/s and ``limit_fraction``."""
    row["ceiling_flops"] = ceiling
    if row.get("status") == "ok":
        row["achieved_flops"] = 2.0 * row["macs"] * row["alerts_per_s"]
        row["limit_fraction"] = limit_fraction(row["macs"], row["alerts_per_s"], ceiling)


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
            ceiling_matmul_size=sizes[row["dtype"]],
            code_version=reference["code_version"].iloc[0],
            measured_at=measured_at or finished_at or reference["measured_at"].iloc[0],
            **stamp,
        )
        _against_ceiling(row, float(ceilings[row["dtype"]]))
    return pd.DataFrame(rows).reindex(columns=[*ROW_COLUMNS, *stamp_columns])


# ----------------------------------------------------------------------------------------------
# Reading tables and drawing conclusions from them
# ----------------------------------------------------------------------------------------------


def load_benchmark_tables(paths=None):
    """Concatenate benchmark tables (default: every ``.csv`` in ``data/benchmarks/``); None when there are none."""
    import pandas as pd

    if paths is None:
        folder = benchmark_tables_dir()
        paths = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    frames = []
    for path in paths:
        path = Path(path)
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        missing = {"model", "device", "dtype", "variant", "batch_size", "status"} - set(frame.columns)
        if missing:
            raise ValueError(
                f"{path} is not an efficiency benchmark table (no column {', '.join(sorted(missing))}): "
                "keep other tables out of data/benchmarks/ itself (decode tables live in data/benchmarks/decode/)"
            )
        frames.append(frame.assign(table=path.name))
    return pd.concat(frames, ignore_index=True) if frames else None


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


def custom_cnn_ratios(table, batch_size: int | None = None, dtype: str | None = None):
    """Speed and memory of each model (its fastest variant) over the custom CNN's, per device and format.

    The measured rows of ``table`` passed to :func:`alertlib.report.stats.efficiency_ratios` (ours only),
    for each (device, format) in turn; ``batch_size`` None means the largest batch size at which
    every model of that device and format was measured (:func:`common_batch_size`), so that a
    stage with larger batches for a few models does not leave the others out.
    """
    import pandas as pd

    from alertlib.report.stats import efficiency_ratios

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
    """Sentences from :func:`custom_cnn_ratios`: a count per device, then one per model (``stats.verdict``)."""
    from alertlib.core.vocab import CLASSIC_ARCHS
    from alertlib.report.stats import verdict

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


def goal_check(table, models=("convnext_pico", "resnet18"), batch_size: int = 256, threshold: float = 0.6):
    """Best achieved FLOP/s of ``models`` at ``batch_size`` for each format, against the float32 matrix-product rate.

    The CPU goal is stated against the device's measured **float32** rate, so ``meets_goal`` compares
    ``float32_limit_fraction`` (achieved FLOP/s over the float32 ceiling of the same device) with
    ``threshold``. ``limit_fraction`` stays the fraction of the same format's own ceiling: a bfloat16
    model can exceed the float32 rate while using a small part of the bfloat16 one.
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
    columns = ["device", "dtype", "model", "variant", "batch_size", "alerts_per_s", "limit_fraction"]
    return rows[[*columns, "float32_limit_fraction", "meets_goal"]].reset_index(drop=True)


def night_report(
    table,
    model: str = "convnext_pico",
    dtype: str = "bfloat16",
    target_alerts_per_s: float = 200_000.0,
    alerts_per_night: float = 1e7,
) -> str:
    """One sentence: the best measured rate of ``model`` in ``dtype``, against a target, and a night's time.

    The default target is the GPU goal (200,000 alerts/s: a Rubin night of 10 million alerts in under a minute).
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


def default_table_name(device: str, stamp: dict | None = None) -> str:
    """``<device>_<cpu or gpu model>[_<threads>t].csv``: a table name that says where it was measured."""
    from alertlib.core.provenance import machine_stamp

    stamp = stamp or machine_stamp()
    what = stamp["gpu_name"] if device.startswith("cuda") else stamp["cpu_model"]
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\([^)]*\)", "", what.lower())).strip("-") or "unknown"
    threads = f"_{stamp['cpu_threads']}t" if device == "cpu" else ""
    return f"{device.split(':')[0]}_{slug}{threads}.csv"


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


def plot_limit_fraction(table, batch_size: int = 256, dtype: str = "float32"):
    """Achieved fraction of the device's matrix-product rate per model and variant, at one batch size."""
    from alertlib.report.figures import new_figure

    ok = measured_rows(table)
    ok = ok[(ok["impl"] == "alertlib") & (ok["dtype"] == dtype) & (ok["batch_size"] == batch_size)]
    devices = sorted(ok["device"].unique())
    figure, axes = new_figure(1, max(len(devices), 1), panel_size=(5.0, 3.8))
    for ax, device in zip(axes[0], devices, strict=False):
        pivot = ok[ok["device"] == device].pivot_table(index="model", columns="variant", values="limit_fraction")
        pivot.plot.barh(ax=ax)
        ax.axvline(0.6, color="grey", linestyle=":", label="goal 0.6")
        ax.set(xlabel="achieved FLOP/s / matrix-product FLOP/s", ylabel="")
        ax.set_title(f"{device}, {dtype}, batch {batch_size}", fontsize=8)
        ax.legend(fontsize=6)
    return figure


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


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


def settings_from_args(args: argparse.Namespace) -> BenchmarkSettings:
    """The settings of ``alertlib benchmark`` with these arguments (the profile's, then the overrides)."""
    from alertlib.study.pipeline import load_profile

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


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
