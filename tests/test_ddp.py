"""Data-parallel training (Lightning DDP, gloo on the CPU): two processes train as one with the same effective batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from alertlib.learn.datasets import TripletDataset
from alertlib.learn.training import fit

# Two processes average two half-batch gradients where one process takes one full-batch gradient:
# the same sums in another order, so the losses agree to float32 rounding, compounded over the steps.
# Measured: at most 7e-8 relative over three epochs (both paths); the tolerance leaves 100x.
RELATIVE_TOLERANCE = 1e-5


class TinyClassifier(nn.Module):
    """No dropout and no batch norm: with them two processes draw other masks or see other statistics."""

    init = "scratch"

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 1)
        )

    def forward(self, images):
        return self.layers(images)


def _fit(devices: int, data_path: str):
    rng = np.random.default_rng(0)
    triplets = rng.normal(size=(96, 15, 15, 3)).astype(np.float32)
    labels = (triplets[..., 2].mean(axis=(1, 2)) > 0).astype(np.float32)
    torch.manual_seed(0)
    config = {
        "epochs": 3,
        "batch_size": 16,
        "lr": 3e-2,
        "warmup_epochs": 1,
        "progress": False,
        "accelerator": "cpu",
        "devices": devices,
        "strategy": "ddp_spawn" if devices > 1 else "auto",
        "data_path": data_path,
        "seed": 1,
    }
    train = TripletDataset(triplets[:64], labels[:64], augment=True, seed=1)
    val = TripletDataset(triplets[64:], labels[64:])
    return fit(TinyClassifier(), train, val, "binary", config)


@pytest.mark.slow
@pytest.mark.parametrize("data_path", ["loader", "device"])
def test_two_processes_train_like_one(data_path):
    one, two = _fit(1, data_path), _fit(2, data_path)
    assert list(two.history["epoch"]) == [0, 1, 2] and (two.history["train_samples"] == 64).all()
    assert two.settings["data_path"] == data_path
    for column in ("train_loss", "val_loss", "lr"):
        np.testing.assert_allclose(two.history[column], one.history[column], rtol=RELATIVE_TOLERANCE)
    assert two.best_epoch == one.best_epoch
    assert two.best_val_loss == pytest.approx(one.best_val_loss, rel=RELATIVE_TOLERANCE)
    # The weights the main process gets back are those of the processes' best epoch (measured: 3e-5
    # relative at most, on the smallest weights).
    for name, weight in one.model.state_dict().items():
        torch.testing.assert_close(two.model.state_dict()[name], weight, rtol=1e-3, atol=1e-5)
    # Training moved the weights (the comparison is not between two untrained models).
    assert one.history["val_loss"].iloc[-1] < one.history["val_loss"].iloc[0]
