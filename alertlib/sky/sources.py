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
    FIELD_DENSITY_SPREAD,
    REFERENCE_FWHM_MEDIAN_PX,
    VARIABILITY_INDEX,
    VARIABILITY_RANGE,
    VARIABLE_STAR_MAGS,
    VARIABLE_STAR_SLOPE,
    VARSTAR_DENSITY_POWER,
)
from alertlib.sky.distributions import lognormal, power_law, power_law_magnitudes
from alertlib.sky.field import field_extinction, field_star_density, galactic_coordinates


def _mix(**counts: float) -> tuple[float, ...]:
    """Fractions of ``ALERT_CLASSES`` from counts (or shares) by class name; missing classes get none."""
    total = sum(counts.values())
    return tuple(counts.get(name, 0) / total for name in ALERT_CLASSES)


_STREAM = {"sn": 0.08, "nuclear": 0.01, "agn": 0.04, "varstar": 0.75, "asteroid": 0.03, "bogus": 0.09}
_EXPOSURE_BOGUS = 152 / 499  # ztf-one-exposure-2018: candidates with ZTF's rb < 0.5
# Source mixes, in the order of ALERT_CLASSES:
# - "bts" for the study (a BTS-like candidate stream, rich in extragalactic transients);
# - "ztf-stream" like the unfiltered ZTF alert stream (mostly variable stars), for realism checks
#   against random public packets (82% of those match a Pan-STARRS star within 1.5 arcsec);
# - "ztf-exposure" like every candidate of one exposure: the stream's classes with the bogus share
#   of the development set ztf-one-exposure-2018;
# - "ztf-crossmatched" the labelled objects of the reporting set fink-ztf-crossmatched (class
#   counts from alertlib.io.weaklabels.label_summary: 15 TNS transients, 44 variable stars, 1 AGN,
#   8 known asteroids), for realism reports only.
CLASS_MIXES = {
    "bts": (0.40, 0.05, 0.07, 0.15, 0.09, 0.24),
    "ztf-stream": tuple(_STREAM.values()),
    "ztf-exposure": _mix(
        **{k: (1 - _EXPOSURE_BOGUS) * v / (1 - _STREAM["bogus"]) for k, v in _STREAM.items() if k != "bogus"},
        bogus=_EXPOSURE_BOGUS,
    ),
    "ztf-crossmatched": _mix(sn=15, agn=1, varstar=44, asteroid=8),
}
BOGUS_KINDS = ("dipole", "psf_mismatch", "cosmic_ray", "hot_pixel", "bad_column", "ghost")
BOGUS_FRACTIONS = (0.28, 0.22, 0.18, 0.1, 0.1, 0.12)
# The transients' and hosts' absolute magnitudes (SN Ia -19.3, hosts -20.6) are on the H0 = 70 scale:
# distances from that flat Lambda-CDM cosmology (Om0 = 0.3, no radiation).
COSMOLOGY = FlatLambdaCDM(H0=70.0, Om0=0.3)
# Each source's field is drawn by weighting SKY_CANDIDATES uniform positions on the ZTF sky (dec > -30).
SKY_CANDIDATES = 16


def draw_sources(rng: np.random.Generator, n: int, class_mix: str = "bts") -> pd.DataFrame:
    """Draw ``n`` sources: class, brightness, host and geometry (one row per source)."""
    if class_mix not in CLASS_MIXES:
        raise ValueError(f"class_mix must be one of {sorted(CLASS_MIXES)}, not {class_mix!r}")
    alert_class = rng.choice(len(ALERT_CLASSES), n, p=CLASS_MIXES[class_mix])
    bogus_kind = np.where(
        alert_class == ALERT_CLASSES.index("bogus"), rng.choice(len(BOGUS_KINDS), n, p=BOGUS_FRACTIONS), -1
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
            # Variable star mean (bright star for bogus) and fractional amplitude (varstar; AGN: uniform).
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
    for column, values in _sky_positions(rng, alert_class).items():
        sources[column] = values
    return sources


def _sky_positions(rng, alert_class) -> dict[str, np.ndarray]:
    """Sky position, galactic latitude, star density and extinction of each source's field."""
    n, k = len(alert_class), SKY_CANDIDATES
    ra = rng.uniform(0, 360, (n, k))
    dec = np.degrees(np.arcsin(rng.uniform(-0.5, 1.0, (n, k))))
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
