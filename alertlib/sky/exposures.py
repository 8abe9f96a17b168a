"""The survey's exposures: alerts of one exposure share its conditions, quadrant by quadrant.

A ZTF exposure covers a field of about 7 x 7 degrees with 16 CCDs of 4 readout quadrants each; each
quadrant is its own image (its own zero point, PSF model, subtraction and limit), and every alert
found on it shares them. By default the simulated sky gives every alert its own conditions
(:mod:`alertlib.sky.observing`); a sky *of exposures* instead observes each source once, in one
quadrant of one of a few exposures (:func:`exposure_quadrants`):

- the exposures' conditions (band, pointing, seeing, zero point, difference limit, sky-to-noise)
  are drawn from the survey's distributions (:func:`draw_exposures`), or given, e.g. those of a
  real night's exposures (:func:`alertlib.sky.packet_calibration.exposure_conditions`);
- each quadrant's zero point, limit and sky-to-noise scatter about its exposure's by the spreads
  measured between the quadrants of real exposures (``QUADRANT_*`` in ``alertlib.sky.calibration``);
  the seeing is the exposure's.

The pool of quadrants depends only on the sky's seed, so every batch of sources sees the same exposures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.sky.calibration import (
    CLOUD_LOSS_MAG,
    CLOUDY_FRACTION,
    LIMIT_DEPTH_OFFSET_MAG,
    QUADRANT_LIMIT_SPREAD,
    QUADRANT_SKY_TO_NOISE_SPREAD,
    QUADRANT_ZERO_POINT_SPREAD,
    SCIENCE_NOISE_MEDIAN,
    SCIENCE_NOISE_SPREAD,
    SEEING_MEDIAN_PX,
    SEEING_SPREAD,
    TEMPLATE_SKY_SPREAD,
    TEMPLATE_SKY_TO_NOISE,
    ZERO_POINT_MEDIAN,
    ZERO_POINT_SPREAD,
)
from alertlib.sky.distributions import lognormal

QUADRANTS_PER_SIDE = 8  # 4 x 4 CCDs of 2 x 2 readout quadrants
QUADRANT_DEG = 0.86  # a quadrant's side: 3072 pixels of 1.01 arcsec
# The columns an exposure table gives: when (jd), band (fid), pointing (ra, dec, degrees), seeing
# (fwhm_px), zero point, difference limit (mag) and background over pixel noise of the science image.
EXPOSURE_COLUMNS = ("jd", "fid", "ra", "dec", "fwhm_px", "magzpsci", "diffmaglim", "sky_to_noise")


def psf_fit_error(noise, fwhm) -> np.ndarray:
    """The PSF-fit flux error (counts) of a faint source on pixel noise ``noise`` with seeing ``fwhm`` (pixels).

    ZTF's errors, and the limits derived from them, exceed the white-noise error of a Gaussian PSF
    of the candidate's FWHM on the cutout's pixel noise (``noise * sqrt(4 pi) * sigma``) by
    ``LIMIT_DEPTH_OFFSET_MAG`` (measured on the packets: the PSF's wings, correlated noise, the
    reference's noise in the subtraction).
    """
    sigma = np.asarray(fwhm) / 2.3548
    return 10 ** (0.4 * LIMIT_DEPTH_OFFSET_MAG) * np.asarray(noise) * np.sqrt(4 * np.pi) * sigma


def difference_limit(zero_point, noise, fwhm) -> np.ndarray:
    """The 5-sigma limit (mag) of a difference image: five PSF-fit errors of its sky (:func:`psf_fit_error`)."""
    return np.asarray(zero_point) - 2.5 * np.log10(5 * psf_fit_error(noise, fwhm))


def noise_for_limit(zero_point, limit, fwhm) -> np.ndarray:
    """The pixel noise that gives a difference image the 5-sigma ``limit`` (the inverse of :func:`difference_limit`)."""
    return 10 ** (-0.4 * (np.asarray(limit) - np.asarray(zero_point))) / 5 / psf_fit_error(1.0, fwhm)


def draw_exposures(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """``n`` exposures drawn from the survey's conditions, as every alert's epoch is by default
    (:func:`alertlib.sky.observing.observe_sources`): a table with :data:`EXPOSURE_COLUMNS`."""
    fid = rng.choice([1, 2], n)
    noise = lognormal(rng, SCIENCE_NOISE_MEDIAN, SCIENCE_NOISE_SPREAD, n)
    fwhm = np.clip(lognormal(rng, SEEING_MEDIAN_PX, SEEING_SPREAD, n), 1.0, 6.0)
    cloud_loss = np.where(rng.random(n) < CLOUDY_FRACTION, rng.uniform(*CLOUD_LOSS_MAG, n), 0.0)
    zero_point = rng.normal(ZERO_POINT_MEDIAN, ZERO_POINT_SPREAD, n) - cloud_loss
    template_sky = lognormal(rng, 1.0, TEMPLATE_SKY_SPREAD, n) * np.where(
        fid == 1, TEMPLATE_SKY_TO_NOISE[1], TEMPLATE_SKY_TO_NOISE[2]
    )
    transmission = 10 ** (0.4 * (zero_point - ZERO_POINT_MEDIAN))
    return pd.DataFrame(
        {
            "jd": 2459000.5 + np.sort(rng.uniform(0.0, 150.0, n)),
            "fid": fid,
            "ra": rng.uniform(0, 360, n),
            "dec": np.degrees(np.arcsin(rng.uniform(-0.5, 1.0, n))),
            "fwhm_px": fwhm,
            "magzpsci": zero_point,
            "diffmaglim": difference_limit(zero_point, noise, fwhm),
            "sky_to_noise": template_sky * SCIENCE_NOISE_MEDIAN / noise * transmission,
        }
    )


def exposure_quadrants(seed: int, exposures: int | pd.DataFrame) -> pd.DataFrame:
    """The quadrants of a sky's exposures: one row per (exposure, quadrant), from the sky's ``seed`` only.

    ``exposures`` is a number of exposures to draw (:func:`draw_exposures`) or a table of them
    (:data:`EXPOSURE_COLUMNS`). Each quadrant has its centre on the sky, its zero point, limit and
    sky-to-noise (scattered about the exposure's), the exposure's seeing, and the pixel noise that
    gives its limit (:func:`noise_for_limit`).
    """
    rng = np.random.default_rng([int(seed), 5])
    table = draw_exposures(rng, int(exposures)) if isinstance(exposures, int | np.integer) else exposures
    missing = [c for c in EXPOSURE_COLUMNS if c not in table]
    if missing or len(table) == 0:
        raise ValueError(f"an exposure table needs rows and the columns {EXPOSURE_COLUMNS}; it lacks {missing}")
    per_exposure = QUADRANTS_PER_SIDE**2
    exposure = np.repeat(np.arange(len(table)), per_exposure)
    quadrant = np.tile(np.arange(per_exposure), len(table))
    row = table.reset_index(drop=True).iloc[exposure].reset_index(drop=True)
    m = len(row)
    zero_point = row["magzpsci"].to_numpy(float) + rng.normal(0.0, QUADRANT_ZERO_POINT_SPREAD, m)
    limit = row["diffmaglim"].to_numpy(float) + rng.normal(0.0, QUADRANT_LIMIT_SPREAD, m)
    offset = (np.stack([quadrant % QUADRANTS_PER_SIDE, quadrant // QUADRANTS_PER_SIDE]) - 3.5) * QUADRANT_DEG
    dec = np.clip(row["dec"].to_numpy(float) + offset[1], -89.0, 89.0)
    return pd.DataFrame(
        {
            "exposure": exposure,
            "quadrant": quadrant,
            "jd": row["jd"].to_numpy(float),
            "fid": row["fid"].to_numpy().astype(np.int64),
            "ra": (row["ra"].to_numpy(float) + offset[0] / np.cos(np.radians(dec))) % 360.0,
            "dec": dec,
            "fwhm_px": row["fwhm_px"].to_numpy(float),
            "magzpsci": zero_point,
            "diffmaglim": limit,
            "noise": noise_for_limit(zero_point, limit, row["fwhm_px"].to_numpy(float)),
            "sky_to_noise": row["sky_to_noise"].to_numpy(float) * lognormal(rng, 1.0, QUADRANT_SKY_TO_NOISE_SPREAD, m),
        }
    )
