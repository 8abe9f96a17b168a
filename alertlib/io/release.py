"""The BTS release layout (Zenodo 10.5281/zenodo.10839690), read and written.

A dataset is a folder with, for each split in ``train``, ``val``, ``test``:

- ``{split}_triplets_<version>.npy``: shape (N, 63, 63, 3), channels (science, reference, difference),
  each cutout L2-normalised;
- ``{split}_cand_<version>.csv``: one row per alert, at least ``objectId``, ``candid``, ``label``.

The simulator, the packet ingester and the real release all use this layout, so one loader serves all.
A ``dataset.json`` beside the files (written by alertlib, absent in the real release) records provenance.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.errors import DataError
from alertlib.core.files import atomic_path, save_npy, write_json
from alertlib.core.vocab import SPLITS
from alertlib.io.features import with_sidecar

REQUIRED_COLUMNS = ("objectId", "candid", "label")
_TRIPLETS_RE = re.compile(r"^(train|val|test)_triplets_(?P<version>.+)\.npy$")


class LayoutError(DataError):
    """A folder does not hold a dataset in the BTS release layout."""


@dataclass
class Split:
    """One split: triplets (N, 63, 63, 3) and the candidate table, row-aligned."""

    triplets: np.ndarray
    candidates: pd.DataFrame
    version: str
    path: Path

    def __len__(self) -> int:
        return len(self.candidates)


def find_versions(folder: str | Path) -> list[str]:
    """The dataset versions present in ``folder`` (from the ``*_triplets_<version>.npy`` names)."""
    folder = Path(folder)
    return sorted({m["version"] for p in folder.glob("*_triplets_*.npy") if (m := _TRIPLETS_RE.match(p.name))})


def resolve_version(folder: str | Path, version: str | None = None) -> str:
    """``version`` if given, else the only version in ``folder``; a clear error otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LayoutError(f"{folder} is not a folder; expected a dataset in the BTS release layout")
    versions = find_versions(folder)
    if version is not None:
        if version not in versions:
            raise LayoutError(f"{folder} has no files for version {version!r}; found versions {versions}")
        return version
    if len(versions) != 1:
        raise LayoutError(
            f"{folder} holds {len(versions)} dataset versions {versions}; pass version= to choose one"
            if versions
            else f"{folder} holds no '<split>_triplets_<version>.npy' files: not the BTS release layout"
        )
    return versions[0]


def read_split(folder: str | Path, split: str, version: str | None = None, mmap: bool = True) -> Split:
    """Read one split, memory-mapping the triplets, and check the layout.

    The candidate table gets the columns of the split's feature sidecar, when it has one
    (:func:`alertlib.io.features.with_sidecar`: a simulated sky's metadata features).

    Raises
    ------
    LayoutError
        Missing files, wrong array shape, missing columns, or row counts that disagree.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    folder = Path(folder)
    version = resolve_version(folder, version)
    triplets_path = folder / f"{split}_triplets_{version}.npy"
    cand_path = folder / f"{split}_cand_{version}.csv"
    for path in (triplets_path, cand_path):
        if not path.is_file():
            raise LayoutError(f"missing {path.name} in {folder}")
    triplets = np.load(triplets_path, mmap_mode="r" if mmap else None)
    if triplets.ndim != 4 or triplets.shape[-1] != 3:
        raise LayoutError(
            f"{triplets_path} has shape {triplets.shape}; expected (N, H, W, 3) with channels "
            f"(science, reference, difference) last"
        )
    candidates = pd.read_csv(cand_path, low_memory=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in candidates.columns]
    if missing:
        raise LayoutError(f"{cand_path} lacks columns {missing}")
    if len(candidates) != len(triplets):
        raise LayoutError(f"{cand_path} has {len(candidates)} rows but {triplets_path} holds {len(triplets)} triplets")
    candidates = with_sidecar(candidates, folder, split, version)
    return Split(triplets=triplets, candidates=candidates, version=version, path=folder)


def read_metadata(folder: str | Path) -> dict:
    """The ``dataset.json`` provenance record, or ``{}`` for a folder written by someone else."""
    path = Path(folder) / "dataset.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def write_split(folder: str | Path, split: str, version: str, triplets: np.ndarray, candidates: pd.DataFrame) -> None:
    """Write one split atomically in the release layout (float32 triplets, N x H x W x 3)."""
    if triplets.ndim != 4 or triplets.shape[-1] != 3:
        raise LayoutError(f"triplets must be (N, H, W, 3), got {triplets.shape}")
    if len(triplets) != len(candidates):
        raise LayoutError(f"{len(triplets)} triplets but {len(candidates)} candidate rows")
    folder = Path(folder)
    save_npy(folder / f"{split}_triplets_{version}.npy", np.ascontiguousarray(triplets))
    with atomic_path(folder / f"{split}_cand_{version}.csv") as tmp:
        candidates.to_csv(tmp, index=False)


def write_metadata(folder: str | Path, metadata: dict) -> None:
    """Write the ``dataset.json`` provenance record atomically."""
    write_json(Path(folder) / "dataset.json", metadata)
