"""The release at full size: the loader's peak memory over an epoch, its rate per worker, and the model step alone.

In one run, on a dataset in the BTS release layout (``--data DIR``, e.g. the real release of about
409k alerts, or a toy release of ``--alerts`` random L2-normalised alerts that this script writes with
:func:`alertlib.io.release.write_split`):

1. **Loader epochs**, each in a fresh Python process (its memory is its own): the training split read
   memory-mapped (``read_split(..., mmap=True)``), :class:`alertlib.learn.datasets.TripletDataset`
   with the paper's augmentations (flips, quarter turns), a ``DataLoader`` with the training sampler,
   one full epoch. First in the process itself (``num_workers=0``: the rate of one worker), then with
   ``--workers`` worker processes. Memory: the process's peak resident set (``VmHWM``, which
   includes the ~1.1 GB of torch and its libraries), the largest worker's, and the peak over the
   process and its workers together, sampled every 0.1 s (RSS, which counts pages the workers share
   with their parent once per process, and PSS, which divides them).
2. **The model step alone**: forward, loss, backward and AdamW step of ``--arch`` on a batch already
   in memory (bfloat16 autocast on a GPU), alerts per second.
3. **Which bounds an epoch**: the loader's rate with ``--workers`` workers against the model's; and
   how many workers would keep up with the model.

One row per run is appended to ``data/benchmarks/release_scale/<machine>.csv`` (or ``--out``) with
the machine stamp. The goal (issue #19): the loader's peak resident memory at most
:data:`MEMORY_GOAL_MB` whatever the release size, float64 stamps included.

Run:
    .venv/bin/python benchmarks/bench_release_scale.py --alerts 20000 --dtype float64
    .venv/bin/python benchmarks/bench_release_scale.py --data /path/to/bts_release --workers 8
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

MEMORY_GOAL_MB = 3072
TABLE_DIR = Path(__file__).resolve().parents[1] / "data" / "benchmarks" / "release_scale"


def write_toy_release(folder: Path, alerts: int, dtype: str, seed: int = 0, chunk: int = 8192) -> str:
    """A release of random L2-normalised alerts in ``dtype``: ``alerts`` for training, a tenth each for
    val and test, written chunk by chunk (:class:`alertlib.sky.writer.ReleaseWriter`), so that a
    release of the real one's size (409k alerts, 20 GB in float32) never sits in memory."""
    from alertlib.sky.writer import ReleaseWriter

    rng = np.random.default_rng(seed)
    version = f"toy{alerts}_{dtype}"
    counts = {"train": alerts, "val": max(1, alerts // 10), "test": max(1, alerts // 10)}
    bounds = np.cumsum([0, *counts.values()])
    rows = {split: np.arange(bounds[i], bounds[i + 1]) for i, split in enumerate(counts)}
    writer = ReleaseWriter(folder, version, rows, dtype)
    split_of = np.repeat(list(counts), list(counts.values()))
    for first in range(0, int(bounds[-1]), chunk):
        count = min(chunk, int(bounds[-1]) - first)
        triplets = rng.standard_normal((count, 63, 63, 3), dtype=np.float32).astype(dtype)
        triplets /= np.sqrt((triplets**2).sum(axis=(1, 2), keepdims=True))
        index = np.arange(first, first + count)
        candidates = pd.DataFrame(
            {
                "objectId": [f"ZTF{split}{i // 4:07d}" for split, i in zip(split_of[index], index, strict=True)],
                "candid": index,
                "label": (index % 3 == 0).astype(int),
            }
        )
        writer.write(triplets, candidates)
    writer.close(["objectId", "candid", "label"])
    return version


class MemorySampler:
    """Peak RSS and PSS of this process and its children together, and the largest child's RSS,
    sampled in a thread."""

    def __init__(self, interval_s: float = 0.1):
        import psutil

        self.process = psutil.Process()
        self.interval_s = interval_s
        self.peak_rss = self.peak_pss = self.peak_child_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        import psutil

        rss = pss = 0
        for process in [self.process, *self.process.children(recursive=True)]:
            try:
                info = process.memory_full_info()
            except psutil.Error:  # a worker that just ended
                continue
            rss, pss = rss + info.rss, pss + info.pss
            if process is not self.process:
                self.peak_child_rss = max(self.peak_child_rss, info.rss)
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that over from the parent through fork and exec,
    so a child started by a process that once held a whole release would report the parent's peak.
    """
    from alertlib.bench.timing import vm_hwm_bytes

    peak = vm_hwm_bytes()
    if peak is None:
        raise RuntimeError("no VmHWM in /proc/self/status (the peak memory is measured on Linux)")
    return peak / 2**20


def loader_epoch(folder: str, version: str, workers: int, batch_size: int, crop: int | None) -> dict:
    """One training epoch of the loader path, in this process (run by ``--child``)."""
    import torch
    from torch.utils.data import DataLoader

    from alertlib.io.release import read_split
    from alertlib.learn.datasets import TripletDataset
    from alertlib.learn.training import EpochSampler

    torch.set_num_threads(1)
    with MemorySampler() as memory:
        baseline_mb = memory.process.memory_info().rss / 2**20
        split = read_split(folder, "train", version, mmap=True)
        dataset = TripletDataset(split.triplets, split.candidates["label"].to_numpy(), augment=True, seed=0, crop=crop)
        sampler = EpochSampler(dataset, seed=0)
        sampler.set_epoch(1)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)
        start = time.perf_counter()
        alerts = 0
        for images, _labels in loader:
            alerts += len(images)
        seconds = time.perf_counter() - start
    return {
        "workers": workers,
        "alerts": alerts,
        "seconds": seconds,
        "alerts_per_s": alerts / seconds,
        "baseline_rss_mb": baseline_mb,
        "maxrss_mb": peak_rss_mb(),
        "maxrss_worker_mb": memory.peak_child_rss / 2**20,
        "peak_rss_total_mb": memory.peak_rss / 2**20,
        "peak_pss_total_mb": memory.peak_pss / 2**20,
        "stamp_dtype": str(split.triplets.dtype),
    }


def run_child(folder: Path, version: str, workers: int, args: argparse.Namespace) -> dict:
    """:func:`loader_epoch` in a fresh Python process."""
    command = [
        sys.executable,
        __file__,
        "--child",
        json.dumps([str(folder), version, workers, args.batch_size, args.crop]),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loader epoch with {workers} workers failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def model_step_rate(arch: str, batch_size: int, steps: int, crop: int | None) -> tuple[float, str]:
    """Training steps per second x batch of ``arch`` on a batch held on the device: the model alone."""
    import torch

    from alertlib.learn.models import create_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    side = crop or 63
    torch.manual_seed(0)
    model = create_model(arch, "scratch", input_size=crop).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch_size, 3, side, side, device=device) / side
    labels = (torch.rand(batch_size, device=device) < 0.5).float()
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")
    for step in range(steps + 2):
        if step == 2:  # two warm-up steps
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(images).float().squeeze(-1), labels)
        loss.backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start), device


def measure(args: argparse.Namespace, folder: Path, version: str, source: str) -> dict:
    import torch

    from alertlib.core.provenance import code_version, machine_stamp

    torch.set_num_threads(args.threads)
    train_file = folder / f"train_triplets_{version}.npy"
    single = run_child(folder, version, 0, args)
    print(json.dumps({"loader in process": single}), flush=True)
    parallel = run_child(folder, version, args.workers, args) if args.workers > 0 else single
    print(json.dumps({f"loader with {args.workers} workers": parallel}), flush=True)
    model_rate, model_device = model_step_rate(args.arch, args.batch_size, args.model_steps, args.crop)
    loader_rate = parallel["alerts_per_s"]
    per_worker = single["alerts_per_s"]
    row = {
        "source": source,
        "version": version,
        "alerts": single["alerts"],
        "stamp_dtype": single["stamp_dtype"],
        "release_train_gb": train_file.stat().st_size / 1e9,
        "crop": args.crop or "",
        "batch_size": args.batch_size,
        "workers": args.workers,
        "loader_alerts_per_s_per_worker": per_worker,
        "loader_alerts_per_s": loader_rate,
        "loader_epoch_s": parallel["seconds"],
        "rss_after_imports_mb": single["baseline_rss_mb"],
        "peak_rss_mb": single["maxrss_mb"],
        "peak_rss_mb_with_workers": parallel["maxrss_mb"],
        "peak_worker_rss_mb": parallel["maxrss_worker_mb"],
        "peak_rss_total_mb": parallel["peak_rss_total_mb"],
        "peak_pss_total_mb": parallel["peak_pss_total_mb"],
        "memory_goal_mb": MEMORY_GOAL_MB,
        "meets_memory_goal": max(single["maxrss_mb"], parallel["maxrss_mb"], parallel["maxrss_worker_mb"])
        <= MEMORY_GOAL_MB,
        "arch": args.arch,
        "model_device": model_device,
        "model_alerts_per_s": model_rate,
        "epoch_bound_by": "loader" if loader_rate < model_rate else "model",
        "workers_to_match_model": math.ceil(model_rate / per_worker),
        "load_avg_1m": os.getloadavg()[0],
    }
    row.update(machine_stamp())
    row["code_version"] = code_version()
    row["measured_at"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    return row


def append_row(path: Path, row: dict) -> None:
    from alertlib.core.files import write_table

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([row])
    if path.is_file():
        table = pd.concat([pd.read_csv(path), table], ignore_index=True)
    write_table(path, table)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a dataset in the BTS release layout (default: write a toy one)")
    parser.add_argument("--version", help="its version, when the folder holds several")
    parser.add_argument("--alerts", type=int, default=20000, help="toy release: training alerts")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64", help="toy release: stamps")
    parser.add_argument("--workdir", type=Path, help="toy release: folder to write it in (default: a temporary one)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the second loader epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--crop", type=int, default=None, help="centred crop (the paper: none, 63x63)")
    parser.add_argument("--arch", default="convnext_pico", help="the model of the model-step measurement")
    parser.add_argument("--model-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the model step")
    parser.add_argument("--out", type=Path, help="CSV to append the row to (default: data/benchmarks/release_scale/)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(loader_epoch(*json.loads(args.child))))
        return
    from alertlib.bench.tables import default_table_name
    from alertlib.io.release import resolve_version

    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        if args.data is not None:
            folder, version, source = args.data, resolve_version(args.data, args.version), args.data.name
        else:
            folder = Path(scratch)
            start = time.perf_counter()
            version = write_toy_release(folder, args.alerts, args.dtype)
            source = "toy"
            print(f"wrote a toy release of {args.alerts} {args.dtype} alerts in {time.perf_counter() - start:.0f} s")
        row = measure(args, folder, version, source)
    out = args.out or TABLE_DIR / default_table_name("cuda" if row["model_device"] == "cuda" else "cpu")
    append_row(out, row)
    print(json.dumps(row, indent=1, default=str))
    print(f"appended to {out}")


if __name__ == "__main__":
    main()
