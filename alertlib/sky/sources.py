"""Alert sources: their class, brightness, host galaxy, variability and place on the sky.

A *source* is a supernova-like transient in a host galaxy, a nuclear transient, an AGN, a variable
star, an asteroid or a bogus detection. Hosts are placed at a redshift that also sets the
transient's brightness, so the host's apparent size and brightness carry information about the
label. Each source lies in a field of the sky: variable stars where the Milky Way's stars are
(weighted towards the galactic plane by the star density), extragalactic transients where the dust
lets them through (``alertlib.sky.field``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM

from alertlib.core.vocab import ALERT_CLASSES
from alertlib.sky.calibration import (
    BOGUS_FRACTIONS,
    EXPOSURE_BOGUS_FRACTION,
    FIELD_DENSITY_SPREAD,
    REFERENCE_FWHM_MEDIAN_PX,
    VARIABILITY_INDEX,
    VARIABILITY_RANGE,
    VARIABLE_STAR_MAGS,
    VARIABLE_STAR_SLOPE,
    VARSTAR_DENSITY_POWER,
)
from alertlib.sky.distributions import lognormal, power_law, power_law_magnitudes
from alertlib.sky.exposures import QUADRANT_DEG
from alertlib.sky.field import field_extinction, field_star_density, galactic_coordinates


def _mix(**counts: float) -> tuple[float, ...]:
    """Fractions of ``ALERT_CLASSES`` from counts (or shares) by class name; missing classes get none."""
    total = sum(counts.values())
    return tuple(counts.get(name, 0) / total for name in ALERT_CLASSES)


_STREAM = {"sn": 0.08, "nuclear": 0.01, "agn": 0.04, "varstar": 0.75, "asteroid": 0.03, "bogus": 0.09}
# Source mixes, in the order of ALERT_CLASSES:
# - "bts" for the study (a BTS-like candidate stream, rich in extragalactic transients);
# - "ztf-stream" like the unfiltered ZTF alert stream (mostly variable stars), for realism checks
#   against random public packets (82% of those match a Pan-STARRS star within 1.5 arcsec);
# - "ztf-exposure" like every candidate of one exposure: the stream's classes with the bogus share
#   matched to the development set ztf-one-exposure-2018 (EXPOSURE_BOGUS_FRACTION: a sky of
#   exposures then has its share of alerts with rb < 0.5);
# - "ztf-crossmatched" the labelled objects of the reporting set fink-ztf-crossmatched (class
#   counts from alertlib.io.weaklabels.label_summary: 15 TNS transients, 44 variable stars, 1 AGN,
#   8 known asteroids), for realism reports only.
CLASS_MIXES = {
    "bts": (0.40, 0.05, 0.07, 0.15, 0.09, 0.24),
    "ztf-stream": tuple(_STREAM.values()),
    "ztf-exposure": _mix(
        **{k: (1 - EXPOSURE_BOGUS_FRACTION) * v / (1 - _STREAM["bogus"]) for k, v in _STREAM.items() if k != "bogus"},
        bogus=EXPOSURE_BOGUS_FRACTION,
    ),
    "ztf-crossmatched": _mix(sn=15, agn=1, varstar=44, asteroid=8),
}
BOGUS_KINDS = tuple(BOGUS_FRACTIONS)  # dipole, psf_mismatch, cosmic_ray, hot_pixel, bad_column, ghost, noise
_BOGUS_SHARES = np.asarray(list(BOGUS_FRACTIONS.values())) / sum(BOGUS_FRACTIONS.values())
# Bogus kinds that are residuals of a star on the candidate, and those of them on a bright star (12.5-15.5 mag).
STAR_BOGUS_KINDS = ("dipole", "psf_mismatch", "ghost")
BRIGHT_STAR_BOGUS_KINDS = ("psf_mismatch", "ghost")
# The transients' and hosts' absolute magnitudes (SN Ia -19.3, hosts -20.6) are on the H0 = 70 scale:
# distances from that flat Lambda-CDM cosmology (Om0 = 0.3, no radiation).
COSMOLOGY = FlatLambdaCDM(H0=70.0, Om0=0.3)
# Each source's field is drawn by weighting SKY_CANDIDATES uniform positions on the ZTF sky (dec > -30).
SKY_CANDIDATES = 16


def draw_sources(
    rng: np.random.Generator, n: int, class_mix: str = "bts", quadrants: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Draw ``n`` sources: class, brightness, host and geometry (one row per source).

    With ``quadrants`` (a sky of exposures: :func:`alertlib.sky.exposures.exposure_quadrants`) each
    source lies in one of them, at random (column ``quadrant_row``), and its field is drawn there.
    """
    if class_mix not in CLASS_MIXES:
        raise ValueError(f"class_mix must be one of {sorted(CLASS_MIXES)}, not {class_mix!r}")
    alert_class = rng.choice(len(ALERT_CLASSES), n, p=CLASS_MIXES[class_mix])
    bogus_kind = np.where(
        alert_class == ALERT_CLASSES.index("bogus"), rng.choice(len(BOGUS_KINDS), n, p=_BOGUS_SHARES), -1
    )
    extragalactic = np.isin(alert_class, [0, 1, 2])
    # Redshifts weighted by volume; supernovae of type Ia (60%) and core-collapse (40%).
    redshift = 0.01 + 0.1 * rng.random(n) ** (1 / 2)
    distance_modulus = COSMOLOGY.distmod(redshift).to_value(u.mag)
    is_ia = rng.random(n) < 0.6
    absolute_peak = np.select(
        [alert_class == 0, alert_class == 1],
        [np.where(is_ia, rng.normal(-19.3, 0.35, n), rng.normal(-17.6, 0.9, n)), rng.normal(-19.6, 0.7, n)],
        0.0,
    )
    peak_mag = np.where(np.isin(alert_class, [0, 1]), absolute_peak + distance_modulus, np.nan)
    # Hosts: absolute magnitude and physical size, seen at the redshift.
    host_absolute = rng.normal(-20.6, 1.0, n) - 0.6 * (alert_class == 2)
    host_mag = host_absolute + distance_modulus
    host_kpc = 3.5 * 10 ** (-0.2 * (host_absolute + 20.6)) * np.exp(rng.normal(0, 0.3, n))
    angular_distance_kpc = COSMOLOGY.angular_diameter_distance(redshift).to_value(u.kpc)
    host_radius_arcsec = host_kpc / angular_distance_kpc * 206265.0
    sources = pd.DataFrame(
        {
            "alert_class": np.asarray(ALERT_CLASSES)[alert_class],
            "class_index": alert_class,
            "bogus_kind": np.where(bogus_kind >= 0, np.asarray(BOGUS_KINDS)[np.maximum(bogus_kind, 0)], ""),
            "has_host": extragalactic,
            "redshift": np.where(extragalactic, redshift, np.nan),
            "peakmag_true": peak_mag,
            "host_mag": np.where(extragalactic, host_mag, np.nan),
            "host_radius_arcsec": np.where(extragalactic, host_radius_arcsec, np.nan),
            "rise_days": rng.uniform(3.0, 8.0, n) * np.where(alert_class == 1, 2.0, 1.0),
            "fall_days": rng.uniform(15.0, 45.0, n) * np.where(alert_class == 1, 2.0, 1.0),
            "peak_time": rng.uniform(0.0, 90.0, n),
            # Variable star mean and fractional amplitude (varstar; AGN: uniform).
            # Amplitudes from a steep power law, most stars varying little: the detected ones then sit
            # near their limits, as real stream alerts on stars do (see VARIABLE_STAR_MAGS).
            "star_mag": power_law_magnitudes(rng, VARIABLE_STAR_SLOPE, VARIABLE_STAR_MAGS, n),
            "variability": np.where(
                alert_class == ALERT_CLASSES.index("varstar"),
                power_law(rng, VARIABILITY_INDEX, VARIABILITY_RANGE, n),
                rng.uniform(0.03, 0.8, n),
            ),
            "period_days": np.exp(rng.uniform(np.log(0.3), np.log(60.0), n)),
            "nucleus_fraction": rng.uniform(0.05, 0.6, n),  # AGN point source / host light
            "reference_fwhm": np.clip(lognormal(rng, REFERENCE_FWHM_MEDIAN_PX, 0.15, n), 1.5, 3.5),
        }
    )
    if quadrants is not None:
        sources["quadrant_row"] = rng.integers(0, len(quadrants), n)
    for column, values in _sky_positions(rng, alert_class, _quadrant_boxes(quadrants, sources)).items():
        sources[column] = values
    # What lies beneath the candidate in the reference: a star (a variable star's mean light, the star
    # behind a bogus residual) or an AGN nucleus (its share of the host's light).
    bright = np.isin(sources["bogus_kind"], BRIGHT_STAR_BOGUS_KINDS)
    sources["star_mag"] = np.where(bright, rng.uniform(12.5, 15.5, n), sources["star_mag"])
    sources["central_star"] = (alert_class == ALERT_CLASSES.index("varstar")) | np.isin(
        sources["bogus_kind"], STAR_BOGUS_KINDS
    )
    sources["nucleus_mag"] = np.where(
        alert_class == ALERT_CLASSES.index("agn"), host_mag - 2.5 * np.log10(sources["nucleus_fraction"]), np.nan
    )
    return sources


def central_mag(sources: pd.DataFrame) -> np.ndarray:
    """Magnitude of the point source beneath each source's candidate in the reference (inf where none)."""
    return np.select(
        [sources["central_star"].to_numpy(), np.isfinite(sources["nucleus_mag"].to_numpy())],
        [sources["star_mag"].to_numpy(), sources["nucleus_mag"].to_numpy()],
        np.inf,
    )


def _quadrant_boxes(quadrants: pd.DataFrame | None, sources: pd.DataFrame):
    """Each source's quadrant on the sky (centre ra, dec and side, degrees), or None for the whole sky."""
    if quadrants is None:
        return None
    row = quadrants.iloc[sources["quadrant_row"].to_numpy()]
    return row["ra"].to_numpy(), row["dec"].to_numpy(), QUADRANT_DEG


def _sky_positions(rng, alert_class, boxes=None) -> dict[str, np.ndarray]:
    """Sky position, galactic latitude, star density and extinction of each source's field.

    ``SKY_CANDIDATES`` positions are drawn for each source, uniform on the ZTF sky (dec > -30) or
    in its quadrant (``boxes``: centres and side), and one is picked with a weight by class.
    """
    n, k = len(alert_class), SKY_CANDIDATES
    if boxes is None:
        ra = rng.uniform(0, 360, (n, k))
        dec = np.degrees(np.arcsin(rng.uniform(-0.5, 1.0, (n, k))))
    else:
        centre_ra, centre_dec, side = boxes
        dec = np.clip(centre_dec[:, None] + side * rng.uniform(-0.5, 0.5, (n, k)), -89.9, 89.9)
        ra = (centre_ra[:, None] + side * rng.uniform(-0.5, 0.5, (n, k)) / np.cos(np.radians(dec))) % 360
    longitude, latitude = galactic_coordinates(ra, dec)
    density = field_star_density(longitude, latitude) * np.exp(rng.normal(0, FIELD_DENSITY_SPREAD, (n, k)))
    extinction = field_extinction(latitude)
    c = np.asarray(alert_class)[:, None]
    weight = np.select(
        [c == ALERT_CLASSES.index("varstar"), c <= ALERT_CLASSES.index("agn")],
        [density**VARSTAR_DENSITY_POWER, 10 ** (-0.6 * extinction)],
        1.0,
    )
    cumulative = np.cumsum(weight, axis=1)
    pick = (cumulative < rng.random((n, 1)) * cumulative[:, -1:]).sum(axis=1)
    rows = np.arange(n)
    return {
        "ra": ra[rows, pick],
        "dec": dec[rows, pick],
        "galactic_latitude": latitude[rows, pick],
        "field_star_density": density[rows, pick],
        "extinction_r": extinction[rows, pick],
    }
