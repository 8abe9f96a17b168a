"""Runs and their results: a run's identity, its finished results, and the tidy results table.

A run (one pre-training or fine-tuning job) is identified by ``run_id``, a hash of its full config
and of the content of the data it reads (:func:`begin_run`); a run whose results exist in its folder
with the same id is finished and is read back instead of run again (:func:`finished_results`).

Every run produces a list of metric values; ``result_rows`` turns them into rows with the
descriptors below, so that any table can be filtered, grouped and traced back to the exact config,
seed, data, weights and code that produced it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from alertlib.core.files import write_table
from alertlib.core.provenance import code_version

# Config keys that do not change the result and so do not enter the run id.
NOT_IN_RUN_ID = (
    "progress",
    "num_workers",
    "data_path",
)  # data_path: the same batches either way (tests/test_device_data.py)

# Descriptors carried by every row (in this order), then `metric`, `value`.
DESCRIPTOR_COLUMNS = (
    "run_id",  # stable hash of the config: the key used to skip finished runs
    "task",  # e.g. "bts" (binary), "multiclass", "pretrain_galaxy", "pretrain_synthetic"
    "arch",  # timm name, or "btsbot_cnn" / "braai_vgg"
    "init",  # scratch | synthetic | galaxy_sim | galaxy_gz1 | imagenet | galaxyzoo | checkpoint
    "weights_source",  # where the initial weights came from: "none", "file:...", "hf-cache:...", checkpoint path
    "train_fraction",  # fraction of training sources used (1.0 = all)
    "seed",
    "data_version",  # dataset name + version + content hash
    "code_version",  # alertlib version + git commit
    "wall_time_s",
    "config",  # the whole run config as JSON
)
COLUMNS = (*DESCRIPTOR_COLUMNS, "metric", "value")


def run_id(config: dict) -> str:
    """A short stable hash of a run's config (keys sorted), used to name and skip runs."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def result_rows(
    config: dict, metrics: dict[str, float], wall_time_s: float, weights_source: str, data_version: str
) -> pd.DataFrame:
    """Tidy rows for one run.

    Parameters
    ----------
    config:
        The run's config; must hold ``task``, ``arch``, ``init``, ``seed`` and may hold ``train_fraction``.
    metrics:
        Metric name -> value.
    """
    base = {
        "run_id": run_id(config),
        "task": config["task"],
        "arch": config["arch"],
        "init": config["init"],
        "weights_source": weights_source,
        "train_fraction": float(config.get("train_fraction", 1.0)),
        "seed": int(config["seed"]),
        "data_version": data_version,
        "code_version": code_version(),
        "wall_time_s": float(wall_time_s),
        "config": json.dumps(config, sort_keys=True, default=str),
    }
    rows = [{**base, "metric": name, "value": float(value)} for name, value in metrics.items()]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def save_results(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a results table (Parquet) atomically."""
    write_table(Path(path), frame)


def load_results(paths) -> pd.DataFrame:
    """Concatenate results tables (one path, a folder searched recursively for results.parquet, or a list)."""
    if isinstance(paths, (str, Path)):
        path = Path(paths)
        paths = sorted(path.rglob("results.parquet")) if path.is_dir() else [path]
    frames = [pd.read_parquet(p) for p in paths]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)


def config_run_id(config: dict) -> str:
    """The run id of a full config (settings that do not change results are left out)."""
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
