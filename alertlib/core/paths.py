"""Where things live: the repository, its data/ and figures/ folders, and the real sample data."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_DIR.parent


def data_dir() -> Path:
    """Folder for generated data (``$ALERTLIB_DATA`` or ``<repo>/data``)."""
    return Path(os.environ.get("ALERTLIB_DATA", REPO_ROOT / "data"))


def figures_dir() -> Path:
    """Folder for figures (``$ALERTLIB_FIGURES`` or ``<repo>/figures``)."""
    return Path(os.environ.get("ALERTLIB_FIGURES", REPO_ROOT / "figures"))


def weights_dir() -> Path:
    """Folder searched for local weight files (``$ALERTLIB_WEIGHTS`` or ``data/weights``)."""
    return Path(os.environ.get("ALERTLIB_WEIGHTS", data_dir() / "weights"))


def shared_data_dir() -> Path | None:
    """The folder of real sample data, or None when it is absent.

    ``$ALERTLIB_SHARED_DATA`` wins; otherwise ``../shared/data`` beside the repository is used.
    """
    env = os.environ.get("ALERTLIB_SHARED_DATA")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


# The real-data folders the project knows how to use, relative to the shared data folder.
REAL_DATA_FOLDERS = {
    "ztf_packets": "alert-packets/ztf",
    "ztf_spark_snappy_packets": "alert-packets/ztf-spark-snappy",
    "atlas_packets": "alert-packets/atlas",
    "lsst_packets": "alert-packets/lsst",
    "fink_ztf_parquet": "alert-packets/fink-ztf-parquet",
    "fink_lsst_parquet": "alert-packets/fink-lsst-parquet",
    "bts_release_sample": "bts-real-sample/zenodo-v10-layout",
    "bts_btsbot_example": "bts-real-sample",
    "galaxy_zoo_1_sample": "galaxy-zoo-1-sample",
}


def real_data_path(name: str) -> Path | None:
    """Path of one known real-data folder, or None when the shared data (or that folder) is absent."""
    root = shared_data_dir()
    if root is None:
        return None
    path = root / REAL_DATA_FOLDERS[name]
    return path if path.exists() else None


def packet_folders(given, names) -> list[Path]:
    """The packet folders a benchmark reads: those ``given``, else the shared data's
    ``alert-packets/<name>`` folders that exist (an error naming the fix when the shared data is absent)."""
    if given:
        return [Path(folder) for folder in given]
    root = shared_data_dir()
    if root is None:
        raise SystemExit("no folders given and no shared data found (set ALERTLIB_SHARED_DATA)")
    return [root / "alert-packets" / name for name in names if (root / "alert-packets" / name).is_dir()]
