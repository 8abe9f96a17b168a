"""The candidate features an image + metadata model reads (BTSbot's 25, :data:`METADATA_FEATURES`).

Where they come from:

- the BTS release layout: the columns of ``{split}_cand_<version>.csv`` (BTSbot computed them);
- the simulated sky: most are columns of its candidate table, and the sky writes the others into a
  sidecar ``{split}_meta_<version>.parquet`` beside it (:mod:`alertlib.sky.metadata`), row for row;
- alert packets: the ZTF candidate fields; what is not a packet field is derived here:
  ``nnotdet = ncovhist - ndethist``, and the light-curve features from the alerts of each object at
  hand (:func:`lightcurve_features`). A packet has no ``new_drb`` (BTSbot's re-run of braai): ZTF's own
  ``drb`` is the same network's score in the packet, and is read in its place, said in the table's
  ``attrs["feature_sources"]``.

:func:`feature_matrix` turns a table into the (N, 25) float32 matrix, and refuses, naming the file
and the column, a table that lacks a feature or holds a non-finite value (ZTF writes -999 where a
catalogue has no match: that is a value, kept as BTSbot keeps it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.errors import DataError
from alertlib.core.vocab import METADATA_FEATURES

LIGHTCURVE_FEATURES = ("age", "days_since_peak", "days_to_peak", "peakmag_so_far", "maxmag_so_far")


def lightcurve_features(candidates: pd.DataFrame) -> pd.DataFrame:
    """BTSbot's light-curve features of each alert, from the alerts of its object up to it (time order).

    ``peakmag_so_far`` and ``maxmag_so_far`` are the smallest and largest ``magpsf`` so far;
    ``age`` is the time since the first detection (ZTF's ``jdstarthist`` where the table has it,
    else the object's first alert here); ``days_since_peak`` the time since the brightest alert so
    far, ``days_to_peak`` from the first detection to it. Rows keep the table's index and order.
    """
    for column in ("objectId", "jd", "magpsf"):
        if column not in candidates:
            raise DataError(f"light-curve features need column {column!r} in the candidate table")
    table = candidates[["objectId", "jd", "magpsf"]].copy()
    table["row"] = np.arange(len(table))
    table = table.sort_values(["objectId", "jd", "row"], kind="stable")
    by_object = table.groupby("objectId", sort=False)
    peak = by_object["magpsf"].cummin()
    # The jd of the brightest alert so far: the first alert that reached the running minimum.
    before = peak.groupby(table["objectId"], sort=False).shift(1)
    lowered = before.isna() | (table["magpsf"] < before)
    peak_jd = table["jd"].where(lowered).groupby(table["objectId"], sort=False).ffill()
    first = by_object["jd"].transform("min")
    if "jdstarthist" in candidates:
        start = pd.to_numeric(candidates["jdstarthist"], errors="coerce").reindex(table.index)
        first = np.fmin(first, start.where(start > 0))
    features = pd.DataFrame(
        {
            "age": table["jd"] - first,
            "days_since_peak": table["jd"] - peak_jd,
            "days_to_peak": peak_jd - first,
            "peakmag_so_far": peak,
            "maxmag_so_far": by_object["magpsf"].cummax(),
        },
        index=table.index,
    )
    return features.loc[candidates.index]


def packet_features(candidates: pd.DataFrame) -> pd.DataFrame:
    """The table with the features a decoded packet lacks derived (see the module docstring).

    Columns already present are kept as they are; ``attrs["feature_sources"]`` says what was derived.
    """
    table = candidates.copy()
    sources = {}
    if "nnotdet" not in table and {"ncovhist", "ndethist"} <= set(table):
        table["nnotdet"] = pd.to_numeric(table["ncovhist"]) - pd.to_numeric(table["ndethist"])
        sources["nnotdet"] = "ncovhist - ndethist"
    if "new_drb" not in table and "drb" in table:
        table["new_drb"] = table["drb"]
        sources["new_drb"] = "drb (ZTF's own braai score; BTSbot re-ran braai)"
    missing = [c for c in LIGHTCURVE_FEATURES if c not in table]
    if missing and {"objectId", "jd", "magpsf"} <= set(table):  # else they stay missing: the rows are reported
        derived = lightcurve_features(table)
        for column in missing:
            table[column] = derived[column]
            sources[column] = "the object's alerts in these inputs, up to this one"
    table.attrs["feature_sources"] = sources
    return table


def sidecar_path(folder: str | Path, split: str, version: str) -> Path:
    """Where a simulated sky keeps the features its candidate table lacks."""
    return Path(folder) / f"{split}_meta_{version}.parquet"


def with_sidecar(candidates: pd.DataFrame, folder: str | Path, split: str, version: str) -> pd.DataFrame:
    """The candidate table with the split's feature sidecar joined on ``candid``, when there is one
    (the table may be a subset of the split, as a capped training split is)."""
    path = sidecar_path(folder, split, version)
    if not path.is_file():
        return candidates
    extra = pd.read_parquet(path).set_index("candid")
    unknown = int((~candidates["candid"].isin(extra.index)).sum())
    if unknown or not extra.index.is_unique:
        raise DataError(
            f"{path} does not match its candidate table ({unknown} candids missing, unique: "
            f"{extra.index.is_unique}); delete it and rerun notebook 00 to write it again"
        )
    duplicated = sorted(set(extra.columns) & set(candidates.columns))
    if duplicated:
        raise DataError(f"{path} repeats candidate columns {duplicated}; delete it and rerun notebook 00")
    joined = extra.reindex(candidates["candid"].to_numpy()).set_axis(candidates.index)
    return pd.concat([candidates, joined], axis=1)


def _numeric(candidates: pd.DataFrame, names) -> np.ndarray:
    """The columns ``names`` as float64 (N, F): values that are not numbers, and absent columns, are NaN."""
    values = np.full((len(candidates), len(names)), np.nan)
    for index, name in enumerate(names):
        if name in candidates:
            values[:, index] = pd.to_numeric(candidates[name], errors="coerce").to_numpy(dtype=np.float64)
    return values


def feature_matrix(candidates: pd.DataFrame, names=METADATA_FEATURES, where: str = "the candidate table") -> np.ndarray:
    """The features ``names`` of every row as a float32 matrix (N, len(names)).

    Raises
    ------
    DataError
        A feature column is missing, or holds values that are not finite numbers (named, with the
        count and the place: ``where``).
    """
    missing = [name for name in names if name not in candidates]
    if missing:
        raise DataError(
            f"{where} lacks the metadata features {missing}: an image + metadata model needs all of "
            f"{list(names)} (the BTS release layout has them; a simulated sky writes them in notebook 00)"
        )
    values = _numeric(candidates, names)
    bad = ~np.isfinite(values)
    if bad.any():
        counts = {name: int(n) for name, n in zip(names, bad.sum(axis=0), strict=True) if n}
        raise DataError(f"{where} has non-finite metadata values {counts}; fix or drop those alerts")
    return values.astype(np.float32)


def complete_rows(candidates: pd.DataFrame, names=METADATA_FEATURES) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The features of the rows that have all of them: (matrix (N, F) with NaN rows where a feature is
    missing or not finite, which rows are complete, and for each incomplete row the features it lacks)."""
    values = _numeric(candidates, names)
    finite = np.isfinite(values)
    complete = finite.all(axis=1)
    lacking = [", ".join(n for n, ok in zip(names, row, strict=True) if not ok) for row in finite[~complete]]
    return values.astype(np.float32), complete, lacking


def normalisation_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each feature (a constant feature gets 1), from training rows only."""
    mean = features.mean(axis=0, dtype=np.float64)
    std = features.std(axis=0, dtype=np.float64)
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)
