"""Timing and memory: repeated timed calls, resident memory, strict float32, and the device's limit.

The limit is the device's own rate on a large matrix product (:func:`measure_matmul_ceiling`);
:func:`limit_fraction` puts a model's achieved FLOP/s against it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass

from alertlib.learn.inference import torch_dtype


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

    ``torch.utils.benchmark.Timer`` does not fit this method: it times blocks of calls with the host
    clock after calls of its own, where this needs each call's own time (CUDA events on a GPU), exact
    warm-up and repeat counts, and a hook between warm-up and timed calls (the peak-memory reset).
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


def vm_hwm_bytes() -> int | None:
    """This process's own peak resident set, ``VmHWM`` of ``/proc/self/status`` (Linux); None elsewhere.

    ``getrusage``'s ``ru_maxrss`` is not that: Linux carries it across ``fork`` and ``exec``, so a
    benchmark worker started by a process holding 1.5 GB reported 1.5 GB whatever its model
    (``tests/test_profiling.py``).
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far: :func:`vm_hwm_bytes` on Linux, ``ru_maxrss`` elsewhere."""
    import resource

    peak = vm_hwm_bytes()
    if peak is not None:
        return peak
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
