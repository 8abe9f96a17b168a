"""Attribution per channel: fractions sum to one, and a model that reads only the difference image
gets all of its attribution there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from alertlib.learn import attribution


class DifferenceOnly(nn.Module):
    """A tiny classifier that reads only channel 2 (the difference stamp)."""

    def __init__(self, outputs: int = 1):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, outputs)

    def forward(self, images):
        features = torch.relu(self.conv(images[:, 2:3])).mean(dim=(2, 3))
        return self.head(features)


def _images(n: int = 8, side: int = 17) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 3, side, side)).astype(np.float32)


def test_fractions_sum_to_one_per_alert():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    maps = attribution.integrated_gradients(model, _images(), target=np.arange(8) % 3, n_steps=8)
    fractions = attribution.channel_fractions(maps)
    assert maps.shape == (8, 3, 17, 17) and fractions.shape == (8, 3)
    assert np.allclose(fractions.sum(axis=1), 1.0) and (fractions >= 0).all()


@pytest.mark.parametrize("outputs", [1, 3])
def test_a_model_that_reads_only_the_difference_gets_all_attribution_there(outputs):
    target = None if outputs == 1 else np.zeros(8, dtype=int)
    maps = attribution.integrated_gradients(DifferenceOnly(outputs), _images(), target=target)
    fractions = attribution.channel_fractions(maps)
    assert (fractions[:, 2] > 0.99).all(), fractions


def test_pick_examples_takes_correct_and_wrong_alerts_of_each_class():
    classes = np.array(["sn"] * 5 + ["varstar"] * 4)
    correct = np.array([True, True, True, False, False, True, True, True, True])
    picked = attribution.pick_examples(classes, correct, per_group=2, seed=1)
    assert list(classes[picked]) == ["sn"] * 4 + ["varstar"] * 2
    assert list(correct[picked]) == [True, True, False, False, True, True]


def test_explain_alerts_with_a_fine_tuned_model(tmp_path):
    from alertlib.learn.finetune import full_config, save_model
    from alertlib.learn.inference import load_model
    from alertlib.learn.models import create_model

    model = create_model("btsbot_cnn", "scratch", num_outputs=1, input_size=33)
    config = full_config({"data": str(tmp_path), "arch": "btsbot_cnn", "crop": 33, "seed": 0})
    save_model(tmp_path / "model.pt", model, config, {"run_id": "t", "class_names": None, "pretrain_provenance": {}})
    triplets = np.random.default_rng(2).normal(size=(12, 63, 63, 3)).astype(np.float32)
    candidates = pd.DataFrame(
        {"objectId": [f"ZTF{i}" for i in range(12)], "candid": range(12), "label": [0, 1, -1] * 4, "alert_class": "sn"}
    )
    found = attribution.explain_alerts(load_model(tmp_path / "model.pt"), triplets, candidates, per_group=3, n_steps=4)
    assert len(found.table) == len(found.images) == len(found.attributions) <= 6
    assert found.images.shape[1:] == (3, 33, 33) and (found.table["label"] >= 0).all()
    assert np.allclose(found.table[list(attribution.FRACTION_COLUMNS)].sum(axis=1), 1.0)
