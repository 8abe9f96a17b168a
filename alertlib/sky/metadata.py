"""The candidate features the simulated sky's table lacks, measured from what it simulated.

An image + metadata model reads BTSbot's 25 features (:data:`alertlib.core.vocab.METADATA_FEATURES`).
The sky's candidate table has ten of them (``magpsf``, ``sigmapsf``, ``fwhm``, ``sgscore1``,
``distpsnr1``, ``nmtchps``, ``ndethist``, ``diffmaglim``, ``ra``, ``dec``); this module writes the
others into a sidecar per split, ``{split}_meta_<version>.parquet`` (:func:`alertlib.io.features.sidecar_path`),
row for row with ``candid``. The sidecar leaves the candidate tables, and so every data version and
finished image-only run, untouched; :func:`write_sidecars` adds it to a sky that lacks it.

How each is made (our measurement model, drawn from the sky's own truths; the spreads are rough
matches to real ZTF candidates, not a calibration):

- light curve (``age``, ``days_since_peak``, ``days_to_peak``, ``peakmag_so_far``,
  ``maxmag_so_far``): computed from the source's alerts up to each one
  (:func:`alertlib.io.features.lightcurve_features`), as BTSbot computes them;
- ``sgscore2``, ``distpsnr2``: the second-nearest Pan-STARRS object, at a distance drawn from the
  density of objects in the 30-arcsec cone that ``nmtchps`` counts, a star with a probability that
  grows towards the galactic plane; -999 (ZTF's "none") when it falls outside the cone;
- ``chinr``, ``sharpnr``: the nearest reference-image source: point-like (chi near 1, sharpness
  near 0) for a star under the candidate, extended (larger both) for a host galaxy;
- ``ncovhist``, ``nnotdet``: the detections so far plus the visits without one, at a cadence of
  one visit every 2 to 6 nights since the survey began (JD 2458194.5);
- ``chipsf``: the PSF fit's reduced chi-square, near 1 for a point source and growing with its S/N
  (PSF mismatch), large for bogus residuals (dipoles, cosmic rays, hot pixels);
- ``new_drb``: a real/bogus score, high and rising with S/N for real changes, low for bogus ones;
- ``scorr``: the peak S/N of the match-filtered difference, about 1.0857 / ``sigmapsf``;
- ``sky``: the local background of the difference image, about zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.vocab import METADATA_FEATURES, SPLITS
from alertlib.io.features import lightcurve_features, sidecar_path

# The features the sky's candidate table has (alertlib.sky.alerts writes them); the sidecar holds the rest.
TABLE_FEATURES = (
    "sgscore1",
    "distpsnr1",
    "fwhm",
    "magpsf",
    "sigmapsf",
    "ra",
    "dec",
    "diffmaglim",
    "ndethist",
    "nmtchps",
)
SIDECAR_FEATURES = tuple(name for name in METADATA_FEATURES if name not in TABLE_FEATURES)
SURVEY_START_JD = 2458194.5  # ZTF's first night of survey operations (March 2018)
CONE_ARCSEC = 30.0  # the Pan-STARRS cone of nmtchps, sgscore1/2 and distpsnr1/2
NONE = -999.0  # ZTF's value for "no such object"
BOGUS_SHARP = ("cosmic_ray", "hot_pixel")


def _per_source(rng: np.random.Generator, table: pd.DataFrame) -> pd.DataFrame:
    """Draws that belong to a source (its neighbours, its field's cadence), one row per objectId."""
    first = table.groupby("objectId", sort=True).first()
    n = len(first)
    d1 = first["distpsnr1"].to_numpy(dtype=float)
    density = np.maximum(first["nmtchps"].to_numpy(dtype=float), 1.0) / (np.pi * CONE_ARCSEC**2)
    d2 = np.sqrt(np.maximum(d1, 0.0) ** 2 + rng.exponential(1.0, n) / (np.pi * density))
    matched = (d1 >= 0) & (d2 <= CONE_ARCSEC)
    latitude = np.abs(first["galactic_latitude"].to_numpy(dtype=float))
    star = rng.random(n) < 0.25 + 0.6 * np.exp(-latitude / 20.0)
    sgscore2 = np.where(star, rng.beta(8.0, 1.2, n), rng.beta(1.2, 8.0, n))
    on_star = (first["sgscore1"].to_numpy(dtype=float) > 0.5) & (d1 >= 0) & (d1 < 1.5)
    on_galaxy = np.isfinite(first["host_mag"].to_numpy(dtype=float))
    chinr = np.where(on_star, rng.lognormal(0.0, 0.4, n), rng.lognormal(np.log(3.0), 0.6, n))
    sharpnr = np.where(on_star, rng.normal(0.0, 0.04, n), rng.normal(0.25, 0.12, n))
    neither = ~on_star & ~on_galaxy
    chinr = np.where(neither, rng.lognormal(np.log(1.5), 0.8, n), chinr)
    sharpnr = np.where(neither, rng.normal(0.1, 0.2, n), sharpnr)
    return pd.DataFrame(
        {
            "sgscore2": np.where(matched, sgscore2, NONE),
            "distpsnr2": np.where(matched, d2, NONE),
            "chinr": chinr,
            "sharpnr": sharpnr,
            "nights_per_visit": rng.uniform(2.0, 6.0, n),
        },
        index=first.index,
    )


def _per_alert(rng: np.random.Generator, table: pd.DataFrame) -> pd.DataFrame:
    """Draws that belong to one detection: its fit, real/bogus score, S/N and background."""
    n = len(table)
    snr = 1.0857 / np.maximum(table["sigmapsf"].to_numpy(dtype=float), 1e-3)
    bogus = table["alert_class"].eq("bogus").to_numpy()
    sharp = table["bogus_kind"].isin(BOGUS_SHARP).to_numpy()
    noise_like = table["bogus_kind"].eq("noise").to_numpy()
    chipsf = rng.lognormal(np.log1p(0.3 * (snr / 40.0) ** 2), 0.3, n)
    chipsf = np.where(bogus, rng.lognormal(np.log(4.0), 0.6, n), chipsf)
    chipsf = np.where(sharp, rng.lognormal(np.log(8.0), 0.5, n), chipsf)
    chipsf = np.where(noise_like, rng.lognormal(0.0, 0.3, n), chipsf)
    drb_logit = np.where(bogus, rng.normal(-3.0, 1.5, n), rng.normal(3.0 + 0.05 * snr, 1.5, n))
    drb_logit = np.where(noise_like, rng.normal(-1.0, 1.5, n), drb_logit)
    return pd.DataFrame(
        {
            "chipsf": chipsf,
            "new_drb": 1.0 / (1.0 + np.exp(-drb_logit)),
            "scorr": snr * rng.lognormal(0.0, 0.15, n),
            "sky": rng.normal(0.0, 0.05, n) * table["sky_noise"].to_numpy(dtype=float),
        },
        index=table.index,
    )


def simulate_metadata(candidates: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The sidecar features (:data:`SIDECAR_FEATURES`) of a simulated candidate table, row for row,
    with ``candid``; the same table and seed give the same values."""
    rng = np.random.default_rng([int(seed), 0x6D657461])
    sources = _per_source(rng, candidates).reindex(candidates["objectId"].to_numpy())
    alerts = _per_alert(rng, candidates)
    jd = candidates["jd"].to_numpy(dtype=float)
    ndethist = candidates["ndethist"].to_numpy(dtype=float)
    visits = np.maximum(jd - SURVEY_START_JD, 0.0) / sources["nights_per_visit"].to_numpy()
    ncovhist = ndethist + rng.poisson(visits)
    frame = pd.DataFrame(
        {
            "candid": candidates["candid"].to_numpy(),
            "sgscore2": sources["sgscore2"].to_numpy(),
            "distpsnr2": sources["distpsnr2"].to_numpy(),
            "chipsf": alerts["chipsf"].to_numpy(),
            "new_drb": alerts["new_drb"].to_numpy(),
            "ncovhist": ncovhist,
            "nnotdet": ncovhist - ndethist,
            "chinr": sources["chinr"].to_numpy(),
            "sharpnr": sources["sharpnr"].to_numpy(),
            "scorr": alerts["scorr"].to_numpy(),
            "sky": alerts["sky"].to_numpy(),
        }
    )
    lightcurve = lightcurve_features(candidates.reset_index(drop=True))
    return pd.concat([frame, lightcurve], axis=1)[["candid", *SIDECAR_FEATURES]]


def write_sidecars(folder: str | Path) -> list[Path]:
    """Write the sidecar of each split of a simulated sky that lacks one (atomically); returns what was written.

    The seed is the sky's (``dataset.json``) and the split's position, so a sky's sidecars do not
    depend on when they were written.
    """
    from alertlib.core.files import write_table

    folder = Path(folder)
    record = json.loads((folder / "dataset.json").read_text())
    version, written = record["version"], []
    for index, split in enumerate(SPLITS):
        path = sidecar_path(folder, split, version)
        table_path = folder / f"{split}_cand_{version}.csv"
        if path.is_file() or not table_path.is_file():
            continue
        candidates = pd.read_csv(table_path)
        write_table(path, simulate_metadata(candidates, int(record["seed"]) * 3 + index))
        written.append(path)
    return written
