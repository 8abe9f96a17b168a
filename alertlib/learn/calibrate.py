"""Calibrate a fine-tuned model: its temperature fitted on its validation split (:mod:`alertlib.learn.calibration`).

:func:`fit_on_validation` is the step after fine-tuning (:func:`alertlib.learn.finetune.run_finetune`):
``T`` on the validation split, and the ECE and NLL before and after on the validation and test
splits. :func:`calibrate_run` does the same for a finished run folder that has no temperature yet (a
post-hoc step: it writes ``temperature`` into ``model.pt`` and ``calibration.json`` beside it, and
skips runs already done).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.learn.calibration import CALIBRATION_FILE, FITTED, Calibration, Temperature, calibration_of

__all__ = ["CALIBRATION_FILE", "calibrate_run", "fit_on_validation", "validation_logits"]


def validation_logits(model, config: dict, val_split, class_names) -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) of a run's validation split, with fine-tuning's own labels and preprocessing."""
    from alertlib.learn.finetune import _dataset, _labels
    from alertlib.learn.training import predict_logits

    labels = _labels(val_split, config, class_names)
    return predict_logits(model, _dataset(config, val_split, labels, False)), labels


def fit_on_validation(
    model, config: dict, val_split, class_names, predictions: pd.DataFrame, temperature: Temperature | None = None
) -> Calibration:
    """The temperature of a fine-tuned model, fitted on its validation split, with its ECE and NLL.

    ``val_split`` is the run's validation :class:`~alertlib.io.release.Split` (whole, as
    :func:`alertlib.learn.datasets.load_bts` returns it); ``predictions`` its test predictions
    (``predictions_test.parquet``, uncalibrated). A given ``temperature`` is measured, not refitted.
    """
    logits, labels = validation_logits(model, config, val_split, class_names)
    return calibration_of(logits, labels, predictions, class_names, temperature)


def calibrate_run(run_dir: str | Path, data: str | Path | None = None) -> dict:
    """Fit and store the temperature of a finished fine-tuning run that has none (the post-hoc step).

    Loads ``model.pt``, predicts its validation split (from ``data``, else the folder its config
    names), fits ``T``, writes it into ``model.pt`` and writes ``calibration.json``. A run with
    ``calibration.json`` is read back; a ``model.pt`` that already holds a temperature keeps it
    (only the numbers are measured). Returns the content of ``calibration.json``.
    """
    import torch

    from alertlib.core.files import atomic_path, write_json
    from alertlib.io.release import read_split
    from alertlib.learn.inference import load_model

    run_dir = Path(run_dir)
    summary = run_dir / CALIBRATION_FILE
    if summary.is_file():
        return json.loads(summary.read_text())
    checkpoint = run_dir / "model.pt"
    model = load_model(checkpoint)
    val = read_split(data or model.config["data"], "val", model.config.get("version"))
    predictions = pd.read_parquet(run_dir / "predictions_test.parquet")
    record = torch.load(checkpoint, map_location="cpu", weights_only=False)
    stored = (
        Temperature(record["temperature"], record.get("temperature_status", FITTED))
        if "temperature" in record
        else None
    )
    calibration = fit_on_validation(model, model.config, val, model.class_names, predictions, stored)
    if stored is None:
        record.update(calibration.checkpoint_fields())
        with atomic_path(checkpoint) as tmp:
            torch.save(record, tmp)
    write_json(summary, calibration.record())
    return calibration.record()
