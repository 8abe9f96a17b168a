"""Observing the sources: light curves sampled at random epochs, detections, and each alert's exposure.

Each source has a light curve, observed at several epochs; each epoch with a detection gives one
alert. Variable stars and AGN are detected fading below their reference brightness as well as rising
above it: such a negative subtraction has ``isdiffpos`` "f". Every epoch has its own conditions
(band, pixel noise, seeing, zero point), some taken through cloud (a lower zero point, and a patchy
calibration error on every static source); its difference limit follows from them, as ZTF's
``diffmaglim`` follows from its image (:func:`alertlib.sky.exposures.difference_limit`). A detection
is a PSF-fit flux measured at five times its error or more (ZTF's error model:
:func:`alertlib.sky.exposures.psf_fit_error`), so each epoch's noise sets the faint end of the
alerts. :func:`observe_sources` runs the steps in order: epochs and their conditions (in a sky of
exposures, one of them its exposure's: :mod:`alertlib.sky.exposures`), difference magnitudes by
class, detections, the alerts kept, and each alert's background.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.sky.calibration import (
    CLOUD_CALIBRATION_ERROR,
    CLOUD_LOSS_MAG,
    CLOUDY_FRACTION,
    GAIN,
    LOCAL_NOISE_SPREAD,
    SCIENCE_NOISE_MEDIAN,
    SCIENCE_NOISE_SPREAD,
    SEEING_MEDIAN_PX,
    SEEING_SPREAD,
    SUBTRACTION_RESIDUAL,
    TEMPLATE_SKY_SPREAD,
    TEMPLATE_SKY_TO_NOISE,
    ZERO_POINT_MEDIAN,
    ZERO_POINT_SPREAD,
)
from alertlib.sky.distributions import lognormal
from alertlib.sky.exposures import difference_limit, psf_fit_error
from alertlib.sky.sources import central_mag


def _peak_normalised_light_curve(t, peak_time, rise, fall):
    """A rise-and-decline shape with maximum 1 at ``peak_time`` (a Bazin-like curve)."""
    x = t - peak_time
    shape = np.exp(-x / fall) / (1 + np.exp(-x / rise))
    # The maximum of this shape sits at x* = rise * log(fall / rise - 1); normalise by it.
    x_star = rise * np.log(np.maximum(fall / rise - 1, 1.0001))
    return shape / (np.exp(-x_star / fall) / (1 + np.exp(-x_star / rise)))


def _epoch_conditions(rng: np.random.Generator, n: int, epochs: int) -> dict[str, np.ndarray]:
    """Epoch times (n, epochs), sorted, with each epoch's band, noise, seeing, zero point and limit,
    cloud loss and calibration error."""
    times = np.sort(rng.uniform(-20.0, 150.0, (n, epochs)), axis=1)
    # Cloud (CLOUDY_FRACTION of the epochs): the zero point, and so the limit, is lower by the loss,
    # and the calibration is wrong by a patchy-transparency error that a star's measured change includes.
    cloudy = rng.random((n, epochs)) < CLOUDY_FRACTION
    cloud_loss = np.where(cloudy, rng.uniform(*CLOUD_LOSS_MAG, (n, epochs)), 0.0)
    calibration_error = rng.normal(0.0, 1.0, (n, epochs)) * CLOUD_CALIBRATION_ERROR * cloud_loss
    noise = lognormal(rng, SCIENCE_NOISE_MEDIAN, SCIENCE_NOISE_SPREAD, (n, epochs))
    fwhm = np.clip(lognormal(rng, SEEING_MEDIAN_PX, SEEING_SPREAD, (n, epochs)), 1.0, 6.0)
    # Transparency: the zero point scatters from night to night, and drops by the cloud's loss.
    zero_point = rng.normal(ZERO_POINT_MEDIAN, ZERO_POINT_SPREAD, (n, epochs)) - cloud_loss
    return {
        "times": times,
        "fid": rng.choice([1, 2], (n, epochs)),
        "noise": noise,
        "fwhm_px": fwhm,
        "psf_beta": rng.uniform(2.2, 4.0, (n, epochs)).round(1),
        "magzpsci": zero_point,
        "limit": difference_limit(zero_point, noise, fwhm),
        "cloud_loss": cloud_loss,
        "calibration_error": calibration_error,
    }


def _difference_magnitudes(
    rng: np.random.Generator, sources: pd.DataFrame, epoch: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Difference magnitude (of the flux added since the reference) and its sign, by class.

    Bogus detections and asteroids are one-off magnitudes; a noise fluctuation (bogus kind
    ``noise``) lies about the epoch's limit, where the measurement's own scatter decides.
    """
    times, calibration_error = epoch["times"], epoch["calibration_error"]
    n, epochs = times.shape
    cls = sources["class_index"].to_numpy()
    star_flux_mag = sources["star_mag"].to_numpy()[:, None]
    light = _peak_normalised_light_curve(
        times,
        sources["peak_time"].to_numpy()[:, None],
        sources["rise_days"].to_numpy()[:, None],
        sources["fall_days"].to_numpy()[:, None],
    )
    transient_mag = sources["peakmag_true"].to_numpy()[:, None] - 2.5 * np.log10(np.maximum(light, 1e-12))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    periodic = np.sin(2 * np.pi * times / sources["period_days"].to_numpy()[:, None] + phase)
    var_flux = sources["variability"].to_numpy()[:, None] * periodic + calibration_error  # relative to mean
    var_mag = star_flux_mag - 2.5 * np.log10(np.maximum(np.abs(var_flux), 1e-12))
    nucleus_mag = sources["nucleus_mag"].to_numpy()[:, None]
    slow = np.sin(2 * np.pi * times / 97.0 + phase) + 0.5 * np.sin(2 * np.pi * times / 23.0 + 2 * phase)
    agn_flux = 0.25 * sources["variability"].to_numpy()[:, None] * slow + calibration_error
    agn_mag = nucleus_mag - 2.5 * np.log10(np.maximum(np.abs(agn_flux), 1e-12))
    one_off_mag = rng.uniform(16.5, 20.3, (n, epochs))  # asteroids and bogus detections
    fluctuation = (sources["bogus_kind"].to_numpy() == "noise")[:, None]
    one_off_mag = np.where(fluctuation, epoch["limit"] + rng.uniform(-0.5, 0.3, (n, epochs)), one_off_mag)
    c = cls[:, None]
    difference_mag = np.select([c <= 1, c == 2, c == 3], [transient_mag, agn_mag, var_mag], one_off_mag)
    difference_sign = np.select([c == 2, c == 3], [np.sign(agn_flux), np.sign(var_flux)], 1.0)
    return difference_mag, difference_sign


def _detections(
    rng: np.random.Generator,
    sources: pd.DataFrame,
    epoch: dict[str, np.ndarray],
    difference_mag: np.ndarray,
    at_exposure: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Detected epochs (n, epochs): the measured PSF-fit flux five errors or more above zero.

    The error (ZTF's, :func:`alertlib.sky.exposures.psf_fit_error`) is the sky's, the photon noise of the change and of
    what sits beneath it (the variable star or AGN nucleus whose change is measured, the star
    behind a bogus residual: :func:`alertlib.sky.sources.central_mag`), and the subtraction's
    residual of a variable source, a fraction of its flux scattering from epoch to epoch
    (SUBTRACTION_RESIDUAL: in real stream alerts on stars the PSF-fit error is about 2% of the
    star's flux, far above its photon noise). Returns the measured flux and its error, the residual
    fraction, whether detected, and the detections so far (``ndethist``).
    """
    n, epochs = difference_mag.shape
    cls = sources["class_index"].to_numpy()
    zero_point = epoch["magzpsci"]
    change_flux = 10 ** (-0.4 * (difference_mag - zero_point))
    variable = np.isin(cls, [2, 3])[:, None]
    beneath_flux = 10 ** (-0.4 * (central_mag(sources)[:, None] - zero_point))
    residual = np.where(variable, SUBTRACTION_RESIDUAL * lognormal(rng, 1.0, 0.5, (n, epochs)), 0.0)
    # The limit is the image's; the noise at each candidate scatters about the image's (LOCAL_NOISE_SPREAD).
    local = lognormal(rng, 1.0, LOCAL_NOISE_SPREAD, (n, epochs))
    error = np.sqrt(
        (local * psf_fit_error(epoch["noise"], epoch["fwhm_px"])) ** 2
        + (change_flux + beneath_flux) / GAIN
        + (residual * beneath_flux) ** 2
    )
    measured = change_flux + rng.normal(0.0, 1.0, (n, epochs)) * error
    detected = measured >= 5 * error
    # Asteroids are seen once; bogus detections of a source recur a few times (in a sky of
    # exposures: at its exposure).
    one_off = cls >= 4
    rank = np.cumsum(detected, axis=1)
    keep_one_off = np.where(cls[:, None] == 4, rank == 1, rank <= rng.integers(1, 4, (n, 1)))
    if at_exposure is not None:
        keep_one_off = at_exposure
    detected = np.where(one_off[:, None], detected & keep_one_off, detected)
    ndethist = np.cumsum(detected, axis=1)
    # Variable stars and AGN have long detection histories before the window.
    ndethist = ndethist + np.where(np.isin(cls, [2, 3]), rng.integers(5, 200, n), 0)[:, None]
    return {
        "measured_flux": measured,
        "flux_error": error,
        "residual": residual,
        "detected": detected,
        "ndethist": ndethist,
    }


def _kept_alerts(rng: np.random.Generator, detected: np.ndarray, max_alerts: int) -> tuple[np.ndarray, np.ndarray]:
    """(source, epoch) of the alerts kept: at most ``max_alerts`` per source, chosen at random, in order."""
    rows, cols = np.nonzero(detected)
    priority = rng.random(rows.size)
    order = np.lexsort((priority, rows))
    rows, cols = rows[order], cols[order]
    within = np.arange(rows.size) - np.searchsorted(rows, rows)
    keep = within < max_alerts
    rows, cols = rows[keep], cols[keep]
    reorder = np.lexsort((cols, rows))
    return rows[reorder], cols[reorder]


def _at_exposures(
    rng: np.random.Generator, sources: pd.DataFrame, epoch: dict[str, np.ndarray], quadrants: pd.DataFrame
) -> np.ndarray:
    """In a sky of exposures: one epoch of each source, at random, is its quadrant's exposure.

    That epoch takes the quadrant's band, noise, seeing, zero point and limit (and, through cloud,
    the patchy calibration error of a loss below the median zero point); the others stay the
    source's history. Returns where the exposures are (n, epochs).
    """
    n, epochs = epoch["times"].shape
    rows, column = np.arange(n), rng.integers(0, epochs, n)
    quadrant = quadrants.iloc[sources["quadrant_row"].to_numpy()]
    for key, source in (("fid", "fid"), ("noise", "noise"), ("fwhm_px", "fwhm_px"), ("magzpsci", "magzpsci")):
        epoch[key][rows, column] = quadrant[source].to_numpy()
    epoch["limit"][rows, column] = quadrant["diffmaglim"].to_numpy()
    loss = ZERO_POINT_MEDIAN - quadrant["magzpsci"].to_numpy()
    loss = np.where(loss > CLOUD_LOSS_MAG[0], loss, 0.0)
    epoch["cloud_loss"][rows, column] = loss
    epoch["calibration_error"][rows, column] = rng.normal(0.0, 1.0, n) * CLOUD_CALIBRATION_ERROR * loss
    at_exposure = np.zeros((n, epochs), dtype=bool)
    at_exposure[rows, column] = True
    return at_exposure


def _template_sky(rng: np.random.Generator, n: int) -> np.ndarray:
    """The template's sky per source and band (g, r), at the nominal zero point (n, 2)."""
    template_sky = SCIENCE_NOISE_MEDIAN * lognormal(rng, 1.0, TEMPLATE_SKY_SPREAD, (n, 2))
    return template_sky * np.array([TEMPLATE_SKY_TO_NOISE[1], TEMPLATE_SKY_TO_NOISE[2]])


def observe_sources(
    rng: np.random.Generator,
    sources: pd.DataFrame,
    epochs: int = 40,
    max_alerts: int = 8,
    quadrants: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Observe each source at ``epochs`` random times; keep the detections as alerts.

    A detection is a difference flux measured at five PSF-fit errors or more, of either sign:
    variable stars and AGN fade below their brightness in the reference (a co-add of many epochs,
    near their mean) as often as they rise above it, and ZTF alerts on those negative subtractions
    too (``isdiffpos`` "f": 67% of the real packets in ../shared/data, most of them stars, by
    ``alertlib.sky.packet_calibration.stream_calibration``). Transients, asteroids and bogus detections add flux.

    Returns one row per alert with the epoch's band, conditions and limit, true difference magnitude
    (of the flux's absolute value), its sign (``difference_sign``, +1 or -1), the measured flux and
    its error (counts), and the number of detections so far (``ndethist``). At most ``max_alerts``
    random detections per source are kept, so bright, long-lived sources do not swamp the set. Sets
    the source's ``peakmag`` (the brightest detection).

    In a sky of exposures (``quadrants``: :func:`alertlib.sky.exposures.exposure_quadrants`, and
    sources drawn in them), each source gives at most one alert: its detection in its quadrant's
    exposure (:func:`_at_exposures`), whose background is the quadrant's sky-to-noise.
    """
    n = len(sources)
    cls = sources["class_index"].to_numpy()
    epoch = _epoch_conditions(rng, n, epochs)
    at_exposure = None if quadrants is None else _at_exposures(rng, sources, epoch, quadrants)
    times = epoch["times"]
    difference_mag, difference_sign = _difference_magnitudes(rng, sources, epoch)
    detection = _detections(rng, sources, epoch, difference_mag, at_exposure)
    detected = detection["detected"]
    fid_all, zero_point = epoch["fid"], epoch["magzpsci"]
    if at_exposure is None:
        rows, cols = _kept_alerts(rng, detected, max_alerts)
        template_sky = _template_sky(rng, n)[rows, fid_all[rows, cols] - 1]
        jd = 2459000.5 + times[rows, cols]
    else:
        rows, cols = np.nonzero(detected & at_exposure)
        quadrant = quadrants.iloc[sources["quadrant_row"].to_numpy()[rows]]
        # The quadrant's background, at the nominal zero point.
        template_sky = quadrant["sky_to_noise"].to_numpy() * epoch["noise"][rows, cols]
        template_sky = template_sky / 10 ** (0.4 * (zero_point[rows, cols] - ZERO_POINT_MEDIAN))
        jd = quadrant["jd"].to_numpy()
    fid = fid_all[rows, cols]
    transmission = 10 ** (0.4 * (zero_point[rows, cols] - ZERO_POINT_MEDIAN))
    level = template_sky * transmission
    alerts = pd.DataFrame(
        {
            "source_index": rows,
            "jd": jd,
            "phase_days": times[rows, cols] - sources["peak_time"].to_numpy()[rows],
            "true_difference_mag": difference_mag[rows, cols],
            "difference_sign": np.where(difference_sign[rows, cols] < 0, -1, 1),
            "measured_flux": detection["measured_flux"][rows, cols],
            "flux_error": detection["flux_error"][rows, cols],
            "subtraction_residual": detection["residual"][rows, cols],
            "diffmaglim": epoch["limit"][rows, cols],
            "calibration_error": epoch["calibration_error"][rows, cols],
            "ndethist": detection["ndethist"][rows, cols],
            "fid": fid,
            "fwhm_px": epoch["fwhm_px"][rows, cols],
            "psf_beta": epoch["psf_beta"][rows, cols],
            "noise": epoch["noise"][rows, cols],
            # The science cutout's background level, and the template's (background-matched, gain-matched).
            "sky": level,
            "reference_level": level,
            # The template's own sky at the nominal zero point, and the flux scale that matches it to this exposure.
            "template_sky": template_sky,
            "transmission": transmission,
            "magzpsci": zero_point[rows, cols],
        }
    )
    # Peak magnitude as the survey measured it: the brightest detection of the whole light curve.
    observed_peak = np.where(detected, difference_mag, np.inf).min(axis=1)
    sources["peakmag"] = np.where(
        np.isin(cls, [0, 1]), np.minimum(sources["peakmag_true"], observed_peak), observed_peak
    )
    return alerts
