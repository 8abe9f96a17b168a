"""The validation gate: the constant predictor's loss, collapsed or piled-up scores, dead head units."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from alertlib.learn.checks import (
    constant_binary_loss,
    constant_multiclass_loss,
    dead_unit_fraction,
    gate,
    score_checks,
)


def test_constant_losses_are_the_minimum_over_constants():
    labels = np.array([1] * 30 + [0] * 70)
    pos_weight = 70 / 30
    grid = np.linspace(0.001, 0.999, 9999)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([pos_weight]))
    brute = min(
        float(bce(torch.full((100,), float(np.log(q / (1 - q)))), torch.tensor(labels, dtype=torch.float32)))
        for q in grid[::50]
    )
    assert constant_binary_loss(labels, pos_weight) == pytest.approx(brute, abs=1e-3)
    assert constant_binary_loss(labels, pos_weight) <= brute + 1e-9
    classes = np.array([0] * 10 + [1] * 30 + [2] * 60)
    weights = np.array([2.0, 1.0, 0.5])
    ce = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
    share = np.bincount(classes) * weights / (np.bincount(classes) * weights).sum()
    logits = torch.log(torch.tensor(share, dtype=torch.float32)).repeat(100, 1)
    assert constant_multiclass_loss(classes, weights) == pytest.approx(
        float(ce(logits, torch.tensor(classes))), abs=1e-5
    )


def test_score_checks_and_gate():
    rng = np.random.default_rng(0)
    healthy = score_checks(rng.uniform(0, 1, 200))
    assert (
        healthy["val_score_spread"] > 0.2 and healthy["val_identical_fraction"] < 0.05 and not healthy["val_one_sided"]
    )
    dead = score_checks(np.r_[np.full(150, 0.554), rng.uniform(0.5, 0.6, 50)])  # a dead head: sigmoid of the bias
    assert dead["val_identical_fraction"] == pytest.approx(0.75) and dead["val_one_sided"] == 1.0
    assert gate(0.60, 0.65, healthy)["gate_passed"] == 1.0
    assert gate(0.66, 0.65, healthy)["gate_passed"] == 0.0  # no better than a constant
    assert gate(0.60, 0.65, dead)["gate_passed"] == 0.0  # piled-up scores
    collapsed = score_checks(0.5 + rng.normal(0, 0.002, 200))
    assert gate(0.60, 0.65, collapsed)["gate_passed"] == 0.0


def test_dead_units_of_a_head_are_counted():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 1))

        def forward(self, x):
            return self.head(x)

    model = Model()
    with torch.no_grad():
        model.head[0].weight.zero_()
        model.head[0].bias.copy_(torch.tensor([1.0, 1.0, -1.0, -1.0, -1.0, 1.0]))  # three units never fire
    assert dead_unit_fraction(model, torch.randn(50, 4)) == pytest.approx(0.5)


def test_multiclass_score_checks():
    rng = np.random.default_rng(1)
    healthy = rng.dirichlet(np.ones(4), 100)
    checks = score_checks(healthy)
    assert checks["val_score_spread"] > 0.1 and checks["val_identical_fraction"] == 0.01 and not checks["val_one_sided"]
    stuck = np.tile([0.7, 0.1, 0.1, 0.1], (100, 1))
    checks = score_checks(stuck)
    assert checks["val_score_spread"] < 1e-12 and checks["val_identical_fraction"] == 1.0 and checks["val_one_sided"]


@pytest.mark.slow
def test_the_custom_cnn_baseline_trains_with_a_live_head(tmp_path, monkeypatch):
    """The BTSbot CNN on the ci sky: with its initialisation (He weights, zero biases) the head stays
    alive and the run passes the gate; with PyTorch's default initialisation more of its units die."""
    from alertlib.learn import models
    from alertlib.learn.datasets import load_bts
    from alertlib.learn.finetune import fit_and_evaluate, full_config
    from alertlib.sky.simulate import cached_sky

    monkeypatch.setenv("ALERTLIB_DATA", str(tmp_path))
    sky = cached_sky("alerts", 160, 0, progress=False, max_alerts=8, n_max=100, class_mix="bts")
    config = full_config(
        {
            "data": str(sky),
            "arch": "btsbot_cnn",
            "crop": 33,
            "epochs": 6,
            "warmup_epochs": 1,
            "lr": 1e-3,
            "progress": False,
        }
    )
    splits = load_bts(config["data"], None, 100, 1.0, 0)
    values = fit_and_evaluate(config, splits).values
    assert values["gate_passed"] == 1.0, values
    assert values["val_score_spread"] >= 0.01 and values["val_identical_fraction"] <= 0.2
    monkeypatch.setattr(models, "relu_initialise", lambda module: module)
    default = fit_and_evaluate(config, splits).values
    assert default["dead_unit_fraction"] > values["dead_unit_fraction"]
