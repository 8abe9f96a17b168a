"""Galaxy Zoo catalogs: volunteer vote counts (galaxy-datasets format) and Galaxy Zoo 1 hard labels.

``read_galaxy_catalog`` reads a table in the galaxy-datasets format (``id_str``, ``file_loc``, one
column of vote counts per answer of a decision tree, :mod:`alertlib.io.schema`); ``read_gz1_catalog``
reads the real Galaxy Zoo 1 sample (``OBJID``, ``CLASS``); ``fetch_galaxy_dataset`` gets a catalog
from the ``galaxy-datasets`` package when it is installed and online.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.errors import DataError, DataNotFound

GZ1_CLASSES = ("elliptical", "clockwise spiral", "anticlockwise spiral", "edge-on", "don't know", "merger")


def _check_image_files(catalog: pd.DataFrame, source: Path, drop_missing: bool) -> pd.DataFrame:
    exists = np.array([Path(p).is_file() for p in catalog["file_loc"]], dtype=bool)
    if exists.all():
        return catalog
    missing = catalog.loc[~exists, "file_loc"].tolist()
    message = (
        f"{len(missing)} of {len(catalog)} images listed in {source} are missing (first: {missing[:3]}); "
        f"put the images there or fix file_loc"
    )
    if not drop_missing:
        raise DataNotFound(message + ", or pass drop_missing=True to leave those galaxies out")
    warnings.warn(message + "; those galaxies are left out", stacklevel=3)
    return catalog.loc[exists].reset_index(drop=True)


def vote_columns(catalog: pd.DataFrame, schema_name: str = "gz_decals_dr5") -> list[str]:
    """The schema's answer columns, in schema order; every one must be in the catalog."""
    from alertlib.io.schema import load_schema

    columns = load_schema(schema_name).answer_columns
    missing = [c for c in columns if c not in catalog.columns]
    if missing:
        raise KeyError(
            f"catalog lacks {len(missing)} vote columns of schema {schema_name} (e.g. {missing[:3]}); "
            f"is it a {schema_name} catalog?"
        )
    return columns


def read_galaxy_catalog(path: str | Path, drop_missing: bool = False) -> pd.DataFrame:
    """Read a catalog in the galaxy-datasets format (CSV or Parquet).

    Columns ``id_str`` and ``file_loc`` are required; vote-count columns are kept as they are
    (use :func:`vote_columns` to pick a schema's). A relative ``file_loc`` is taken relative to the
    catalog's folder.

    Raises
    ------
    FileNotFoundError
        The catalog, or (unless ``drop_missing``) any image it lists, does not exist.
    KeyError
        ``id_str`` or ``file_loc`` is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFound(
            f"galaxy catalog {path} does not exist (a galaxy-datasets table: id_str, file_loc, vote counts)"
        )
    catalog = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, low_memory=False)
    missing = [c for c in ("id_str", "file_loc") if c not in catalog.columns]
    if missing:
        raise DataError(f"{path} lacks columns {missing}: not the galaxy-datasets format (id_str, file_loc, votes)")
    catalog["id_str"] = catalog["id_str"].astype(str)
    catalog["file_loc"] = [str(p if Path(p).is_absolute() else path.parent / p) for p in catalog["file_loc"]]
    return _check_image_files(catalog, path, drop_missing)


def read_gz1_catalog(
    folder: str | Path, classes_file: str = "gz1_classes.csv", drop_missing: bool = False
) -> pd.DataFrame:
    """Read a hard-label Galaxy Zoo 1 catalog: ``<folder>/gz1_classes.csv`` (OBJID, CLASS) and
    ``<folder>/images/<OBJID>.jpeg``.

    Returns a frame with ``id_str``, ``file_loc``, ``CLASS`` (int, 0..5) and ``class_name``
    (:data:`GZ1_CLASSES`).
    """
    folder = Path(folder)
    path = folder / classes_file
    if not path.is_file():
        raise DataNotFound(f"{path} does not exist; expected a table with columns OBJID, CLASS")
    table = pd.read_csv(path, dtype={"OBJID": str})
    missing = [c for c in ("OBJID", "CLASS") if c not in table.columns]
    if missing:
        raise DataError(f"{path} lacks columns {missing}")
    classes = table["CLASS"].astype(int)
    if not classes.between(0, len(GZ1_CLASSES) - 1).all():
        raise ValueError(f"{path} has CLASS values outside 0..{len(GZ1_CLASSES) - 1}")
    catalog = pd.DataFrame(
        {
            "id_str": table["OBJID"].astype(str),
            "file_loc": [str(folder / "images" / f"{objid}.jpeg") for objid in table["OBJID"]],
            "CLASS": classes,
            "class_name": [GZ1_CLASSES[c] for c in classes],
        }
    )
    return _check_image_files(catalog, path, drop_missing)


def fetch_galaxy_dataset(name: str, root: str | Path, train: bool = True) -> pd.DataFrame:
    """Fetch a named public dataset (``gz2``, ``gz_decals_5``, ...) through galaxy-datasets.

    Needs the ``galaxy-datasets`` package and a network. Offline, or without the package, the error
    says where to put the files instead (then use :func:`read_galaxy_catalog`).
    """
    root = Path(root)
    hint = (
        f"put the catalog (id_str, file_loc, vote columns) and its images under {root} and read it with "
        f"alertlib.learn.datasets.read_galaxy_catalog(<catalog file>)"
    )
    try:
        import galaxy_datasets  # noqa: F401 - optional dependency, only needed to download
    except ImportError as error:
        raise RuntimeError(
            f"fetching {name!r} needs the galaxy-datasets package (pip install galaxy-datasets) and a network; "
            f"otherwise {hint}"
        ) from error
    import importlib

    try:
        module = importlib.import_module(f"galaxy_datasets.pytorch.{name}")
    except ImportError:
        module = importlib.import_module("galaxy_datasets")
    fetch = getattr(module, name, None)
    if fetch is None:
        raise ValueError(f"galaxy-datasets has no dataset {name!r}; {hint}")
    try:
        catalog, _label_cols = fetch(root=str(root), train=train, download=True)
    except Exception as error:  # network errors differ between versions; the hint is what matters
        raise RuntimeError(f"could not fetch {name!r} ({error}); offline, {hint}") from error
    return catalog
