"""Pre-train an encoder (on galaxies or on the synthetic corpus) and save it for the model factory.

``run_pretrain(config, out_dir)`` (Python) and ``alertlib pretrain ...`` (command line) run one job.
The job writes into ``out_dir``:

- ``encoder.pt``: the encoder checkpoint (:func:`alertlib.learn.models.save_encoder_checkpoint`), carrying
  its provenance; fine-tune from it with ``init=<pretrain_init>, checkpoint=out_dir/encoder.pt``;
- ``results.parquet``: the tidy results table (validation loss, accuracy or vote-fraction error);
- ``curves.csv``: per-epoch training and validation loss.

A finished job (``results.parquet`` with the same ``run_id``) is skipped and its table returned.

Config keys (a plain dict; defaults in :data:`PRETRAIN_DEFAULTS` and
:data:`alertlib.learn.training.TRAINING_DEFAULTS`):

``corpus``
    ``galaxy``: a galaxy-datasets catalog of vote counts (``catalog``: its path; ``schema``: the
    decision tree), trained with the Dirichlet-multinomial loss.
    ``gz1``: a hard-label Galaxy Zoo 1 folder (``catalog``: the folder), cross-entropy.
    ``synthetic``: the formula-driven fractal corpus (:mod:`alertlib.learn.synthetic`; ``n_classes``,
    ``n_per_class``), cross-entropy on the generating system.
``pretrain_init``
    The init name the checkpoint stands for when fine-tuning. Default: ``synthetic`` for the fractal
    corpus, ``galaxy_gz1`` for GZ1, and for vote catalogs ``galaxy_sim`` when the catalog's folder
    has a ``dataset.json`` that says it was simulated, else ``galaxy_votes``.
``arch``, ``init``, ``weights_file``, ``input_size``
    The model (:func:`alertlib.learn.models.create_model`); ``init`` is where pre-training starts (scratch).
``image_size``, ``val_fraction``, ``augment``, ``seed``, ``max_images``
    Galaxy image side in pixels (63, the alert stamp); share of galaxies held out for validation;
    at most this many galaxies of the catalog (a seeded subsample; None: all).
``epochs``, ``batch_size``, ``lr`` ...
    Training settings (:mod:`alertlib.learn.training`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from alertlib.core.errors import SettingError

CORPORA = ("galaxy", "gz1", "synthetic")
PRETRAIN_DEFAULTS = {
    "corpus": "synthetic",
    "catalog": None,
    "schema": "gz_decals_dr5",
    "pretrain_init": None,
    "arch": "btsbot_cnn",
    "init": "scratch",
    "weights_file": None,
    "input_size": None,
    "image_size": 63,
    "val_fraction": 0.1,
    "augment": True,
    "seed": 0,
    "n_classes": 32,
    "n_per_class": 50,
    "n_val_per_class": 10,
    "max_images": None,
}
TASK_NAMES = {"galaxy": "pretrain_galaxy", "gz1": "pretrain_gz1", "synthetic": "pretrain_synthetic"}


def _default_pretrain_init(config: dict) -> str:
    if config["corpus"] == "synthetic":
        return "synthetic"
    if config["corpus"] == "gz1":
        return "galaxy_gz1"
    from alertlib.io.release import read_metadata

    metadata = read_metadata(Path(config["catalog"]).parent)
    # alertlib.sky.simulate writes its version into every data set it makes.
    simulated = "simulator_version" in metadata or bool(metadata.get("simulated"))
    return "galaxy_sim" if simulated else "galaxy_votes"


def full_config(config: dict) -> dict:
    """The config with every default filled in; checks the corpus and its data."""
    from alertlib.learn.training import TRAINING_DEFAULTS

    unknown = sorted(set(config) - set(PRETRAIN_DEFAULTS) - set(TRAINING_DEFAULTS))
    if unknown:
        raise SettingError(f"unknown pre-training config keys {unknown}; see alertlib.learn.pretrain's docstring")
    merged = {**PRETRAIN_DEFAULTS, **TRAINING_DEFAULTS, **config}
    if merged["corpus"] not in CORPORA:
        raise SettingError(f"corpus must be one of {CORPORA}, not {merged['corpus']!r}")
    if merged["corpus"] != "synthetic":
        if merged["catalog"] is None:
            raise SettingError(f"corpus {merged['corpus']!r} needs config['catalog'] (a catalog file or GZ1 folder)")
        merged["catalog"] = str(Path(merged["catalog"]).resolve())
    if merged["pretrain_init"] is None:
        merged["pretrain_init"] = _default_pretrain_init(merged)
    if merged["pretrain_init"] in ("scratch", "imagenet", "galaxyzoo"):
        raise ValueError(f"pretrain_init {merged['pretrain_init']!r} is reserved for other initialisations")
    return merged


def _split_rows(n: int, val_fraction: float, seed: int):
    import numpy as np

    order = np.random.default_rng([seed, 3]).permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    if n_val >= n:
        raise ValueError(f"{n} galaxies are too few to hold out {n_val} for validation")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _datasets(config: dict):
    """(train, val, objective, num_outputs, data_version, loss) for the configured corpus."""
    import numpy as np

    from alertlib.io.catalogs import read_galaxy_catalog, read_gz1_catalog, vote_columns
    from alertlib.learn.datasets import GalaxyDataset
    from alertlib.learn.synthetic import CORPUS_NAME, FractalDataset
    from alertlib.learn.training import make_loss

    seed = config["seed"]
    if config["corpus"] == "synthetic":
        common = {"n_classes": config["n_classes"], "image_size": config["image_size"], "seed": seed}
        train = FractalDataset(n_per_class=config["n_per_class"], augment=config["augment"], **common)
        # Validation images come from other instances of the same systems: a different seed stream.
        val = FractalDataset(n_per_class=config["n_val_per_class"], augment=False, **common)
        val.seed = seed + 10_000  # same systems (already drawn), other images
        version = f"{CORPUS_NAME}:classes={config['n_classes']}:seed={seed}"
        return train, val, "multiclass", config["n_classes"], version, make_loss("multiclass")
    if config["corpus"] == "gz1":
        catalog = read_gz1_catalog(config["catalog"])
        columns, target, objective = ["CLASS"], "class", "multiclass"
        num_outputs = int(catalog["CLASS"].max()) + 1
        loss = make_loss("multiclass")
    else:
        catalog = read_galaxy_catalog(config["catalog"])
        columns, target, objective = vote_columns(catalog, config["schema"]), "votes", "votes"
        num_outputs = len(columns)
        loss = make_loss("votes", schema=config["schema"])
    if config["max_images"] and len(catalog) > config["max_images"]:  # a seeded subsample (CPU budgets)
        keep = np.sort(np.random.default_rng([seed, 5]).choice(len(catalog), config["max_images"], replace=False))
        catalog = catalog.iloc[keep].reset_index(drop=True)
    train_rows, val_rows = _split_rows(len(catalog), config["val_fraction"], seed)

    def dataset(rows, augment):
        return GalaxyDataset(
            catalog.iloc[rows].reset_index(drop=True), columns, config["image_size"], augment, seed, target
        )

    version = f"{Path(config['catalog']).name}:{len(catalog)} galaxies"
    return dataset(train_rows, config["augment"]), dataset(val_rows, False), objective, num_outputs, version, loss


def _validation_metrics(model, val, objective: str, schema: str) -> dict[str, float]:
    import numpy as np
    import torch

    from alertlib.learn.training import predict_logits

    logits = torch.from_numpy(predict_logits(model, val))
    targets = torch.stack([val[i][1] for i in range(len(val))])
    if objective == "multiclass":
        return {"val_accuracy": float((logits.argmax(dim=1) == targets.long()).float().mean())}
    from alertlib.io.schema import load_schema
    from alertlib.learn.losses import expected_vote_fractions

    predicted = expected_vote_fractions(logits, schema).numpy()
    counts = targets.numpy()
    errors = []
    for part in load_schema(schema).question_slices:
        totals = counts[:, part].sum(axis=1)
        asked = totals > 0
        if asked.any():
            fractions = counts[asked][:, part] / totals[asked, None]
            errors.append(np.abs(predicted[asked][:, part] - fractions).mean(axis=1))
    return {"val_vote_fraction_mae": float(np.mean(np.concatenate(errors)))}


def run_pretrain(config: dict, out_dir: str | Path) -> pd.DataFrame:
    """Pre-train one encoder and save it; return (and write) the tidy results table.

    See the module docstring for config keys and files. Skips a finished job.
    """
    from alertlib.learn.results import begin_run

    config, out_dir, run_id, done = begin_run(config, out_dir, full_config)
    if done is not None:
        return done

    from lightning.pytorch import seed_everything

    from alertlib.core.files import write_table
    from alertlib.core.provenance import code_version
    from alertlib.learn.models import create_model, save_encoder_checkpoint
    from alertlib.learn.results import result_rows, save_results
    from alertlib.learn.training import fit

    start = time.perf_counter()
    train, val, objective, num_outputs, version, loss = _datasets(config)
    seed_everything(config["seed"], verbose=False)
    model = create_model(
        config["arch"],
        config["init"],
        num_outputs=num_outputs,
        input_size=config["input_size"],
        weights_file=config["weights_file"],
    )
    result = fit(
        model, train, val, objective, config, loss=loss, description=f"pretrain {config['arch']}/{config['corpus']}"
    )
    values = _validation_metrics(result.model, val, objective, config["schema"])
    values.update(
        {
            "best_val_loss": result.best_val_loss,
            "best_epoch": result.best_epoch,
            "epochs_trained": len(result.history),
            "train_images": len(train),
            "learning_rate": result.settings["lr"],
        }
    )
    provenance = {
        "pretrain_init": config["pretrain_init"],
        "corpus": config["corpus"],
        "data_version": version,
        "run_id": run_id,
        "started_from": f"{config['init']} ({model.weights_source})",
        "epochs_trained": len(result.history),
        "best_val_loss": result.best_val_loss,
        "code_version": code_version(),
        "config": json.dumps(config, sort_keys=True, default=str),
    }
    save_encoder_checkpoint(result.model, out_dir / "encoder.pt", provenance)
    write_table(out_dir / "curves.csv", result.history)
    task_config = {**config, "task": TASK_NAMES[config["corpus"]]}
    recorded = {k: v for k, v in task_config.items() if k not in ("progress", "num_workers")}
    table = result_rows(recorded, values, time.perf_counter() - start, model.weights_source, version)
    table["run_id"] = run_id  # the key of the config as given (the task name is derived from it)
    save_results(out_dir / "results.parquet", table)
    return table
