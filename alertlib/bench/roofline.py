"""The roofline: a model's limit from both the device's matrix-product rate and its memory bandwidth.

The matrix-product ceiling (:func:`alertlib.bench.timing.measure_matmul_ceiling`) is the limit of an
operator that does many multiply-adds per byte it reads and writes; a normalisation, an activation or
a depthwise convolution does few, and is limited by how fast memory moves bytes instead. The roofline
limit of a model takes each of its operators at the slower of the two:

    time per batch = sum over operators of max(FLOPs / ceiling, bytes / bandwidth)

and the limit in alerts per second is the batch size over that time. ``roofline_fraction`` is the
measured rate over this limit: it says how close a model runs to what this device can do with its
operators, where ``limit_fraction`` says how close it runs to the matrix-product rate alone.

- :func:`measure_memory_bandwidth`: the device's own rate of moving bytes (large tensor copies and
  additions, best of repeats), measured at the start and the end of a benchmark run like the ceiling.
- :func:`operator_costs`: FLOPs (``torch.utils.flop_counter``'s formulas) and bytes of every operator of
  one forward pass, recorded at the ATen level on the ``meta`` device (shapes only, no arithmetic):
  bytes are the sizes of the operator's input tensors (activations, weights, biases, statistics) and
  of its outputs, each read or written once. Views (reshape, permute, transpose) move nothing and count
  nothing; an operator done in place counts its tensor read and written. Functional operators (residual
  additions, layer scale, the MLP's reshapes) count as well as modules do.
- :func:`roofline_limit`: the limit at a batch size from those costs, the ceiling and the bandwidth.

What the count leaves out makes the limit optimistic, never pessimistic, except for one thing: an
operator's input that is still in cache from the previous operator costs no memory traffic, while
the count charges it. At the study's batch sizes the activations of the first stages (tens of MB per
batch) do not fit in cache; those of the last stages may.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Operators that allocate without writing: no memory traffic.
_ALLOCATIONS = ("aten.empty", "aten.empty_like", "aten.empty_strided", "aten.new_empty")


@dataclass(frozen=True)
class OperatorCost:
    """One operator of a forward pass: its ATen name, FLOPs and bytes read and written, for the whole batch."""

    name: str
    flops: float
    bytes: float


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def measure_memory_bandwidth(device: str = "cpu", size_mb: int | None = None, repeats: int = 5) -> dict:
    """The device's rate of moving bytes through memory: large tensor copies and additions, best of ``repeats``.

    A copy reads and writes ``size_mb`` MiB (2 x size bytes moved), an addition reads two such tensors
    and writes one (3 x); the best rate of either is the bandwidth (STREAM's counting: a write counts
    once, the cache line read before it is not counted). Default size: 256 MiB per tensor on CPU,
    far beyond any cache; 1 GiB on GPU.

    Returns
    -------
    dict
        ``{"device", "bytes_per_s", "copy_bytes_per_s", "add_bytes_per_s", "size_bytes"}``.
    """
    import time

    import torch

    size_mb = size_mb or (1024 if device.startswith("cuda") else 256)
    count = int(size_mb) * 2**20 // 4
    first = torch.ones(count, device=device)
    second = torch.full((count,), 2.0, device=device)
    result = torch.empty(count, device=device)
    rates = {}
    for name, call, moved in (
        ("copy", lambda: result.copy_(first), 2),
        ("add", lambda: torch.add(first, second, out=result), 3),
    ):
        seconds = []
        for _ in range(1 + repeats):
            _synchronize(device)
            start = time.perf_counter()
            call()
            _synchronize(device)
            seconds.append(time.perf_counter() - start)
        rates[name] = moved * count * 4 / min(seconds[1:])  # the first call warms up (page faults)
    return {
        "device": device,
        "bytes_per_s": max(rates.values()),
        "copy_bytes_per_s": rates["copy"],
        "add_bytes_per_s": rates["add"],
        "size_bytes": count * 4,
    }


def _tensor_bytes(tensors) -> int:
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def _recorder():
    """A dispatch mode that records every ATen operator's :class:`OperatorCost` in its ``operators`` list."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves
    from torch.utils.flop_counter import flop_registry

    class OperatorRecorder(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.operators: list[OperatorCost] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            packet = func._overloadpacket
            if func.is_view or str(packet) in _ALLOCATIONS:
                return out
            inputs = [leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, torch.Tensor)]
            outputs = [leaf for leaf in tree_leaves(out) if isinstance(leaf, torch.Tensor)]
            flops = flop_registry[packet](*args, **kwargs, out_val=out) if packet in flop_registry else 0
            self.operators.append(OperatorCost(str(packet), float(flops), float(_tensor_bytes(inputs + outputs))))
            return out

    return OperatorRecorder()


def operator_costs(arch: str, impl: str = "alertlib", batch_size: int = 256, dtype: str = "float32"):
    """Every operator of one forward pass of ``batch_size`` 63x63 alerts through ``arch`` (eval mode).

    The model is built on the ``meta`` device (shapes without data), so that the count costs no
    arithmetic and no memory at any batch size; its FLOPs agree with
    :func:`alertlib.bench.zoo.model_params_and_macs` (twice the multiply-adds).
    """
    import torch

    from alertlib.bench.zoo import build_model
    from alertlib.core.vocab import STAMP_SIZE
    from alertlib.learn.inference import torch_dtype

    with torch.device("meta"):
        model = build_model(arch, impl).eval().to(torch_dtype(dtype))
    images = torch.zeros(batch_size, 3, STAMP_SIZE, STAMP_SIZE, device="meta", dtype=torch_dtype(dtype))
    recorder = _recorder()
    with torch.no_grad(), recorder:
        model(images)
    return recorder.operators


def roofline_limit(operators, batch_size: int, ceiling_flops: float, bandwidth_bytes_per_s: float) -> dict:
    """The roofline limit of a forward pass of ``batch_size`` alerts made of ``operators``.

    Returns
    -------
    dict
        ``alerts_per_s`` (the limit), ``bytes_per_alert`` (all operators' bytes over the batch size) and
        ``memory_share`` (the share of the limit's time spent in operators that bandwidth limits).
        NaN everywhere without a ceiling or a bandwidth.
    """
    if not ceiling_flops or not bandwidth_bytes_per_s or math.isnan(ceiling_flops * bandwidth_bytes_per_s):
        return {"alerts_per_s": math.nan, "bytes_per_alert": math.nan, "memory_share": math.nan}
    compute = [op.flops / ceiling_flops for op in operators]
    memory = [op.bytes / bandwidth_bytes_per_s for op in operators]
    seconds = sum(max(c, m) for c, m in zip(compute, memory, strict=True))
    memory_bound = sum(m for c, m in zip(compute, memory, strict=True) if m > c)
    return {
        "alerts_per_s": batch_size / seconds if seconds > 0 else math.nan,
        "bytes_per_alert": sum(op.bytes for op in operators) / batch_size,
        "memory_share": memory_bound / seconds if seconds > 0 else math.nan,
    }
