"""Training throughput: raw CPU steps of resnet18, and whole training epochs through ``fit`` on each data path.

Two modes, each in one process so that its ratios are comparable even on a shared machine:

``steps`` (the default)
    CPU fine-tuning steps of resnet18 at 63x63, batch 64 (forward, BCE loss, backward, AdamW step)
    on random L2-normalised triplets: eager, channels_last, torch.compile.
``fit``
    Training alerts per second through :func:`alertlib.learn.training.fit` (Lightning, the study's
    recipe) for each model and data path (``loader``: TripletDataset in a DataLoader; ``device``: the
    triplets held in the device's memory, :mod:`alertlib.learn.devicedata`), on a random release held
    in memory, with the paper's augmentations (flips and quarter turns). The rate is the last epoch's
    (the first includes compilation and warm-up); on a GPU the epoch after it is profiled for the GPU's
    busy fraction (CUDA kernel time over wall time, torch.profiler). One CSV row per (model, data
    path) with the machine stamp. ``benchmarks/gpu_training.sh`` runs it on a GPU.

Run:
    .venv/bin/python benchmarks/bench_training.py [--steps 8] [--threads 2]
    .venv/bin/python benchmarks/bench_training.py --mode fit --models resnet18 --crop 33 --alerts 2048
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch

from alertlib.learn.models import create_model
from alertlib.learn.training import fit

GPU_MODELS = ("btsbot_cnn", "resnet18", "convnext_pico", "maxvit_tiny_rw_224")


def alerts_per_second(variant: str, steps: int, warmup: int, batch_size: int = 64) -> float:
    torch.manual_seed(0)
    model = create_model("resnet18", channels_last=variant != "eager").train()
    step_model = torch.compile(model) if variant == "compile" else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    images = torch.randn(batch_size, 3, 63, 63) / 63.0
    if variant != "eager":
        images = images.contiguous(memory_format=torch.channels_last)
    labels = (torch.rand(batch_size) < 0.5).float()
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(step_model(images).squeeze(-1), labels)
        loss.backward()
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - start)


def random_release(alerts: int, seed: int = 0, side: int = 63) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 triplets (N, side, side, 3), each cutout L2-normalised, and 0/1 labels (both present)."""
    rng = np.random.default_rng(seed)
    triplets = np.empty((alerts, side, side, 3), dtype=np.float32)
    for start in range(0, alerts, 4096):  # in blocks: the float64 draws of a whole release would double its memory
        block = rng.standard_normal((min(4096, alerts - start), side, side, 3), dtype=np.float32)
        block /= np.sqrt((block.astype(np.float64) ** 2).sum(axis=(1, 2), keepdims=True)).astype(np.float32)
        triplets[start : start + len(block)] = block
    labels = (np.arange(alerts) % 3 == 0).astype(np.float32)
    return triplets, labels


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by (start, end) intervals, overlaps counted once."""
    covered, reach = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered


class BusyFraction(pl.Callback):
    """Profiles the training batches of one epoch on a GPU: CUDA kernel time (overlaps once) over wall time."""

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.profiler = None
        self.start = 0.0
        self.fraction = float("nan")
        self.window_s = float("nan")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch != self.epoch or not torch.cuda.is_available():
            return
        torch.cuda.synchronize()
        self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])
        self.profiler.__enter__()
        self.start = time.perf_counter()

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if self.profiler is None:
            return
        torch.cuda.synchronize()
        self.window_s = time.perf_counter() - self.start
        self.profiler.__exit__(None, None, None)
        kernels = [
            (event.time_range.start, event.time_range.end)  # microseconds
            for event in self.profiler.events()
            if event.device_type == torch.autograd.DeviceType.CUDA
        ]
        self.fraction = union_seconds(kernels) / 1e6 / self.window_s
        self.profiler = None


def data_only_rate(data_path: str, dataset, args: argparse.Namespace, min_seconds: float = 1.0) -> float:
    """Alerts per second of a data path's batches on the training device, without a model (whole
    epochs after a warm-up one, for at least ``min_seconds``)."""
    from torch.utils.data import DataLoader

    from alertlib.learn.devicedata import DeviceTriplets
    from alertlib.learn.training import EpochBatchSampler, EpochSampler, _whole_batch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if data_path == "device":
        resident = DeviceTriplets(dataset, args.batch_size)
        resident.place(device)
        sampler = EpochBatchSampler(resident, seed=0)
        loader = DataLoader(resident, batch_size=None, sampler=sampler, collate_fn=_whole_batch)
    else:
        sampler = EpochSampler(dataset, seed=0)
        loader = DataLoader(
            dataset, args.batch_size, sampler=sampler, num_workers=args.num_workers, pin_memory=device.type == "cuda"
        )
    alerts, start = 0, 0.0
    for epoch in range(10_000):  # epoch 0 warms up; then whole epochs until min_seconds have passed
        if epoch == 1:
            alerts, start = 0, time.perf_counter()
        elif epoch > 1 and time.perf_counter() - start >= min_seconds:
            break
        sampler.set_epoch(epoch)
        for images, _labels in loader:
            alerts += len(images.to(device, non_blocking=True))
        if device.type == "cuda":
            torch.cuda.synchronize()
    return alerts / (time.perf_counter() - start)


def measure_fit(arch: str, data_path: str, data: dict, args: argparse.Namespace) -> dict:
    """One (model, data path) through fit: its rates, first-epoch time and (on a GPU) busy fraction."""
    from alertlib.core.provenance import seed_everything
    from alertlib.learn.datasets import TripletDataset

    # Before seeding: its loaders draw from torch's global generator, which the training's dropout uses.
    data_rate = data_only_rate(data_path, TripletDataset(*data["train"], augment=True, seed=0, crop=args.crop), args)
    seed_everything(0)
    model = create_model(arch, "scratch", input_size=args.crop)
    train = TripletDataset(data["train"][0], data["train"][1], augment=True, seed=0, crop=args.crop)
    val = TripletDataset(data["val"][0], data["val"][1], crop=args.crop)
    profile_epoch = args.epochs - 1 if torch.cuda.is_available() else -1
    busy = BusyFraction(profile_epoch)
    config = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "warmup_epochs": 0,
        "patience": args.epochs + 1,
        "num_workers": args.num_workers if data_path == "loader" else 0,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "progress": False,
        "data_path": data_path,
        "seed": 0,
    }
    result = fit(model, train, val, "binary", config, callbacks=[busy])
    history = result.history
    rates = history["train_samples"] / history["train_time_s"]
    timed = [epoch for epoch in range(1, len(history)) if epoch != profile_epoch] or [len(history) - 1]
    return {
        "model": arch,
        "input_size": model.input_size,
        "data_path": result.settings["data_path"],
        "device_data_dtype": result.settings["device_data_dtype"] or "",
        "alerts_per_s": float(rates.iloc[timed[-1]]),
        "alerts_per_s_best": float(rates.iloc[timed].max()),
        "data_only_alerts_per_s": data_rate,
        "first_epoch_s": float(history["train_time_s"].iloc[0]),
        "busy_fraction": busy.fraction,
        "busy_window_s": busy.window_s,
        "final_train_loss": float(history["train_loss"].iloc[-1]),
        "status": "ok",
        "note": "",
    }


def run_fit_mode(args: argparse.Namespace) -> pd.DataFrame:
    """Every (model, data path) of ``args``; the table is rewritten to ``args.out`` after each row, so a
    run cut short (a time limit) keeps what it measured."""
    from alertlib.core.provenance import code_version, machine_stamp

    data = {"train": random_release(args.alerts, seed=0), "val": random_release(args.val_alerts, seed=1)}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for arch in args.models:
        for data_path in args.data_paths:
            start = time.perf_counter()
            try:
                row = measure_fit(arch, data_path, data, args)
            except Exception as error:  # one model's failure (e.g. out of memory) must not lose the others
                traceback.print_exc()
                row = {
                    "model": arch,
                    "data_path": data_path,
                    "status": "error",
                    "note": f"{type(error).__name__}: {error}",
                }
            row.update(
                device=device,
                precision="bf16-mixed" if device == "cuda" else "32-true",
                batch_size=args.batch_size,
                crop=args.crop or "",
                alerts=args.alerts,
                epochs=args.epochs,
                compile=args.compile,
                channels_last=args.channels_last,
                num_workers=args.num_workers if data_path == "loader" else 0,
                threads=torch.get_num_threads(),
                job_s=round(time.perf_counter() - start, 1),
                load_avg_1m=os.getloadavg()[0],
            )
            shown = ("model", "data_path", "alerts_per_s", "data_only_alerts_per_s", "busy_fraction", "job_s")
            print(json.dumps({k: row.get(k) for k in shown}))
            rows.append({**row, **machine_stamp(), "code_version": code_version()})
            rows[-1]["measured_at"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
            if args.out is not None:
                from alertlib.core.files import write_table

                args.out.parent.mkdir(parents=True, exist_ok=True)
                write_table(args.out, pd.DataFrame(rows))
    return pd.DataFrame(rows)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("steps", "fit"), default="steps")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--steps", type=int, default=8, help="steps mode: timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="steps mode: untimed steps first")
    parser.add_argument("--models", nargs="+", default=["resnet18"], help=f"fit mode; on a GPU: {GPU_MODELS}")
    parser.add_argument("--data-paths", nargs="+", default=["loader", "device"], choices=("loader", "device"))
    parser.add_argument("--alerts", type=int, default=2048, help="fit mode: training alerts per epoch")
    parser.add_argument("--val-alerts", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3, help="fit mode: the first warms up (and compiles)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--crop", type=int, default=None, help="centred crop of the 63x63 stamps")
    parser.add_argument("--num-workers", type=int, default=0, help="loader path: DataLoader workers")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="fit mode: CSV to write")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.mode == "fit":
        table = run_fit_mode(args)
        if "alerts_per_s" in table:
            rates = table.pivot_table(
                index="model", columns="data_path", values=["alerts_per_s", "data_only_alerts_per_s"]
            )
            print(rates.round(1).to_string())
        return
    rates = {v: alerts_per_second(v, args.steps, args.warmup) for v in ("eager", "channels_last", "compile")}
    result = {
        "alerts_per_s": {k: round(v, 1) for k, v in rates.items()},
        "ratio_to_eager": {k: round(v / rates["eager"], 2) for k, v in rates.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
