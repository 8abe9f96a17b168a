"""Observing the sources: light curves sampled at random epochs, detections, and each alert's exposure.

Each source has a light curve, observed at several epochs; each epoch with a detection gives one
alert. Variable stars and AGN are detected fading below their reference brightness as well as rising
above it: such a negative subtraction has ``isdiffpos`` "f". Every epoch has its own difference
limit, and some are taken through cloud (shallower, and with a patchy calibration error on every
static source). :func:`observe_sources` runs the steps in order: epochs and their conditions,
difference magnitudes by class, detections, the alerts kept, and each alert's exposure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.sky.calibration import (
    CLOUD_CALIBRATION_ERROR,
    CLOUD_LOSS_MAG,
    CLOUDY_FRACTION,
    DIFFERENCE_LIMIT_MEDIAN,
    DIFFERENCE_LIMIT_SPREAD,
    SCIENCE_NOISE_MEDIAN,
    SCIENCE_NOISE_SPREAD,
    SEEING_MEDIAN_PX,
    SEEING_SPREAD,
    SUBTRACTION_RESIDUAL,
    TEMPLATE_SKY_SPREAD,
    TEMPLATE_SKY_TO_NOISE,
    ZERO_POINT_MEDIAN,
)
from alertlib.sky.distributions import lognormal


def _peak_normalised_light_curve(t, peak_time, rise, fall):
    """A rise-and-decline shape with maximum 1 at ``peak_time`` (a Bazin-like curve)."""
    x = t - peak_time
    shape = np.exp(-x / fall) / (1 + np.exp(-x / rise))
    # The maximum of this shape sits at x* = rise * log(fall / rise - 1); normalise by it.
    x_star = rise * np.log(np.maximum(fall / rise - 1, 1.0001))
    return shape / (np.exp(-x_star / fall) / (1 + np.exp(-x_star / rise)))


def _epoch_conditions(rng: np.random.Generator, n: int, epochs: int) -> dict[str, np.ndarray]:
    """Epoch times (n, epochs), sorted, with each epoch's difference limit, cloud loss and calibration error."""
    times = np.sort(rng.uniform(-20.0, 150.0, (n, epochs)), axis=1)
    # The 5-sigma limit of each epoch's difference image: in the real packets' clear exposures its
    # median is 19.5 mag with a robust spread of 0.54 (alertlib.sky.packet_calibration.stream_calibration; 0.62 with
    # each exposure counted once), moon, seeing and airmass making most epochs shallower than ZTF's
    # best, 20.5 to 21.
    limit = rng.normal(DIFFERENCE_LIMIT_MEDIAN, DIFFERENCE_LIMIT_SPREAD, (n, epochs))
    # Cloud (CLOUDY_FRACTION of the epochs): the limit is shallower by the loss, and the calibration
    # is wrong by a patchy-transparency error that a star's measured change includes.
    cloudy = rng.random((n, epochs)) < CLOUDY_FRACTION
    cloud_loss = np.where(cloudy, rng.uniform(*CLOUD_LOSS_MAG, (n, epochs)), 0.0)
    calibration_error = rng.normal(0.0, 1.0, (n, epochs)) * CLOUD_CALIBRATION_ERROR * cloud_loss
    return {"times": times, "limit": limit, "cloud_loss": cloud_loss, "calibration_error": calibration_error}


def _difference_magnitudes(
    rng: np.random.Generator, sources: pd.DataFrame, times: np.ndarray, calibration_error: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference magnitude (of the flux added since the reference), its sign and the variable's change, by class."""
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
    host_mag = sources["host_mag"].to_numpy()[:, None]
    nucleus_mag = host_mag - 2.5 * np.log10(sources["nucleus_fraction"].to_numpy()[:, None])
    slow = np.sin(2 * np.pi * times / 97.0 + phase) + 0.5 * np.sin(2 * np.pi * times / 23.0 + 2 * phase)
    agn_flux = 0.25 * sources["variability"].to_numpy()[:, None] * slow + calibration_error
    agn_mag = nucleus_mag - 2.5 * np.log10(np.maximum(np.abs(agn_flux), 1e-12))
    one_off_mag = rng.uniform(16.5, 20.3, (n, epochs))  # asteroids and bogus detections
    c = cls[:, None]
    difference_mag = np.select([c <= 1, c == 2, c == 3], [transient_mag, agn_mag, var_mag], one_off_mag)
    difference_sign = np.select([c == 2, c == 3], [np.sign(agn_flux), np.sign(var_flux)], 1.0)
    change = np.select([c == 2, c == 3], [np.abs(agn_flux), np.abs(var_flux)], np.inf)
    return difference_mag, difference_sign, change


def _detections(
    rng: np.random.Generator, cls: np.ndarray, detectable: np.ndarray, change: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detected epochs (n, epochs), the subtraction residual of each, and the detections so far (``ndethist``).

    ``detectable`` says where the difference magnitude is brighter than the epoch's limit.
    """
    n, epochs = detectable.shape
    # A variable's change is measured on top of the source itself, whose subtraction leaves a
    # residual of a fraction of its flux (SUBTRACTION_RESIDUAL, scattering from epoch to epoch): the
    # change must also stand 5 such residuals above it, as real alerts stand 5 sigma (sigmapsf <
    # 0.22 mag in every real packet).
    residual = SUBTRACTION_RESIDUAL * lognormal(rng, 1.0, 0.5, (n, epochs))
    # Asteroids are seen once; bogus detections of a source recur a few times.
    detected = detectable & (change >= 5 * residual)
    one_off = cls >= 4
    rank = np.cumsum(detected, axis=1)
    keep_one_off = np.where(cls[:, None] == 4, rank == 1, rank <= rng.integers(1, 4, (n, 1)))
    detected = np.where(one_off[:, None], detected & keep_one_off, detected)
    ndethist = np.cumsum(detected, axis=1)
    # Variable stars and AGN have long detection histories before the window.
    ndethist = ndethist + np.where(np.isin(cls, [2, 3]), rng.integers(5, 200, n), 0)[:, None]
    return detected, residual, ndethist


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


def _exposures(rng: np.random.Generator, n: int, cloud_loss: np.ndarray) -> dict[str, np.ndarray]:
    """Each alert's exposure: band, noise, template sky, zero point and transparency, seeing.

    ``cloud_loss`` is the loss of each kept alert's epoch (m,).
    """
    m = cloud_loss.size
    noise = lognormal(rng, SCIENCE_NOISE_MEDIAN, SCIENCE_NOISE_SPREAD, m)
    fid = rng.choice([1, 2], m)
    # The template's sky per source and band (g, r), at the nominal zero point.
    template_sky = SCIENCE_NOISE_MEDIAN * lognormal(rng, 1.0, TEMPLATE_SKY_SPREAD, (n, 2))
    template_sky *= np.array([TEMPLATE_SKY_TO_NOISE[1], TEMPLATE_SKY_TO_NOISE[2]])
    # Transparency: the zero point scatters from night to night, and drops by the cloud's loss.
    clear_zp = rng.normal(ZERO_POINT_MEDIAN, 0.15, m)
    magzpsci = clear_zp - cloud_loss
    transmission = 10 ** (0.4 * (magzpsci - ZERO_POINT_MEDIAN))
    return {
        "noise": noise,
        "fid": fid,
        "template_sky_by_band": template_sky,
        "magzpsci": magzpsci,
        "transmission": transmission,
        "fwhm_px": np.clip(lognormal(rng, SEEING_MEDIAN_PX, SEEING_SPREAD, m), 1.0, 6.0),
        "psf_beta": rng.uniform(2.2, 4.0, m).round(1),
    }


def observe_sources(
    rng: np.random.Generator, sources: pd.DataFrame, epochs: int = 40, max_alerts: int = 8
) -> pd.DataFrame:
    """Observe each source at ``epochs`` random times; keep the detections as alerts.

    A detection is a difference flux beyond the epoch's limit of either sign: variable stars and AGN
    fade below their brightness in the reference (a co-add of many epochs, near their mean) as often
    as they rise above it, and ZTF alerts on those negative subtractions too (``isdiffpos`` "f": 67%
    of the real packets in ../shared/data, most of them stars, by
    ``alertlib.sky.packet_calibration.stream_calibration``). Transients, asteroids and bogus detections add flux.

    Returns one row per alert with the epoch's band, conditions, true difference magnitude (of the
    flux's absolute value), its sign (``difference_sign``, +1 or -1) and the number of detections
    so far (``ndethist``). At most ``max_alerts`` random detections per source are kept, so bright,
    long-lived sources do not swamp the set. Sets the source's ``peakmag`` (the brightest detection).
    """
    n = len(sources)
    cls = sources["class_index"].to_numpy()
    epoch = _epoch_conditions(rng, n, epochs)
    times, cloud_loss = epoch["times"], epoch["cloud_loss"]
    difference_mag, difference_sign, change = _difference_magnitudes(rng, sources, times, epoch["calibration_error"])
    detectable = difference_mag < epoch["limit"] - cloud_loss
    detected, residual, ndethist = _detections(rng, cls, detectable, change)
    rows, cols = _kept_alerts(rng, detected, max_alerts)
    exposure = _exposures(rng, n, cloud_loss[rows, cols])
    fid = exposure["fid"]
    level = exposure["template_sky_by_band"][rows, fid - 1] * exposure["transmission"]
    alerts = pd.DataFrame(
        {
            "source_index": rows,
            "jd": 2459000.5 + times[rows, cols],
            "phase_days": times[rows, cols] - sources["peak_time"].to_numpy()[rows],
            "true_difference_mag": difference_mag[rows, cols],
            "difference_sign": np.where(difference_sign[rows, cols] < 0, -1, 1),
            "subtraction_residual": np.where(np.isin(cls[rows], [2, 3]), residual[rows, cols], 0.0),
            "diffmaglim": epoch["limit"][rows, cols] - cloud_loss[rows, cols],
            "calibration_error": epoch["calibration_error"][rows, cols],
            "ndethist": ndethist[rows, cols],
            "fid": fid,
            "fwhm_px": exposure["fwhm_px"],
            "psf_beta": exposure["psf_beta"],
            "noise": exposure["noise"],
            # The science cutout's background level, and the template's (background-matched, gain-matched).
            "sky": level,
            "reference_level": level,
            # The template's own sky at the nominal zero point, and the flux scale that matches it to this exposure.
            "template_sky": exposure["template_sky_by_band"][rows, fid - 1],
            "transmission": exposure["transmission"],
            "magzpsci": exposure["magzpsci"],
        }
    )
    # Peak magnitude as the survey measured it: the brightest detection of the whole light curve.
    observed_peak = np.where(detected, difference_mag, np.inf).min(axis=1)
    sources["peakmag"] = np.where(
        np.isin(cls, [0, 1]), np.minimum(sources["peakmag_true"], observed_peak), observed_peak
    )
    return alerts
