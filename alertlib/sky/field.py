"""The field around every candidate: stars of the Milky Way and faint galaxies, far below the detection limit.

The field's galactic latitude and longitude set its density of stars (:func:`field_star_density`,
with a lognormal field-to-field scatter drawn with the source) and its dust extinction
(:func:`field_extinction`). Every canvas holds the field's stars (power-law number counts, far below
the detection limit) and faint galaxies (small round Gaussians), in the reference and science images
alike (:func:`draw_field`, :func:`field_spectra`): unresolved, they add crowding ("confusion")
structure to both, which the subtraction removes up to its noise and PSF errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.coordinates import SkyCoord

from alertlib.core.vocab import PIXEL_SCALE
from alertlib.sky import render
from alertlib.sky.calibration import (
    FIELD_BULGE,
    FIELD_COUNT_MAG,
    FIELD_DISK_CORE,
    FIELD_EXTINCTION,
    FIELD_MAX_EXTINCTION,
    FIELD_STARS_POLE,
    GALAXY_COLOURS,
    GALAXY_COUNT_SLOPE,
    GALAXY_COUNTS_22,
    GALAXY_MAGS,
    GALAXY_SIGMAS_PX,
    GALAXY_SIZE_SPLIT_MAG,
    STAR_COLOURS,
    STAR_COUNT_SLOPE,
    STAR_MAGS,
)
from alertlib.sky.canvas import CANVAS, PIXEL
from alertlib.sky.distributions import power_law_magnitudes


def galactic_coordinates(ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """Galactic longitude and latitude (degrees) of ICRS ``ra``, ``dec`` (degrees, arrays of any shape)."""
    galactic = SkyCoord(
        ra=np.asarray(ra, dtype=np.float64) * u.deg, dec=np.asarray(dec, dtype=np.float64) * u.deg
    ).galactic
    return galactic.l.to_value(u.deg), galactic.b.to_value(u.deg)


def field_extinction(latitude) -> np.ndarray:
    """r-band extinction (mag) through the Milky Way's dust at galactic ``latitude`` (degrees)."""
    sin_b = np.maximum(np.abs(np.sin(np.radians(latitude))), 1e-3)
    return np.minimum(FIELD_EXTINCTION / sin_b, FIELD_MAX_EXTINCTION)


def field_star_density(longitude, latitude) -> np.ndarray:
    """Mean density of stars brighter than ``FIELD_COUNT_MAG`` (per arcmin^2) at galactic (l, b), degrees."""
    sin_b = np.sin(np.radians(latitude))
    towards_centre = np.exp(-(1 - np.cos(np.radians(longitude))) / 0.3)
    disk = FIELD_STARS_POLE / (sin_b**2 + FIELD_DISK_CORE**2) * (1 + FIELD_BULGE * towards_centre)
    return disk * 10 ** (-STAR_COUNT_SLOPE * field_extinction(latitude))


def draw_field(rng: np.random.Generator, star_density, extinction) -> pd.DataFrame:
    """The field objects on each source's canvas: one row per star or galaxy.

    ``star_density`` (per arcmin^2, stars brighter than ``FIELD_COUNT_MAG``) and ``extinction``
    (r-band, mag) are per source. Columns: ``owner`` (source row), ``x``, ``y`` (canvas pixels),
    ``mag_g``, ``mag_r``, ``galaxy`` (bool).
    """
    star_density = np.asarray(star_density, dtype=np.float64)
    extinction = np.asarray(extinction, dtype=np.float64)
    area_arcmin2 = (CANVAS * PIXEL_SCALE / 60.0) ** 2
    star_low, star_high = 10 ** (STAR_COUNT_SLOPE * (np.asarray(STAR_MAGS) - FIELD_COUNT_MAG))
    n_stars = rng.poisson(star_density * area_arcmin2 * (star_high - star_low))
    galaxy_low, galaxy_high = 10 ** (GALAXY_COUNT_SLOPE * (np.asarray(GALAXY_MAGS) - 22.0))
    mean_galaxies = (
        GALAXY_COUNTS_22 / 3600.0 * area_arcmin2 * (galaxy_high - galaxy_low) / (GALAXY_COUNT_SLOPE * np.log(10))
    )
    n_galaxies = rng.poisson(np.full(star_density.shape, mean_galaxies))
    owner = np.concatenate(
        [np.repeat(np.arange(star_density.size), n_stars), np.repeat(np.arange(star_density.size), n_galaxies)]
    )
    total_stars, total = int(n_stars.sum()), int(n_stars.sum() + n_galaxies.sum())
    galaxy = np.arange(total) >= total_stars
    # Star counts already include the dust (the density does); galaxies lie behind all of it.
    mag_r = np.concatenate(
        [
            power_law_magnitudes(rng, STAR_COUNT_SLOPE, STAR_MAGS, total_stars),
            power_law_magnitudes(rng, GALAXY_COUNT_SLOPE, GALAXY_MAGS, total - total_stars)
            + extinction[owner[total_stars:]],
        ]
    )
    colour = np.where(galaxy, rng.uniform(*GALAXY_COLOURS, total), rng.uniform(*STAR_COLOURS, total))
    return pd.DataFrame(
        {
            "owner": owner,
            "x": rng.uniform(0, CANVAS, total),
            "y": rng.uniform(0, CANVAS, total),
            "mag_g": mag_r + colour,
            "mag_r": mag_r,
            "galaxy": galaxy,
        }
    )


def field_spectra(field: pd.DataFrame, n_src: int) -> np.ndarray:
    """Fourier spectra (n_src, 2 bands, H, W//2+1) of the field objects, in flux units of magnitude 0.

    Stars are points placed to half a pixel on a grid twice as fine as the canvas, whose
    low-frequency Fourier coefficients are exactly those of points at those positions on the canvas;
    galaxies are round Gaussians (two sizes) placed to the nearest pixel. Both are pixel-integrated.
    """
    owner = field["owner"].to_numpy()
    galaxy = field["galaxy"].to_numpy()
    x, y = field["x"].to_numpy(), field["y"].to_numpy()
    flux = 10 ** (-0.4 * np.stack([field["mag_g"].to_numpy(), field["mag_r"].to_numpy()]))  # (band, object)
    spectra = np.zeros((n_src, 2, CANVAS, CANVAS // 2 + 1), dtype=np.complex64)
    if owner.size == 0:
        return spectra
    fine = 2 * CANVAS
    star = ~galaxy
    col = np.rint(2 * x[star]).astype(np.int64) % fine
    row = np.rint(2 * y[star]).astype(np.int64) % fine
    grid = np.zeros((n_src, 2, fine, fine), dtype=np.float32)
    for band in range(2):
        np.add.at(grid, (owner[star], band, row, col), flux[band, star].astype(np.float32))
    fine_spectrum = render.rfft2(grid)
    half = CANVAS // 2
    spectra[:, :, :half] = fine_spectrum[:, :, :half, : half + 1]
    spectra[:, :, half:] = fine_spectrum[:, :, fine - half :, : half + 1]
    # Galaxies: two size classes, each on the canvas grid, blurred by its Gaussian profile.
    size_class = (field["mag_r"].to_numpy()[galaxy] >= GALAXY_SIZE_SPLIT_MAG).astype(np.int64)
    col = np.rint(x[galaxy]).astype(np.int64) % CANVAS
    row = np.rint(y[galaxy]).astype(np.int64) % CANVAS
    grid = np.zeros((2, n_src, 2, CANVAS, CANVAS), dtype=np.float32)
    for band in range(2):
        np.add.at(grid, (size_class, owner[galaxy], band, row, col), flux[band, galaxy].astype(np.float32))
    galaxy_spectrum = render.rfft2(grid)
    profiles = render.gaussian_transfer(np.asarray(GALAXY_SIGMAS_PX), (CANVAS, CANVAS))
    spectra += (galaxy_spectrum * profiles[:, None, None]).sum(axis=0)
    return spectra * PIXEL
