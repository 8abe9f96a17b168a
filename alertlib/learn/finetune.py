"""Fine-tune one model on alert triplets (BTS release layout) and evaluate it on the test split.

``run_finetune(config, out_dir)`` (Python) and ``alertlib finetune ...`` (command line) run one job.
The job writes into ``out_dir``:

- ``results.parquet``: the tidy results table (:mod:`alertlib.learn.results`), one row per metric;
- ``model.pt``: the fine-tuned model (weights, config, provenance; :func:`alertlib.learn.inference.load_model`
  rebuilds it, :func:`alertlib.learn.inference.score_triplets` scores alerts with it);
- ``predictions_test.parquet``: ``objectId``, ``candid``, ``label``, ``score`` per test alert
  (multi-class: also ``prob_<class>`` and ``predicted``);
- ``curves.csv``: per-epoch training and validation loss, learning rate, training time;
- ``calibration.json``: the temperature fitted on the validation split (also in ``model.pt``, applied
  by scoring) and the ECE and NLL before and after it (:mod:`alertlib.learn.calibration`).

A finished job is skipped: when ``results.parquet`` exists with the same ``run_id`` (a hash of the
config), it is read and returned. Every file is written atomically, results last.

The steps, each a function: :func:`task_setup` (labels, objective, loss and the constant
predictor's validation loss), :func:`train` (the model and :func:`alertlib.learn.training.fit`),
:func:`evaluate` (test predictions and metrics), :func:`validation_gate` (the checks of
:mod:`alertlib.learn.checks` on the validation split); :func:`fit_and_evaluate` runs them on splits
in memory (the few-shot experiments call it directly), :func:`run_finetune` reads the data and
writes the files.

Config keys (a plain dict; defaults in :data:`FINETUNE_DEFAULTS` and
:data:`alertlib.learn.training.TRAINING_DEFAULTS`):

``data``
    Folder in the BTS release layout (required). ``version``: its dataset version (None: the only one).
``task``
    ``bts`` (binary, ``label`` column) or ``multiclass`` (classes from ``label_column``).
``arch``, ``init``, ``checkpoint``, ``weights_file``, ``input_size``
    Passed to :func:`alertlib.learn.models.create_model`. An ``arch`` ending in ``+meta`` (or
    ``+meta-frozen``) is an image + metadata model (:mod:`alertlib.learn.multimodal`): it reads the
    candidate features (:mod:`alertlib.io.features`) too, standardised with the training split's
    statistics (saved in ``model.pt`` with the feature names).
``seed``, ``train_fraction``, ``n_max``
    Seed of everything; fraction of training sources; at most ``n_max`` alerts per training source.
``augment``, ``normalisation``
    BTSbot augmentations on the training split; input normalisation (``l2``, as the authors).
``crop``
    Side of a centred crop of every stamp (None: the whole 63x63 stamp); the model's input size
    follows it unless ``input_size`` is given. CPU profiles crop to trade context for speed.
``epochs``, ``batch_size``, ``lr``, ``patience``, ``channels_last``, ``compile``, ``progress`` ...
    Training settings (:mod:`alertlib.learn.training`); ``lr`` None picks the rate for the initialisation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.errors import DataError, SettingError
from alertlib.learn.results import NOT_IN_RUN_ID, begin_run, data_version

FINETUNE_DEFAULTS = {
    "data": None,
    "version": None,
    "task": "bts",
    "label_column": "source_set",
    "arch": "btsbot_cnn",
    "init": "scratch",
    "checkpoint": None,
    "weights_file": None,
    "input_size": None,
    "seed": 0,
    "train_fraction": 1.0,
    "n_max": 100,
    "augment": True,
    "normalisation": "l2",
    "crop": None,
}
TASKS = ("bts", "multiclass")


def full_config(config: dict) -> dict:
    """The config with every default filled in (training defaults included)."""
    from alertlib.learn.training import TRAINING_DEFAULTS

    unknown = sorted(set(config) - set(FINETUNE_DEFAULTS) - set(TRAINING_DEFAULTS))
    if unknown:
        raise SettingError(f"unknown fine-tuning config keys {unknown}; see alertlib.learn.finetune's docstring")
    merged = {**FINETUNE_DEFAULTS, **TRAINING_DEFAULTS, **config}
    if merged["data"] is None:
        raise SettingError("config['data'] must name a folder in the BTS release layout")
    if merged["task"] not in TASKS:
        raise SettingError(f"task must be one of {TASKS}, not {merged['task']!r}")
    for key in ("data", "checkpoint", "weights_file"):
        if merged[key] is not None:
            merged[key] = str(Path(merged[key]).resolve())
    return merged


@dataclass
class TaskSetup:
    """What a task makes of the splits: labels per split, classes, objective, loss, and the best
    constant prediction's validation loss (the gate's reference)."""

    labels: dict[str, np.ndarray]
    class_names: list[str] | None
    objective: str
    num_outputs: int
    loss: object
    constant_val_loss: float


@dataclass
class Outcome:
    """A fine-tuned model with its training history, test predictions and metric values."""

    model: object
    fit: object  # alertlib.learn.training.FitResult
    predictions: pd.DataFrame
    values: dict[str, float]
    class_names: list[str] | None


def _class_names(splits: dict, column: str) -> list[str]:
    for split in splits.values():
        if column not in split.candidates.columns:
            raise DataError(f"multiclass task needs column {column!r} in the candidate tables of {split.path}")
    values = pd.concat([s.candidates[column] for s in splits.values()]).astype(str)
    return sorted(values.unique())


def _labels(split, config: dict, class_names: list[str] | None) -> np.ndarray:
    if config["task"] == "bts":
        return split.candidates["label"].to_numpy().astype(int)
    index = {name: i for i, name in enumerate(class_names)}
    return split.candidates[config["label_column"]].astype(str).map(index).to_numpy()


def task_setup(config: dict, splits: dict) -> TaskSetup:
    """Labels, objective and loss of the configured task (weights from the training split)."""
    from alertlib.learn.checks import constant_binary_loss, constant_multiclass_loss
    from alertlib.learn.training import balanced_class_weights, binary_pos_weight, make_loss

    class_names = _class_names(splits, config["label_column"]) if config["task"] == "multiclass" else None
    labels = {name: _labels(split, config, class_names) for name, split in splits.items()}
    if config["task"] == "bts":
        pos_weight = binary_pos_weight(labels["train"])
        loss = make_loss("binary", pos_weight=pos_weight)
        constant = constant_binary_loss(labels["val"], pos_weight)
        return TaskSetup(labels, None, "binary", 1, loss, constant)
    weights = balanced_class_weights(labels["train"], len(class_names))
    loss = make_loss("multiclass", class_weights=weights)
    constant = constant_multiclass_loss(labels["val"], weights)
    return TaskSetup(labels, class_names, "multiclass", len(class_names), loss, constant)


def split_features(config: dict, split) -> np.ndarray | None:
    """The candidate features of a split's alerts for an image + metadata model, else None."""
    from alertlib.core.vocab import multimodal_mode
    from alertlib.io.features import feature_matrix

    if multimodal_mode(config["arch"]) is None:
        return None
    return feature_matrix(split.candidates, where=f"the candidate table of {split.path} (version {split.version})")


def _dataset(config: dict, split, labels, augment: bool):
    from alertlib.learn.datasets import TripletDataset

    return TripletDataset(
        split.triplets,
        labels,
        augment=augment,
        seed=config["seed"],
        normalisation=config["normalisation"],
        crop=config["crop"],
        features=split_features(config, split),
    )


def train(config: dict, splits: dict, setup: TaskSetup):
    """Create the model of the config (seeded) and fine-tune it; returns (model, FitResult)."""
    from lightning.pytorch import seed_everything

    from alertlib.learn.models import create_model
    from alertlib.learn.training import fit

    seed_everything(config["seed"], verbose=False)
    model = create_model(
        config["arch"],
        config["init"],
        num_outputs=setup.num_outputs,
        input_size=config["input_size"] or config["crop"],
        weights_file=config["weights_file"],
        checkpoint=config["checkpoint"],
    )
    train_features = split_features(config, splits["train"])
    if train_features is not None:
        from alertlib.io.features import normalisation_stats

        model.set_feature_normalisation(*normalisation_stats(train_features))  # training split only
    result = fit(
        model,
        _dataset(config, splits["train"], setup.labels["train"], config["augment"]),
        _dataset(config, splits["val"], setup.labels["val"], False),
        setup.objective,
        config,
        loss=setup.loss,
        description=f"finetune {config['arch']}/{config['init']}",
    )
    return model, result


def _probabilities(model, dataset, objective: str) -> np.ndarray:
    """Scores of class 1 (N,) for a binary model, class probabilities (N, K) for a multi-class one."""
    import torch

    from alertlib.learn.training import predict_logits

    logits = torch.from_numpy(predict_logits(model, dataset))
    if objective == "binary":
        return torch.sigmoid(logits[:, 0]).numpy()
    return torch.softmax(logits, dim=1).numpy()


def evaluate(model, config: dict, split, labels: np.ndarray, setup: TaskSetup) -> tuple[pd.DataFrame, dict]:
    """Predictions on one split (usually test) and its metrics (alert level; source level for BTS)."""
    from alertlib.learn import metrics

    scores = _probabilities(model, _dataset(config, split, labels, False), setup.objective)
    candidates = split.candidates
    predictions = pd.DataFrame(
        {"objectId": candidates["objectId"].to_numpy(), "candid": candidates["candid"].to_numpy(), "label": labels}
    )
    if setup.objective == "binary":
        predictions["score"] = scores
        values = metrics.binary_metrics(labels, scores)
        if metrics.has_policy_columns(candidates):
            values.update(metrics.policy_metrics(candidates.assign(label=labels), scores))
        return predictions, values
    predictions["score"] = scores.max(axis=1)
    predictions["predicted"] = scores.argmax(axis=1)
    for index, name in enumerate(setup.class_names):
        predictions[f"prob_{name}"] = scores[:, index]
    return predictions, metrics.multiclass_metrics(labels, scores, setup.class_names)


def validation_gate(model, config: dict, splits: dict, setup: TaskSetup, best_val_loss: float) -> dict[str, float]:
    """The checks of :mod:`alertlib.learn.checks` on the validation split: did the run learn?"""
    from torch.utils.data import default_collate

    from alertlib.learn import checks

    dataset = _dataset(config, splits["val"], setup.labels["val"], False)
    scores = _probabilities(model, dataset, setup.objective)
    values = checks.score_checks(scores)
    values.update(checks.gate(best_val_loss, setup.constant_val_loss, values))
    inputs = default_collate([dataset[i][0] for i in range(len(dataset))]) if len(dataset) else None
    values["dead_unit_fraction"] = checks.dead_unit_fraction(model, inputs) if len(dataset) else np.nan
    return values


def fit_and_evaluate(config: dict, splits: dict, gate: bool = True) -> Outcome:
    """Fine-tune on ``splits["train"]`` (selecting on ``splits["val"]``) and evaluate on ``splits["test"]``.

    ``splits`` are :class:`alertlib.io.release.Split` objects (in memory or memory-mapped);
    ``config`` is a full config (:func:`full_config`). ``gate=False`` skips the validation gate
    (e.g. when the validation split is the training split, as in few-shot runs).
    """
    setup = task_setup(config, splits)
    model, result = train(config, splits, setup)
    predictions, values = evaluate(result.model, config, splits["test"], setup.labels["test"], setup)
    if gate:
        values.update(validation_gate(result.model, config, splits, setup, result.best_val_loss))
    history = result.history
    train_time = float(history["train_time_s"].sum()) if len(history) else float("nan")
    values.update(
        {
            "best_val_loss": result.best_val_loss,
            "best_epoch": result.best_epoch,
            "epochs_trained": len(history),
            "train_alerts": len(setup.labels["train"]),
            "test_alerts": len(setup.labels["test"]),
            "train_alerts_per_s": float(history["train_samples"].sum()) / train_time if train_time > 0 else np.nan,
            "learning_rate": result.settings["lr"],  # the rate used (config lr None: by initialisation)
        }
    )
    return Outcome(result.model, result, predictions, values, setup.class_names)


def save_model(path: Path, model, config: dict, extra: dict) -> None:
    """The fine-tuned model with everything needed to rebuild it (atomically)."""
    import torch

    from alertlib.core.files import atomic_path

    record = {
        "kind": "alertlib-model",
        "arch": model.arch,
        "init": model.init,
        "input_size": model.input_size,
        "weights_source": model.weights_source,
        "feature_names": list(getattr(model, "feature_names", [])) or None,  # an image + metadata model's inputs
        "config": config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(record, tmp)


def run_finetune(config: dict, out_dir: str | Path) -> pd.DataFrame:
    """Fine-tune and evaluate one model; return (and write) its tidy results table.

    See the module docstring for the config keys and the files written. Skips the job (returning
    the stored table) when ``out_dir/results.parquet`` already holds this run.
    """
    config, out_dir, run_id, done = begin_run(config, out_dir, full_config)
    if done is not None:
        return done

    from alertlib.core.files import write_json, write_table
    from alertlib.learn.calibrate import CALIBRATION_FILE, fit_on_validation
    from alertlib.learn.datasets import load_bts
    from alertlib.learn.results import result_rows, save_results

    start = time.perf_counter()
    splits = load_bts(config["data"], config["version"], config["n_max"], config["train_fraction"], config["seed"])
    outcome = fit_and_evaluate(config, splits)
    recorded = {k: v for k, v in config.items() if k not in NOT_IN_RUN_ID}
    version = data_version(config["data"], splits["test"].version)
    table = result_rows(recorded, outcome.values, time.perf_counter() - start, outcome.model.weights_source, version)
    write_table(out_dir / "curves.csv", outcome.fit.history)
    write_table(out_dir / "predictions_test.parquet", outcome.predictions)
    # Temperature scaling on the validation split (alertlib.learn.calibration); the scores above stay uncalibrated.
    calibration = fit_on_validation(outcome.model, config, splits["val"], outcome.class_names, outcome.predictions)
    write_json(out_dir / CALIBRATION_FILE, calibration.record())
    save_model(
        out_dir / "model.pt",
        outcome.model,
        config,
        {
            "run_id": run_id,
            "class_names": outcome.class_names,
            "pretrain_provenance": outcome.model.pretrain_provenance,
            **calibration.checkpoint_fields(),
        },
    )
    save_results(out_dir / "results.parquet", table)
    return table
