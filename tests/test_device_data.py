"""The device data path: the same batches as the loader path, its choice, and bounded memory over a memory map."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from alertlib.core.errors import SettingError
from alertlib.core.paths import REPO_ROOT
from alertlib.learn import datasets as datasets_module
from alertlib.learn.datasets import TripletDataset, file_mapping
from alertlib.learn.devicedata import (
    DeviceTriplets,
    augmentation_permutations,
    choose_data_path,
    stored_bytes,
)
from alertlib.learn.training import EpochBatchSampler, EpochSampler, _whole_batch, fit

CPU = torch.device("cpu")


def _triplets(n=45, side=15, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, side, side, 3)).astype(dtype), (rng.random(n) < 0.4).astype(np.float32)


def _loader_batches(dataset, epoch, batch_size, seed):
    sampler = EpochSampler(dataset, seed, shuffle=True)
    sampler.set_epoch(epoch)
    return list(DataLoader(dataset, batch_size=batch_size, sampler=sampler))


def _device_batches(dataset, epoch, batch_size, seed):
    resident = DeviceTriplets(dataset, batch_size)
    resident.place(CPU)
    sampler = EpochBatchSampler(resident, seed, shuffle=True)
    sampler.set_epoch(epoch)
    return list(DataLoader(resident, batch_size=None, sampler=sampler, collate_fn=_whole_batch))


@pytest.mark.parametrize("normalisation", ["l2", "unit", "imagenet"])
@pytest.mark.parametrize("crop", [None, 9, 8])
def test_device_batches_are_the_loader_batches_bit_for_bit(normalisation, crop):
    """Same seed, epoch and order: the device path's batches equal the loader's, augmentations included."""
    triplets, labels = _triplets()
    for epoch in (0, 3):
        kwargs = {"augment": True, "seed": 5, "normalisation": normalisation, "crop": crop}
        loader = _loader_batches(TripletDataset(triplets, labels, **kwargs), epoch, 16, seed=2)
        device = _device_batches(TripletDataset(triplets, labels, **kwargs), epoch, 16, seed=2)
        assert [len(b[0]) for b in device] == [16, 16, 13]
        for (images, targets), (device_images, device_targets) in zip(loader, device, strict=True):
            assert device_images.dtype == torch.float32 and device_images.is_contiguous()
            assert torch.equal(images, device_images) and torch.equal(targets, device_targets)


def test_bfloat16_storage_rounds_only_the_stored_stamps():
    triplets, labels = _triplets(n=20)
    dataset = TripletDataset(triplets, labels, augment=True, seed=1)
    resident = DeviceTriplets(TripletDataset(triplets, labels, augment=True, seed=1), 20, dtype="bfloat16")
    resident.place(CPU)
    resident.set_epoch(0, np.arange(20))
    images, _ = resident[0]
    expected = torch.stack([dataset[i][0] for i in range(20)])
    assert images.dtype == torch.float32
    torch.testing.assert_close(images, expected.bfloat16().float(), rtol=0, atol=0)


def test_the_sixteen_draws_are_the_eight_symmetries_of_the_square():
    table = augmentation_permutations(5, 5)
    assert table.shape == (16, 25)
    assert all(torch.equal(row.sort().values, torch.arange(25)) for row in table)
    assert len({tuple(row.tolist()) for row in table}) == 8
    assert torch.equal(table[0], torch.arange(25))
    with pytest.raises(ValueError, match="square"):
        augmentation_permutations(5, 6)


def test_choice_of_data_path():
    triplets, labels = _triplets(n=10)
    small = [TripletDataset(triplets, labels), TripletDataset(triplets, labels)]
    needed = sum(stored_bytes(d, "float32") for d in small)
    assert needed == 2 * 10 * 3 * 15 * 15 * 4
    assert choose_data_path("auto", small, CPU, budget=needed).path == "device"
    assert choose_data_path("auto", small, CPU, budget=needed - 1).path == "loader"
    assert choose_data_path("loader", small, CPU, budget=needed).path == "loader"
    assert choose_data_path("device", small, CPU, budget=0).dtype == "float32"
    assert choose_data_path("auto", [*small, object()], CPU, budget=needed * 10).path == "loader"
    with pytest.raises(SettingError, match="TripletDataset"):
        choose_data_path("device", [object()], CPU)
    with pytest.raises(SettingError, match="data_path"):
        choose_data_path("gpu", small, CPU)
    with pytest.raises(SettingError, match="device_data_dtype"):
        choose_data_path("auto", small, CPU, dtype_setting="int8")
    # On a GPU a release that fits only in bfloat16 is stored in bfloat16.
    cuda = torch.device("cuda")
    assert choose_data_path("auto", small, cuda, budget=needed // 2).dtype == "bfloat16"


def test_ranks_share_each_batch_of_one_process(monkeypatch):
    """Two processes with half batches see, together, the alerts of each batch of one process."""
    dataset = TripletDataset(*_triplets(n=64))
    single = EpochSampler(dataset, seed=4)
    single.set_epoch(2)
    whole = single.order()
    shards = []
    for rank in (0, 1):
        sampler = EpochSampler(dataset, seed=4, num_replicas=2)
        monkeypatch.setattr(sampler, "rank", lambda rank=rank: rank)
        sampler.set_epoch(2)
        shards.append(sampler.order())
        assert len(sampler) == 32
    for batch in range(4):
        together = np.concatenate([shard[batch * 8 : (batch + 1) * 8] for shard in shards])
        assert sorted(together) == sorted(whole[batch * 16 : (batch + 1) * 16])
    # Validation is not padded: every alert once over the ranks.
    odd = TripletDataset(*_triplets(n=7))
    parts = []
    for rank in (0, 1):
        sampler = EpochSampler(odd, seed=0, shuffle=False, num_replicas=2, pad=False)
        monkeypatch.setattr(sampler, "rank", lambda rank=rank: rank)
        parts.append(sampler.order())
    assert sorted(np.concatenate(parts)) == list(range(7)) and [len(p) for p in parts] == [4, 3]


def test_fit_gives_the_same_history_on_both_paths():
    """Training (dropout included) is bit for bit the same whichever path feeds it."""
    from alertlib.core.provenance import seed_everything
    from alertlib.learn.models import create_model

    triplets, labels = _triplets(n=64, side=21)
    val_triplets, val_labels = _triplets(n=24, side=21, seed=1)
    histories = {}
    for path in ("loader", "device"):
        seed_everything(0)
        result = fit(
            create_model("btsbot_cnn", input_size=21),
            TripletDataset(triplets, labels, augment=True, seed=3),
            TripletDataset(val_triplets, val_labels),
            "binary",
            {"epochs": 2, "batch_size": 16, "progress": False, "data_path": path, "seed": 3},
        )
        assert result.settings["data_path"] == path
        histories[path] = result.history.drop(columns="train_time_s")
    assert histories["loader"].equals(histories["device"])


def test_memory_mapped_reads_drop_their_pages(tmp_path, monkeypatch):
    """An epoch over a memory map keeps the process's resident file pages within the release bound."""
    triplets, labels = _triplets(n=1200, side=63)
    np.save(tmp_path / "triplets.npy", triplets)  # 114 MB of float64
    mapped = np.load(tmp_path / "triplets.npy", mmap_mode="r")
    assert file_mapping(mapped) is not None and file_mapping(mapped[3:5]) is not None
    assert file_mapping(triplets) is None
    monkeypatch.setattr(datasets_module, "MAPPED_PAGES_RELEASE_BYTES", 16 * 2**20)

    def resident_file_mib():
        status = open("/proc/self/status").read()
        return int(status.split("RssFile:")[1].split()[0]) / 1024

    before, peak = resident_file_mib(), 0.0
    dataset, in_memory = TripletDataset(mapped, labels, augment=True), TripletDataset(triplets, labels, augment=True)
    for index in np.random.default_rng(0).permutation(len(dataset)):
        np.testing.assert_array_equal(dataset.image(index), in_memory.image(index))
        peak = max(peak, resident_file_mib() - before)
    # Without the release the whole file (114 MB) ends up resident; counting 95 kB per read instead
    # of the 2 MiB a read fault can map let it reach the whole file too on Linux 6.18.
    assert peak < 40, peak


def _bench_training_module():
    spec = importlib.util.spec_from_file_location("bench_training", REPO_ROOT / "benchmarks" / "bench_training.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_busy_fraction_counts_overlapping_kernels_once():
    union_seconds = _bench_training_module().union_seconds
    assert union_seconds([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (5.5, 5.7)]) == 4.0
    assert union_seconds([]) == 0.0


@pytest.mark.slow
def test_gpu_training_script_runs_on_the_cpu_at_toy_size(tmp_path):
    """benchmarks/gpu_training.sh without a GPU: both data paths of one model, a table with the machine stamp."""
    settings = {"MODELS": "braai_vgg", "ALERTS": "32", "VAL_ALERTS": "16", "BATCH_SIZE": "16", "EPOCHS": "2"}
    env = {**os.environ, **settings, "PYTHON": sys.executable, "OUT": str(tmp_path), "WORKERS": "0", "COMPILE": "0"}
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "benchmarks" / "gpu_training.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (table_path,) = (tmp_path / "training").glob("cpu_*.csv")
    table = pd.read_csv(table_path)
    assert sorted(table["data_path"]) == ["device", "loader"] and (table["status"] == "ok").all()
    assert (table["alerts_per_s"] > 0).all() and (table["data_only_alerts_per_s"] > 0).all()
    assert table["busy_fraction"].isna().all()  # measured on a GPU only
    assert {"cpu_model", "gpu_name", "torch_version", "code_version", "measured_at"} <= set(table.columns)
