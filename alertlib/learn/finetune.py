"""Fine-tune one model on alert triplets (BTS release layout) and evaluate it on the test split.

``run_finetune(config, out_dir)`` (Python) and ``alertlib finetune ...`` (command line) run one job.
The job writes into ``out_dir``:

- ``results.parquet``: the tidy results table (:mod:`alertlib.learn.results`), one row per metric;
- ``model.pt``: the fine-tuned model (weights, config, provenance; :func:`alertlib.learn.inference.load_model`
  rebuilds it, :func:`alertlib.learn.inference.score_triplets` scores alerts with it);
- ``predictions_test.parquet``: ``objectId``, ``candid``, ``label``, ``score`` per test alert
  (multi-class: also ``prob_<class>`` and ``predicted``);
- ``curves.csv``: per-epoch training and validation loss, learning rate, training time.

A finished job is skipped: when ``results.parquet`` exists with the same ``run_id`` (a hash of the
config), it is read and returned. Every file is written atomically, results last.

Config keys (a plain dict; defaults in :data:`FINETUNE_DEFAULTS` and
:data:`alertlib.learn.training.TRAINING_DEFAULTS`):

``data``
    Folder in the BTS release layout (required). ``version``: its dataset version (None: the only one).
``task``
    ``bts`` (binary, ``label`` column) or ``multiclass`` (classes from ``label_column``).
``arch``, ``init``, ``checkpoint``, ``weights_file``, ``input_size``
    Passed to :func:`alertlib.learn.models.create_model`.
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

import argparse
import hashlib
import json
import time
from pathlib import Path

import pandas as pd

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
# Keys that do not change the result and so do not enter the run id.
NOT_IN_RUN_ID = ("progress", "num_workers")


def full_config(config: dict) -> dict:
    """The config with every default filled in (training defaults included)."""
    from alertlib.learn.training import TRAINING_DEFAULTS

    unknown = sorted(set(config) - set(FINETUNE_DEFAULTS) - set(TRAINING_DEFAULTS))
    if unknown:
        raise KeyError(f"unknown fine-tuning config keys {unknown}; see alertlib.learn.finetune's docstring")
    merged = {**FINETUNE_DEFAULTS, **TRAINING_DEFAULTS, **config}
    if merged["data"] is None:
        raise ValueError("config['data'] must name a folder in the BTS release layout")
    if merged["task"] not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {merged['task']!r}")
    for key in ("data", "checkpoint", "weights_file"):
        if merged[key] is not None:
            merged[key] = str(Path(merged[key]).resolve())
    return merged


def config_run_id(config: dict) -> str:
    """The run id of a full config (settings that do not change results are left out)."""
    from alertlib.learn.results import run_id

    return run_id({k: v for k, v in config.items() if k not in NOT_IN_RUN_ID})


def data_version(folder: str | Path, version: str) -> str:
    """``<folder name>:<version>:<hash>``, the hash over the three candidate tables and triplet sizes."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for split in ("train", "val", "test"):
        digest.update((folder / f"{split}_cand_{version}.csv").read_bytes())
        digest.update(str((folder / f"{split}_triplets_{version}.npy").stat().st_size).encode())
    return f"{folder.name}:{version}:{digest.hexdigest()[:12]}"


def finished_results(out_dir: str | Path, run_id: str) -> pd.DataFrame | None:
    """The results table in ``out_dir`` if it belongs to ``run_id``; None otherwise."""
    path = Path(out_dir) / "results.parquet"
    if not path.is_file():
        return None
    table = pd.read_parquet(path)
    if len(table) and (table["run_id"] == run_id).all():
        return table
    return None


def begin_run(config: dict, out_dir: str | Path, complete) -> tuple[dict, Path, str, pd.DataFrame | None]:
    """Fill in a job's config (``complete``: its module's ``full_config``) and look for its finished results.

    Returns the full config, the output folder, the run id, and the stored results table when this
    run already finished there (the caller then returns it instead of running again), else None.
    """
    config = complete(config)
    fingerprint = data_fingerprint(config)
    if fingerprint is not None:
        # The data's content is part of the run: a regenerated sky under the same path is new data.
        config = {**config, "data_fingerprint": fingerprint}
    out_dir = Path(out_dir)
    run_id = config_run_id(config)
    return config, out_dir, run_id, finished_results(out_dir, run_id)


def data_fingerprint(config: dict) -> str | None:
    """The content hash of a simulated data set a job reads (``data`` or ``catalog``), from its ``dataset.json``.

    None for data without one (a real release, a Galaxy Zoo download, synthetic images): their
    paths and versions identify them.
    """
    import json

    for key in ("data", "catalog"):
        if not config.get(key):
            continue
        path = Path(config[key])
        metadata = (path if path.is_dir() else path.parent) / "dataset.json"
        if metadata.is_file():
            content = json.loads(metadata.read_text()).get("content_sha256")
            if content:
                return str(content)
    return None


def _class_names(splits: dict, column: str) -> list[str]:
    for split in splits.values():
        if column not in split.candidates.columns:
            raise KeyError(f"multiclass task needs column {column!r} in the candidate tables of {split.path}")
    values = pd.concat([s.candidates[column] for s in splits.values()]).astype(str)
    return sorted(values.unique())


def _labels(split, config: dict, class_names: list[str] | None):
    if config["task"] == "bts":
        return split.candidates["label"].to_numpy().astype(int)
    index = {name: i for i, name in enumerate(class_names)}
    return split.candidates[config["label_column"]].astype(str).map(index).to_numpy()


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

    import numpy as np
    import torch

    from alertlib.core.files import write_table
    from alertlib.core.provenance import seed_everything
    from alertlib.learn import metrics
    from alertlib.learn.datasets import TripletDataset, load_bts
    from alertlib.learn.models import create_model
    from alertlib.learn.results import result_rows, save_results
    from alertlib.learn.training import balanced_class_weights, binary_pos_weight, fit, make_loss, predict_logits

    start = time.perf_counter()
    splits = load_bts(config["data"], config["version"], config["n_max"], config["train_fraction"], config["seed"])
    version = splits["test"].version
    class_names = _class_names(splits, config["label_column"]) if config["task"] == "multiclass" else None
    labels = {name: _labels(split, config, class_names) for name, split in splits.items()}
    if config["task"] == "bts":
        objective, num_outputs = "binary", 1
        loss = make_loss("binary", pos_weight=binary_pos_weight(labels["train"]))
    else:
        objective, num_outputs = "multiclass", len(class_names)
        loss = make_loss("multiclass", class_weights=balanced_class_weights(labels["train"], num_outputs))

    def dataset(name: str, augment: bool) -> TripletDataset:
        return TripletDataset(
            splits[name].triplets,
            labels[name],
            augment=augment,
            seed=config["seed"],
            normalisation=config["normalisation"],
            crop=config["crop"],
        )

    seed_everything(config["seed"])
    model = create_model(
        config["arch"],
        config["init"],
        num_outputs=num_outputs,
        input_size=config["input_size"] or config["crop"],
        weights_file=config["weights_file"],
        checkpoint=config["checkpoint"],
    )
    result = fit(
        model,
        dataset("train", config["augment"]),
        dataset("val", False),
        objective,
        config,
        loss=loss,
        description=f"finetune {config['arch']}/{config['init']}",
    )
    logits = predict_logits(result.model, dataset("test", False))
    test = splits["test"].candidates
    predictions = pd.DataFrame(
        {"objectId": test["objectId"].to_numpy(), "candid": test["candid"].to_numpy(), "label": labels["test"]}
    )
    if objective == "binary":
        scores = torch.sigmoid(torch.from_numpy(logits[:, 0])).numpy()
        predictions["score"] = scores
        values = metrics.binary_metrics(labels["test"], scores)
        if metrics.has_policy_columns(test):
            values.update(metrics.policy_metrics(test.assign(label=labels["test"]), scores))
    else:
        probabilities = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
        predictions["score"] = probabilities.max(axis=1)
        predictions["predicted"] = probabilities.argmax(axis=1)
        for index, name in enumerate(class_names):
            predictions[f"prob_{name}"] = probabilities[:, index]
        values = metrics.multiclass_metrics(labels["test"], probabilities, class_names)

    history = result.history
    train_time = float(history["train_time_s"].sum()) if len(history) else float("nan")
    values.update(
        {
            "best_val_loss": result.best_val_loss,
            "best_epoch": result.best_epoch,
            "epochs_trained": len(history),
            "train_alerts": len(labels["train"]),
            "test_alerts": len(labels["test"]),
            "train_alerts_per_s": float(history["train_samples"].sum()) / train_time if train_time > 0 else np.nan,
        }
    )
    wall_time = time.perf_counter() - start
    values["learning_rate"] = result.settings["lr"]  # the rate used (config lr None = by initialisation)
    recorded = {k: v for k, v in config.items() if k not in NOT_IN_RUN_ID}
    table = result_rows(recorded, values, wall_time, model.weights_source, data_version(config["data"], version))
    write_table(out_dir / "curves.csv", history)
    write_table(out_dir / "predictions_test.parquet", predictions)
    save_model(
        out_dir / "model.pt",
        result.model,
        config,
        {"run_id": run_id, "class_names": class_names, "pretrain_provenance": model.pretrain_provenance},
    )
    save_results(out_dir / "results.parquet", table)
    return table


# --- command line ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder in the BTS release layout")
    parser.add_argument("--version", default=None, help="dataset version (default: the only one)")
    parser.add_argument("--arch", default="btsbot_cnn", help="btsbot_cnn, braai_vgg, or any timm name")
    parser.add_argument(
        "--init",
        default="scratch",
        help="scratch | imagenet | galaxyzoo | synthetic | galaxy_sim | ... (with --checkpoint)",
    )
    parser.add_argument("--checkpoint", default=None, help="encoder checkpoint from `alertlib pretrain`")
    parser.add_argument("--weights-file", default=None, help="local ImageNet/Zoobot weight file")
    parser.add_argument("--task", default="bts", choices=TASKS)
    parser.add_argument("--label-column", default="source_set", help="class column for --task multiclass")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None, help="default: by initialisation (alertlib.learn.training)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-fraction", type=float, default=1.0)
    parser.add_argument("--n-max", type=int, default=100, help="at most this many alerts per training source")
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--config", default=None, help="a JSON file of config keys (command-line flags win)")
    parser.add_argument("--out", required=True, help="output folder (results.parquet, model.pt, ...)")


def config_from_args(args: argparse.Namespace) -> dict:
    """The config dict of a parsed command line."""
    config = json.loads(Path(args.config).read_text()) if args.config else {}
    config.update(
        data=args.data,
        version=args.version,
        arch=args.arch,
        init=args.init,
        checkpoint=args.checkpoint,
        weights_file=args.weights_file,
        task=args.task,
        label_column=args.label_column,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        train_fraction=args.train_fraction,
        n_max=args.n_max,
        input_size=args.input_size,
        channels_last=args.channels_last,
        compile=args.compile,
    )
    return config


def run(args: argparse.Namespace) -> int:
    table = run_finetune(config_from_args(args), args.out)
    headline = table[table["metric"].isin(["roc_auc", "balanced_accuracy", "f1", "macro_f1", "epochs_trained"])]
    print(headline[["arch", "init", "metric", "value"]].to_string(index=False))
    print(f"results: {Path(args.out) / 'results.parquet'}")
    return 0
