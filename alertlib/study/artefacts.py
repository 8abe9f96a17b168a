"""What each numbered notebook writes for the next ones, where, and whether it is still current.

The notebooks hand artefacts forward; a later notebook never redoes an earlier one's work:

========================  ==================  =============================================
artefact                  written by          path under ``data/study/<profile>/``
========================  ==================  =============================================
``data``                  00_data             ``data.json``: the galaxy catalog and each replicate's alerts
``pretrain``              01_pretrain         ``pretrain/results.parquet`` (+ ``curves.parquet``)
``finetune``              02_finetune         ``finetune/results.parquet`` (+ ``predictions.parquet``,
                                              ``curves.parquet``, ``lr_choice.parquet``, ``notes.json``,
                                              ``calibration.parquet``: each run's temperature;
                                              the best models in ``checkpoints/``)
``benchmark``             03_efficiency       ``benchmark_<device>.csv``
``real``                  04_real_alerts      ``real/``: zero-shot scores and AUCs, few-shot curves and
                                              differences, realism by real set (``real/summary.json`` last)
``headline``              05_figures          ``headline.csv``, ``evidence.csv`` (and ``figures/<profile>/``)
========================  ==================  =============================================

Beside each artefact a sidecar ``<name>.inputs.json`` records what it was made from (the
profile's settings for that step and the artefacts it read). An artefact is *current* when its
recorded inputs equal what the profile asks for now: a re-run reads it back instead of computing it
again, and a later notebook refuses an artefact that is missing or out of date with a message that
names the notebook to run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from alertlib.core.errors import DataNotFound
from alertlib.core.files import write_json
from alertlib.core.paths import data_dir, figures_dir

NOTEBOOK_OF = {
    "data": "00_data",
    "pretrain": "01_pretrain",
    "finetune": "02_finetune",
    "benchmark": "03_efficiency",
    "headline": "05_figures",
    "real": "04_real_alerts",
}
ARTEFACT_FILES = {
    "data": "data.json",
    "pretrain": "pretrain/results.parquet",
    "pretrain_curves": "pretrain/curves.parquet",
    "finetune": "finetune/results.parquet",
    "predictions": "finetune/predictions.parquet",
    "finetune_curves": "finetune/curves.parquet",
    "finetune_notes": "finetune/notes.json",
    "lr_choice": "finetune/lr_choice.parquet",
    "calibration": "finetune/calibration.parquet",
    "headline": "headline.csv",
    "real_scores": "real/scores.parquet",
    "zero_shot": "real/zero_shot.parquet",
    "class_confusion": "real/class_confusion.parquet",
    "fewshot_curves": "real/fewshot_curves.parquet",
    "fewshot_differences": "real/fewshot_differences.parquet",
    "realism_by_set": "real/realism_by_set.parquet",
    "real": "real/summary.json",
}


class MissingArtefact(DataNotFound):
    """A notebook's input that an earlier notebook has not written (or wrote for other settings)."""


def results_dir(profile: dict) -> Path:
    """Where a profile's results, checkpoints and predictions go: ``data/study/<profile>``."""
    return data_dir() / "study" / profile["profile"]


def profile_figures_dir(profile: dict) -> Path:
    """Where a profile's figures go: ``figures/<profile>`` (the README shows ``figures/default``)."""
    return figures_dir() / profile["profile"]


def artefact_path(profile: dict, name: str) -> Path:
    """The path of one artefact of a profile (see the module docstring)."""
    return results_dir(profile) / ARTEFACT_FILES[name]


def benchmark_path(profile: dict, device: str) -> Path:
    """The benchmark table of one device: ``benchmark_<device>.csv``."""
    return results_dir(profile) / f"benchmark_{device}.csv"


def inputs_key(inputs: dict) -> str:
    """A stable hash of an artefact's inputs (keys sorted; paths and numbers as text)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".inputs.json")


def record_inputs(path: Path, inputs: dict) -> None:
    """Write the sidecar of an artefact just written (after the artefact: a crash leaves it stale)."""
    write_json(_sidecar(path), {"key": inputs_key(inputs), "inputs": inputs})


def is_current(path: Path, inputs: dict) -> bool:
    """Whether the artefact at ``path`` exists and was made from ``inputs``."""
    sidecar = _sidecar(path)
    if not (path.exists() and sidecar.is_file()):
        return False
    return json.loads(sidecar.read_text()).get("key") == inputs_key(inputs)


def require(profile: dict, name: str, inputs: dict, path: Path | None = None) -> Path:
    """The path of an artefact that must exist and be current, or a :class:`MissingArtefact` error.

    The error names the notebook that writes it, so a student who opens a later notebook first
    knows what to run.
    """
    path = path or artefact_path(profile, name)
    notebook = NOTEBOOK_OF.get(name.split("_")[0], "the earlier notebooks")
    how = f"run notebooks/{notebook}.ipynb with profile {profile['profile']!r} first (or `alertlib study --profile {profile['profile']}`)"
    if not path.exists():
        raise MissingArtefact(f"{path} does not exist: {how}")
    if not is_current(path, inputs):
        raise MissingArtefact(f"{path} was made with other settings than profile {profile['profile']!r} has now: {how}")
    return path
