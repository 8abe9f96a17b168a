"""The candidate fields of each rendered alert: its photometry and its Pan-STARRS match.

``magpsf`` and ``sigmapsf`` are the PSF-fit flux measured at the alert's detection and its error (the
sky's, the photon noise, and the subtraction's residual of the source beneath). The candidate's ``nmtchps``
(Pan-STARRS objects within 30 arcsec), ``sgscore1`` and ``distpsnr1`` are those of the host or the
star on the candidate, else measured on the rendered field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from alertlib.core.vocab import PIXEL_SCALE
from alertlib.sky.calibration import FIELD_COUNT_MAG

if TYPE_CHECKING:
    from alertlib.sky.triplets import Exposures, Scene


def _photometry(alerts: pd.DataFrame, exposures: Exposures) -> tuple[np.ndarray, np.ndarray]:
    """``magpsf`` and ``sigmapsf`` of each alert: the PSF-fit flux measured at its detection and its
    error (the sky's, the photon noise of the change and what sits beneath it, the subtraction's
    residual of a variable source: :func:`alertlib.sky.observing.observe_sources`)."""
    measured_flux = alerts["measured_flux"].to_numpy()
    magpsf = exposures.zp - 2.5 * np.log10(measured_flux)
    sigmapsf = 1.0857 * alerts["flux_error"].to_numpy() / measured_flux
    return magpsf, sigmapsf


def _pan_starrs_match(
    rng: np.random.Generator, sources: pd.DataFrame, scene: Scene
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per source: ``sgscore1``, ``distpsnr1`` and ``nmtchps`` of the nearest Pan-STARRS object.

    The nearest Pan-STARRS source is the host (galaxy-like score) or the star on the candidate, else
    a random field object.
    """
    n_src = len(sources)
    field = scene.field
    host_mag_src = sources["host_mag"].to_numpy()
    host_in_ps1 = sources["has_host"].to_numpy() & (np.nan_to_num(host_mag_src, nan=99) < 21.5)
    offset = np.hypot(scene.offset_x, scene.offset_y)
    sg_host = rng.beta(1.2, 8.0, n_src)
    sg_star = rng.uniform(0.85, 1.0, n_src)
    # Field objects Pan-STARRS would list: brighter than FIELD_COUNT_MAG within 30 arcsec.
    owner = field["owner"].to_numpy()
    field_distance = (
        np.hypot(field["x"].to_numpy() - scene.cand_x[owner], field["y"].to_numpy() - scene.cand_y[owner]) * PIXEL_SCALE
    )
    listed = (field["mag_r"].to_numpy() < FIELD_COUNT_MAG) & (field_distance < 30.0)
    nmtchps = np.bincount(owner[listed], minlength=n_src) + host_in_ps1 * (offset < 30.0) + scene.central_star
    nearest = np.full(n_src, np.inf)
    np.minimum.at(nearest, owner[listed], field_distance[listed])
    nearest_is_galaxy = np.zeros(n_src, dtype=bool)
    match = listed & (field_distance == nearest[owner])
    nearest_is_galaxy[owner[match]] = field["galaxy"].to_numpy()[match]
    # The nearest listed field object, or none (ZTF writes -999).
    sg_field = np.where(
        np.isfinite(nearest),
        np.where(nearest_is_galaxy, rng.uniform(0, 0.4, n_src), rng.uniform(0.7, 1.0, n_src)),
        -999.0,
    )
    dist_field = np.where(np.isfinite(nearest), nearest, -999.0)
    sgscore = np.select([host_in_ps1, scene.central_star], [sg_host, sg_star], sg_field)
    distpsnr = np.select(
        [host_in_ps1, scene.central_star],
        [offset + np.abs(rng.normal(0, 0.1, n_src)), np.abs(rng.normal(0, 0.15, n_src))],
        dist_field,
    )
    return sgscore, distpsnr, nmtchps


def candidate_fields(
    rng: np.random.Generator,
    sources: pd.DataFrame,
    alerts: pd.DataFrame,
    scene: Scene,
    exposures: Exposures,
    trail_length: np.ndarray,
) -> pd.DataFrame:
    """Per-alert measurements that go into the candidate table (magpsf, sigmapsf, fwhm, sgscore1, ...).

    ``scene``, ``exposures`` and ``trail_length`` (asteroids' trails, pixels) are those
    :func:`alertlib.sky.triplets.render_batch` rendered the alerts with.
    """
    n_alerts = len(alerts)
    src = exposures.src
    magpsf, sigmapsf = _photometry(alerts, exposures)
    sgscore, distpsnr, nmtchps = _pan_starrs_match(rng, sources, scene)
    compact = np.isin(exposures.bogus_kind, ["cosmic_ray", "hot_pixel"])
    return pd.DataFrame(
        {
            "magpsf": magpsf,
            "sigmapsf": sigmapsf,
            "fwhm": np.where(
                compact,
                rng.uniform(0.6, 1.3, n_alerts),
                exposures.fwhm * np.exp(rng.normal(0, 0.05, n_alerts)) + trail_length * 0.5,
            ),
            "sgscore1": sgscore[src],
            "distpsnr1": distpsnr[src],
            "nmtchps": nmtchps[src],
            "host_offset_arcsec": np.hypot(scene.offset_x, scene.offset_y)[src],
            "reference_fwhm": exposures.ref_fwhm,
        }
    )
