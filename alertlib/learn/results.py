"""The tidy results table: one row per (run, metric), each row carrying the run's full provenance.

Every fine-tuning or pre-training run produces a list of metric values; ``result_rows`` turns them
into rows with the descriptors below, so that any table can be filtered, grouped and traced back to
the exact config, seed, data, weights and code that produced it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from alertlib.core.files import write_table
from alertlib.core.provenance import code_version

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
