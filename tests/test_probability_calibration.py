"""Calibrated scores: temperature scaling on the validation split, calibration error, reliability bins,
and the temperature carried by the checkpoint into scoring (torch and ONNX)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_training import FAST, make_alerts  # tests/ is on sys.path under pytest

from alertlib.learn import calibration
from alertlib.learn.calibrate import calibrate_run


def _binary_logits(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels are drawn from sigmoid(logit / temperature): ``temperature`` is the true one."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, size=n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logits / temperature))).astype(int)
    return logits, labels


def _multiclass_logits(n: int, k: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, size=(n, k))
    probs = torch.softmax(torch.from_numpy(logits / temperature), dim=1).numpy()
    labels = np.array([rng.choice(k, p=p) for p in probs])
    return logits, labels


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_the_fit_recovers_a_known_temperature(true_temperature):
    logits, labels = _binary_logits(20000, true_temperature)
    fitted = calibration.fit_temperature(logits, labels)
    assert fitted.status == calibration.FITTED
    assert fitted.value == pytest.approx(true_temperature, rel=0.08)
    logits, labels = _multiclass_logits(8000, 4, true_temperature, seed=1)
    assert calibration.fit_temperature(logits, labels).value == pytest.approx(true_temperature, rel=0.08)


def test_the_fit_lowers_the_nll_and_degenerate_splits_keep_t_1_with_a_reason():
    logits, labels = _binary_logits(2000, 3.0)
    fitted = calibration.fit_temperature(logits, labels)
    assert calibration.negative_log_likelihood(logits, labels, fitted.value) < calibration.negative_log_likelihood(
        logits, labels
    )
    for bad_logits, bad_labels, reason in (
        (np.zeros(0), np.zeros(0, int), "no validation alerts"),
        (logits, np.zeros_like(labels), "one class"),
        (np.where(np.arange(len(logits)) == 3, np.inf, logits), labels, "non-finite"),
        (-logits * 50, labels, "ran off"),  # anti-correlated logits: the NLL falls as T grows without bound
    ):
        result = calibration.fit_temperature(bad_logits, bad_labels)
        assert result.value == 1.0 and result.status == calibration.UNCALIBRATED and reason in result.reason


def test_ece_agrees_with_torchmetrics_and_the_reliability_bins_give_it():
    from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

    logits, labels = _binary_logits(3000, 2.0, seed=4)
    scores = calibration.probabilities(logits)
    scores[:5] = 1.0  # confidences of exactly 1 fall in torchmetrics' extra bin
    expected = float(binary_calibration_error(torch.from_numpy(scores), torch.from_numpy(labels), n_bins=15))
    assert calibration.expected_calibration_error(scores, labels) == pytest.approx(expected, abs=1e-9)
    bins = calibration.reliability_bins(scores, labels)
    assert calibration.ece_of_bins(bins) == pytest.approx(expected, abs=1e-9)
    assert bins["alerts"].sum() == len(scores) and bins["weight"].sum() == pytest.approx(1.0)
    filled = bins[bins["alerts"] > 0]
    assert ((filled["confidence"] >= filled["low"]) & (filled["confidence"] <= filled["high"])).all()
    assert bins["alerts"].iloc[-1] == 5 and bins["observed"].between(0, 1).all() | bins["observed"].isna().all()
    logits, labels = _multiclass_logits(2000, 5, 0.5, seed=2)
    probs = calibration.probabilities(logits)
    expected = float(
        multiclass_calibration_error(torch.from_numpy(probs), torch.from_numpy(labels), num_classes=5, n_bins=15)
    )
    assert calibration.expected_calibration_error(probs, labels) == pytest.approx(expected, abs=1e-9)
    # torchmetrics takes the multi-class confidences in float32
    assert calibration.ece_of_bins(calibration.reliability_bins(probs, labels)) == pytest.approx(expected, abs=1e-6)


def test_scaling_recovered_scores_matches_scaling_the_logits_and_lowers_the_ece():
    logits, labels = _binary_logits(5000, 0.4, seed=3)
    fitted = calibration.fit_temperature(logits, labels)
    scores = calibration.probabilities(logits).astype(np.float32)  # as predictions_test.parquet keeps them
    rescaled = calibration.rescale_scores(scores, fitted.value)
    assert np.abs(rescaled - calibration.probabilities(logits, fitted.value)).max() < 1e-4
    before = calibration.expected_calibration_error(scores, labels)
    assert calibration.expected_calibration_error(rescaled, labels) < before / 2
    logits, labels = _multiclass_logits(3000, 3, 2.0, seed=5)
    probs = calibration.probabilities(logits)
    assert np.abs(calibration.rescale_scores(probs, 2.0) - calibration.probabilities(logits, 2.0)).max() < 1e-6


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny fine-tuning run (the same one twice: one left as run_finetune wrote it, one to strip)."""
    from alertlib.learn.finetune import run_finetune

    root = tmp_path_factory.mktemp("calibrated")
    data = make_alerts(root / "alerts", n_sources=30)
    config = {"data": str(data), "arch": "braai_vgg", "epochs": 1, **FAST}
    run_finetune(config, root / "run")
    return root / "run", data


def test_run_finetune_stores_the_temperature_and_load_model_reads_it(finished_run):
    from alertlib.learn.inference import load_model

    run_dir, _ = finished_run
    record = json.loads((run_dir / calibration.CALIBRATION_FILE).read_text())
    model = load_model(run_dir / "model.pt")
    assert model.temperature == pytest.approx(record["value"]) and model.temperature > 0
    assert model.temperature_status == record["status"]
    for key in ("val_ece_before", "val_ece_after", "test_ece_before", "test_ece_after", "val_nll_after"):
        assert np.isfinite(record[key]), key
    if record["status"] == calibration.FITTED:
        assert record["val_nll_after"] <= record["val_nll_before"] + 1e-9


def test_an_old_checkpoint_loads_uncalibrated_and_the_post_hoc_step_calibrates_it_once(finished_run, tmp_path):
    import shutil

    from alertlib.learn.inference import load_model

    run_dir, data = finished_run
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    (old / calibration.CALIBRATION_FILE).unlink()
    record = torch.load(old / "model.pt", weights_only=False)
    for key in ("temperature", "temperature_status", "temperature_reason"):
        record.pop(key)
    torch.save(record, old / "model.pt")
    model = load_model(old / "model.pt")
    assert model.temperature == 1.0 and model.temperature_status == "uncalibrated"
    done = calibrate_run(old, data)
    reference = json.loads((run_dir / calibration.CALIBRATION_FILE).read_text())
    assert done["value"] == pytest.approx(reference["value"], rel=1e-5)  # one code path
    assert load_model(old / "model.pt").temperature == pytest.approx(reference["value"], rel=1e-5)
    mtime = (old / "model.pt").stat().st_mtime_ns
    assert calibrate_run(old, data) == done and (old / "model.pt").stat().st_mtime_ns == mtime


def _checkpoint(folder, class_names, temperature: float):
    from alertlib.learn.finetune import full_config, save_model
    from alertlib.learn.models import create_model

    torch.manual_seed(0)
    model = create_model("btsbot_cnn", "scratch", num_outputs=len(class_names) if class_names else 1, input_size=33)
    config = full_config({"data": str(folder), "arch": "btsbot_cnn", "crop": 33, "seed": 0})
    extra = {"run_id": "t", "class_names": class_names, "pretrain_provenance": {}}
    extra |= {"temperature": temperature, "temperature_status": "fitted", "temperature_reason": ""}
    save_model(folder / "model.pt", model, config, extra)
    return folder / "model.pt"


@pytest.mark.parametrize("class_names", [None, ["agn", "sn", "varstar"]])
def test_scoring_applies_the_temperature_and_onnx_agrees(tmp_path, class_names):
    from alertlib.learn.export import export_onnx, load_onnx, score_onnx
    from alertlib.learn.inference import load_model, score_triplets, scores_from_logits, triplet_batches

    triplets = np.random.default_rng(0).normal(size=(9, 63, 63, 3)).astype(np.float32)
    triplets /= np.sqrt((triplets**2).sum(axis=(1, 2), keepdims=True))
    checkpoint = _checkpoint(tmp_path, class_names, temperature=0.25)
    model = load_model(checkpoint)
    scores = score_triplets(model, triplets, dtype="float32", variant="eager")
    with torch.inference_mode():
        logits = model(torch.from_numpy(next(triplet_batches(triplets, model.config, 9))))
    assert np.abs(scores - scores_from_logits(logits / 0.25, class_names)).max() < 1e-6
    assert np.abs(scores - scores_from_logits(logits, class_names)).max() > 1e-3  # T = 0.25 changed them
    onnx_model = load_onnx(export_onnx(checkpoint, tmp_path / "model.onnx"))
    assert onnx_model.temperature == 0.25 and onnx_model.metadata["temperature_status"] == "fitted"
    assert np.abs(score_onnx(onnx_model, triplets) - scores).max() <= 1e-4


def test_calibration_numbers_of_a_predictions_table():
    logits, labels = _binary_logits(400, 2.0, seed=8)
    predictions = pd.DataFrame({"label": labels, "score": calibration.probabilities(logits).astype(np.float32)})
    result = calibration.calibration_of(logits, labels, predictions, None)
    record = result.record()
    assert record["status"] == calibration.FITTED and record["n_bins"] == calibration.N_BINS
    assert record["val_ece_before"] == pytest.approx(record["test_ece_before"], abs=1e-5)
    assert record["test_ece_after"] == pytest.approx(record["val_ece_after"], abs=1e-4)


def test_the_report_table_and_reliability_curves_of_a_study():
    from alertlib.report import reliability

    rows, predictions = [], []
    for seed, temperature in ((0, 2.0), (1, 3.0)):
        logits, labels = _binary_logits(600, temperature, seed=seed)
        run_id = f"run{seed}"
        scores = calibration.probabilities(logits).astype(np.float32)
        predictions.append(pd.DataFrame({"run_id": run_id, "label": labels, "score": scores}))
        record = calibration.calibration_of(logits, labels, predictions[-1], None).record()
        rows.append({"run_id": run_id, "task": "bts", "arch": "btsbot_cnn", "init": "scratch", "seed": seed} | record)
    table = pd.DataFrame(rows).assign(train_fraction=1.0, lr_selected=True)
    summary = reliability.calibration_table(table)
    assert len(summary) == 1 and summary["replicates"].iloc[0] == 2 and summary["fitted"].iloc[0] == 2
    assert summary["test_ece_after"].iloc[0] < summary["test_ece_before"].iloc[0]
    curves = reliability.reliability_curves(pd.concat(predictions), table)
    assert set(curves["when"]) == {"before", "after"}
    assert curves.groupby("when")["alerts"].sum().eq(1200).all()
    reliability.plot_reliability_diagrams(curves)
