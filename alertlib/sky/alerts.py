"""ZTF-like alerts: sources, light curves, triplets (science, reference, difference) and candidates.

The simulator follows how a ZTF alert is made. A *source* is a supernova-like transient in a host
galaxy, a nuclear transient, an AGN, a variable star, an asteroid or a bogus detection. Hosts come
from the same morphology model as the Galaxy Zoo-like galaxies (``alertlib.sky.galaxies``), placed at a
redshift that also sets the transient's brightness, so the host's apparent size and brightness carry
information about the label. Each source has a light curve, observed at several epochs; each epoch
with a detection gives one alert. Variable stars and AGN are detected fading below their reference
brightness as well as rising above it: such a negative subtraction has ``isdiffpos`` "f" and its
difference cutout is written as reference minus science, as ZTF writes it.

Each source lies in a field of the sky: variable stars where the Milky Way's stars are (weighted
towards the galactic plane by the star density), extragalactic transients where the dust lets them
through. The field's galactic latitude and longitude set its density of stars (``field_star_density``,
with a lognormal field-to-field scatter) and its dust extinction. Every canvas holds the field's stars
(power-law number counts from 13 to 23.5 mag, far below the detection limit) and faint galaxies
(counts rising as 10^(0.35 m) to 25 mag, small round Gaussians), in the reference and science images
alike: unresolved, they add crowding ("confusion") structure to both, which the subtraction removes
up to its noise and PSF errors. The candidate's ``nmtchps`` (Pan-STARRS objects within 30 arcsec),
``sgscore1`` and ``distpsnr1`` are measured on the rendered field when no host or star is on the
candidate.

For each alert (all on an 80x80 canvas in Fourier space, then cropped to 63x63 around the candidate):

- the **reference** is a deep co-add with its own (usually sharper) Moffat PSF and low noise (the
  Poisson noise of its co-added sky), holding the host, the field's stars and galaxies, and a
  variable star or AGN at its mean brightness; it is one image per source and band, gain-matched
  (flux-scaled to the exposure's zero point) and background-matched to each science image as the ZTF
  template cutouts are; its noise is slightly correlated between neighbouring pixels, as a co-add of
  resampled epochs is (most of the correlation measured in crowded real references comes from the
  faint field);
- the **science** image has the epoch's PSF, photon and read noise, and the transient; its background
  level is the template's sky scaled by the exposure's transparency, which drops by magnitudes in the
  few exposures taken through cloud (where only bright sources are still detected, and the patchy
  transparency miscalibrates every static source in the cutout, so bright stars alert on it);
- the **difference** is a ZOGY subtraction (Zackay, Ofek & Gal-Yam 2016; ZTF's method), whitened
  with both images' noise spectra so that its noise is white as in real ZTF difference cutouts, made
  with PSF models whose widths carry a small error and after a small misregistration, plus a small
  residual background: these errors leave realistic residuals around bright stars and galaxy
  nuclei. Bogus alerts are made of large such errors (dipoles, PSF-mismatch rings) or of
  science-only defects (cosmic rays, hot pixels, bad columns, ghosts);
- masked pixels (NaN in packets, zero after NaN -> 0) are shared by the three cutouts: strips where
  a stamp runs off the chip and blocks around saturated stars and bad pixels.

Labels follow the BTS: ``label`` = 1 when the source is a real extragalactic transient (``sn`` or
``nuclear``) whose light curve peaks at 18.5 mag or brighter; a single epoch's brightness does not
reveal the peak.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.core.vocab import ALERT_CLASSES, PEAK_MAG_THRESHOLD, PIXEL_SCALE, STAMP_SIZE
from alertlib.sky import galaxies, render

# Source mixes: "bts" for the study (a BTS-like candidate stream, rich in extragalactic transients);
# "ztf-stream" like the unfiltered ZTF alert stream (mostly variable stars), for realism checks
# against random public packets (82% of those match a Pan-STARRS star within 1.5 arcsec).
CLASS_MIXES = {
    "bts": (0.40, 0.05, 0.07, 0.15, 0.09, 0.24),
    "ztf-stream": (0.08, 0.01, 0.04, 0.75, 0.03, 0.09),
}
BOGUS_KINDS = ("dipole", "psf_mismatch", "cosmic_ray", "hot_pixel", "bad_column", "ghost")
BOGUS_FRACTIONS = (0.28, 0.22, 0.18, 0.1, 0.1, 0.12)
CANVAS = 80  # rendering canvas (pixels); cutouts are its central 63x63
CROP = (CANVAS - STAMP_SIZE) // 2
CENTRE = CROP + STAMP_SIZE // 2  # canvas pixel of the candidate (cutout pixel 31)
HUBBLE_DISTANCE_MPC = 299792.458 / 70.0
FID_BANDS = {1: "g", 2: "r"}

# Imaging conditions, calibrated on real ZTF cutouts (alertlib.sky.realism.calibration_statistics on the
# packets in ../shared/data/alert-packets): science noise in counts, science PSF FWHM in pixels,
# zero point.
SCIENCE_NOISE_MEDIAN, SCIENCE_NOISE_SPREAD = 6.9, 0.35
# The background level of the cutouts. In real ZTF packets the template cutout is gain-matched (flux
# scaled to the science image's zero point) and background-matched to the science cutout: the two
# levels agree to 1% (ratio median 0.996, 5-95% 0.88-1.06), and the level falls with the exposure's
# transparency, log10(level) rising 0.37 per magnitude of zero point (0.4 for a level proportional to
# the transparency) over 4.4 mag of cloud loss, while the science noise does not (it is this
# exposure's own sky and read noise). So the level is drawn per source and band as the template's
# sky at the nominal zero point, a multiple of the median science noise (median sky-to-noise in
# clear exposures: g 10.2, r 17.2; lognormal spread 0.50-0.52, of which the science noise's own 0.35
# is part), and scaled by each exposure's transparency. Numbers from alertlib.sky.realism.sky_calibration
# on the packets in ../shared/data/alert-packets.
TEMPLATE_SKY_TO_NOISE = {1: 10.2, 2: 17.2}  # by fid (1 = g, 2 = r)
TEMPLATE_SKY_SPREAD = 0.4
# Cloudy exposures: real alerts whose zero point is 1.1-4.4 mag (median 3.4) below the median, with
# the background of both cutouts lower by the same factor. An exposure is cloudy with probability
# CLOUDY_FRACTION (21.8% of the real packets' alerts are; they come from 7 of 195 exposures, 3.6%,
# one of which flooded 51 alerts), its loss uniform in CLOUD_LOSS_MAG; an alert is taken through the
# cloud only when its source is still detected through the loss (its zero point and detection limit
# lower by the loss), so only bright alerts are, and bright stars alert on the miscalibration
# (CLOUD_CALIBRATION_ERROR): 5.2% of the simulated alerts (bts mix), 17.5% (ztf-stream mix).
CLOUDY_FRACTION, CLOUD_LOSS_MAG = 0.22, (1.0, 4.4)
# Under thick cloud the transparency is patchy, and the exposure's photometric calibration is wrong
# by a fraction that varies over the field but hardly over one cutout: every static source in the
# cutout (the star on the candidate, its neighbours, a host) leaves a residual of that fraction in
# the difference, of either sign. In the real packets the 51 alerts of one exposure taken through
# 3.9 mag of cloud lie on bright stars (magnr 12.6-15.0, 10-90%) whose difference flux is 0.20-0.56
# of the star's, 31 of them positive and 20 negative, and their difference cutouts show the
# neighbouring stars too. The error is normal with a standard deviation of CLOUD_CALIBRATION_ERROR
# per magnitude of loss.
CLOUD_CALIBRATION_ERROR = 0.08
# The template's noise: the Poisson noise of its co-added sky (nframesref frames of the template's
# sky), times an excess (resampling, faint confusion) lognormal around REFERENCE_NOISE_EXCESS,
# gain-matched to the science image like its level. Real packets: reference noise over
# sqrt(level / (gain nframesref)) has median 1.35 (quartiles 1.17-1.74) in counts; in the
# simulator's count units, whose science noise is lower than the packets' for the same sky-to-noise,
# 0.78 gives the real median reference noise-to-level in sparse fields (nmtchps < 20: 0.0106 for
# the ztf-stream mix against the packets' 0.0100; 0.95 gave 0.0125), and its spread is set by
# the real reference noise-to-level's per band (lognormal 0.18-0.28, which the template sky's own
# scatter is part of). nframesref: 15 for most alerts, more (up to 40) for 27% (40% of the alerts,
# 27% with the 51 alerts of one exposure counted once).
REFERENCE_NOISE_EXCESS, REFERENCE_NOISE_SPREAD = 0.78, 0.15
REFERENCE_FRAMES, REFERENCE_FRAMES_MORE, REFERENCE_FRAMES_MAX = 15, 0.27, 40
REFERENCE_BETA = 2.5  # co-added references have broad PSF wings
# The reference's PSF FWHM (pixels), lognormal per source: with it the mean radial profile of the
# reference around bright stars (magnr 12-15.5) matches the real packets' to 0.01 of the peak at
# every radius, and the ring/core light ratio (reference_extent) their median 0.20.
REFERENCE_FWHM_MEDIAN_PX = 2.0
DIFFERENCE_LIMIT_MEDIAN, DIFFERENCE_LIMIT_SPREAD = 19.5, 0.6
# Variable stars: mean magnitudes from counts rising VARIABLE_STAR_SLOPE dex per magnitude over
# VARIABLE_STAR_MAGS, fractional amplitudes from dN/dA ~ A^-VARIABILITY_INDEX over VARIABILITY_RANGE.
# Real stream alerts on a star (alertlib.sky.realism.stream_calibration) have |difference| flux over the
# star's of 0.07/0.12/0.39 (10/50/90%) for magnr 14-16 and 0.18/0.37/0.72 for 17.5-19, and lie
# 1.24/2.22/4.28 mag (50/75/95%) inside their limits. Detected variable stars of 6000 ztf-stream
# sources (observe_sources, seed 0, true magnitudes): amplitudes uniform over 0.03-0.8 and stars
# uniform over 12-20 mag gave 0.11/0.30/0.62, 0.22/0.41/0.66 and 2.2/3.9/6.0 mag; these give
# 0.07/0.17/0.47, 0.15/0.32/0.68 and 1.3/2.6/4.7 mag.
VARIABLE_STAR_SLOPE, VARIABLE_STAR_MAGS = 0.1, (12.0, 21.0)
VARIABILITY_INDEX, VARIABILITY_RANGE = 1.5, (0.03, 1.0)
SUBTRACTION_RESIDUAL = 0.02  # PSF-fit error on a source present in the reference, per unit of its flux
# Width (pixels) of the Gaussian that correlates the reference's noise like a co-add of resampled
# epochs, lognormal per source; lag-1 correlation exp(-1 / (4 sigma^2)), small. In the real
# packets the measured correlation rises with crowding, with the number of Pan-STARRS objects within
# 30 arcsec (nmtchps); the faint field below adds that part, so this intrinsic part is calibrated on
# the sparsest real fields (see alertlib.sky.realism.field_calibration).
REFERENCE_NOISE_SMOOTHING = 0.3
REFERENCE_NOISE_SMOOTHING_SPREAD = 0.2
# Residual background of the difference image (imperfect sky subtraction), per alert, in units of
# its pixel noise: real ZTF difference cutouts have median level / noise spread 5-95% over -0.15..0.12.
DIFFERENCE_BACKGROUND_SPREAD = 0.08
# The subtraction's errors on good alerts: relative error of the PSF model's width, and misregistration
# (pixels, per axis); bogus dipoles and PSF-mismatch rings are made of much larger ones.
PSF_MODEL_ERROR, REGISTRATION_ERROR_PX = 0.025, 0.04
# Masked pixels: in the real packets 50 of 285 ZTF alerts have zero (NaN) regions, the same in all three
# cutouts: 23 a strip along a side, where the stamp runs off the chip (7-34 pixels deep), and 28 one or
# more masked blocks of 5-29 pixels a side (around saturated stars and bad pixels), none on the
# candidate. A stamp has a strip with probability MASKED_STRIP_FRACTION, and 1-3 blocks with
# probability MASKED_BLOCK_FRACTION (depths and sides uniform over the ranges, upper bound excluded;
# strips stop short of the candidate, which is on the chip).
MASKED_STRIP_FRACTION, MASKED_STRIP_DEPTH_PX = 0.08, (5, 30)
MASKED_BLOCK_FRACTION, MASKED_BLOCK_SIDE_PX = 0.10, (5, 23)
SEEING_MEDIAN_PX, SEEING_SPREAD = 2.2, 0.35

# The field around every candidate: stars of the Milky Way and faint galaxies, far below the
# detection limit, in the reference and science images alike (so the subtraction removes them up to
# its noise and PSF errors). The star density depends on galactic latitude b and longitude l: it
# rises as 1 / (sin^2 b + FIELD_DISK_CORE^2) towards the plane, FIELD_BULGE times more towards the
# galactic centre, is dimmed by dust (r-band extinction FIELD_EXTINCTION / sin|b|, at most
# FIELD_MAX_EXTINCTION, shifting the counts by STAR_COUNT_SLOPE per magnitude) and scatters
# lognormally from field to field (FIELD_DENSITY_SPREAD). Calibrated on the real packets'
# ``nmtchps`` (Pan-STARRS objects within 30 arcsec; simulated: field objects brighter than
# FIELD_COUNT_MAG, plus the host or star on the candidate), medians by |b| from
# alertlib.sky.realism.field_calibration; the faint ends of the counts are cut where crowded simulated
# science cutouts would become more correlated than the real ones of the same nmtchps.
FIELD_COUNT_MAG = 23.0
FIELD_STARS_POLE = 0.8  # stars per arcmin^2 brighter than FIELD_COUNT_MAG at the galactic poles
FIELD_DISK_CORE = 0.05
FIELD_BULGE = 1.0
FIELD_EXTINCTION, FIELD_MAX_EXTINCTION = 0.1, 3.0
FIELD_DENSITY_SPREAD = 0.5
# Star counts dN/dm ~ 10^(STAR_COUNT_SLOPE m) over STAR_MAGS (r band); colours g - r uniform.
STAR_COUNT_SLOPE, STAR_MAGS, STAR_COLOURS = 0.2, (13.0, 23.5), (0.3, 1.4)
# Galaxy counts dN/dm = GALAXY_COUNTS_22 10^(GALAXY_COUNT_SLOPE (m - 22)) per deg^2 per magnitude
# (r band, before extinction), drawn as round Gaussians: GALAXY_SIGMAS_PX for those brighter or
# fainter than GALAXY_SIZE_SPLIT_MAG.
GALAXY_COUNTS_22, GALAXY_COUNT_SLOPE, GALAXY_MAGS = 5.0e3, 0.35, (17.0, 25.0)
GALAXY_COLOURS = (0.4, 1.2)
GALAXY_SIZE_SPLIT_MAG, GALAXY_SIGMAS_PX = 21.0, (1.2, 0.5)
# Where sources lie: variable stars where the stars are (probability ~ star density^VARSTAR_DENSITY_POWER),
# extragalactic transients where the dust lets them through (~ 10^(-0.6 A_r), Euclidean counts);
# drawn by weighting SKY_CANDIDATES uniform positions on the ZTF sky (dec > -30) per source.
VARSTAR_DENSITY_POWER = 0.5
SKY_CANDIDATES = 16
NORTH_GALACTIC_POLE = (192.85948, 27.12825)  # J2000 degrees
NORTH_CELESTIAL_POLE_L = 122.93192  # galactic longitude of the north celestial pole, degrees
ZERO_POINT_MEDIAN = 26.1
GAIN = 6.2


def _lognormal(rng, median, spread, size):
    return median * np.exp(rng.normal(0.0, spread, size))


def _luminosity_distance_mpc(z):
    # Low-redshift expansion (z < 0.2), enough for BTS-like transients.
    return HUBBLE_DISTANCE_MPC * z * (1 + 0.5 * (1 - (-0.55)) * z)


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
    distance_modulus = 5 * np.log10(_luminosity_distance_mpc(redshift) * 1e5)
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
    angular_distance_kpc = _luminosity_distance_mpc(redshift) * 1e3 / (1 + redshift) ** 2
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
            "star_mag": _power_law_magnitudes(rng, VARIABLE_STAR_SLOPE, VARIABLE_STAR_MAGS, n),
            "variability": np.where(
                alert_class == ALERT_CLASSES.index("varstar"),
                _power_law(rng, VARIABILITY_INDEX, VARIABILITY_RANGE, n),
                rng.uniform(0.03, 0.8, n),
            ),
            "period_days": np.exp(rng.uniform(np.log(0.3), np.log(60.0), n)),
            "nucleus_fraction": rng.uniform(0.05, 0.6, n),  # AGN point source / host light
            "reference_fwhm": np.clip(_lognormal(rng, REFERENCE_FWHM_MEDIAN_PX, 0.15, n), 1.5, 3.5),
        }
    )
    for column, values in _sky_positions(rng, alert_class).items():
        sources[column] = values
    return sources


def galactic_coordinates(ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """Galactic longitude and latitude (degrees) of J2000 ``ra``, ``dec`` (degrees)."""
    a, d = np.radians(ra), np.radians(dec)
    a_pole, d_pole = np.radians(NORTH_GALACTIC_POLE)
    sin_b = np.sin(d) * np.sin(d_pole) + np.cos(d) * np.cos(d_pole) * np.cos(a - a_pole)
    y = np.cos(d) * np.sin(a - a_pole)
    x = np.sin(d) * np.cos(d_pole) - np.cos(d) * np.sin(d_pole) * np.cos(a - a_pole)
    longitude = (np.radians(NORTH_CELESTIAL_POLE_L) - np.arctan2(y, x)) % (2 * np.pi)
    return np.degrees(longitude), np.degrees(np.arcsin(np.clip(sin_b, -1, 1)))


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


def _peak_normalised_light_curve(t, peak_time, rise, fall):
    """A rise-and-decline shape with maximum 1 at ``peak_time`` (a Bazin-like curve)."""
    x = t - peak_time
    shape = np.exp(-x / fall) / (1 + np.exp(-x / rise))
    # The maximum of this shape sits at x* = rise * log(fall / rise - 1); normalise by it.
    x_star = rise * np.log(np.maximum(fall / rise - 1, 1.0001))
    return shape / (np.exp(-x_star / fall) / (1 + np.exp(-x_star / rise)))


def observe_sources(
    rng: np.random.Generator, sources: pd.DataFrame, epochs: int = 40, max_alerts: int = 8
) -> pd.DataFrame:
    """Observe each source at ``epochs`` random times; keep the detections as alerts.

    A detection is a difference flux beyond the epoch's limit of either sign: variable stars and AGN
    fade below their brightness in the reference (a co-add of many epochs, near their mean) as often
    as they rise above it, and ZTF alerts on those negative subtractions too (``isdiffpos`` "f": 67%
    of the real packets in ../shared/data, most of them stars, by
    ``alertlib.sky.realism.stream_calibration``). Transients, asteroids and bogus detections add flux.

    Returns one row per alert with the epoch's band, conditions, true difference magnitude (of the
    flux's absolute value), its sign (``difference_sign``, +1 or -1) and the number of detections
    so far (``ndethist``). At most ``max_alerts`` random detections per source are kept, so bright,
    long-lived sources do not swamp the set.
    """
    n = len(sources)
    cls = sources["class_index"].to_numpy()
    times = np.sort(rng.uniform(-20.0, 150.0, (n, epochs)), axis=1)
    # The 5-sigma limit of each epoch's difference image: in the real packets' clear exposures its
    # median is 19.5 mag with a robust spread of 0.54 (alertlib.sky.realism.stream_calibration; 0.62 with
    # each exposure counted once), moon, seeing and airmass making most epochs shallower than ZTF's
    # best, 20.5 to 21.
    limit = rng.normal(DIFFERENCE_LIMIT_MEDIAN, DIFFERENCE_LIMIT_SPREAD, (n, epochs))
    # Cloud (CLOUDY_FRACTION of the epochs): the limit is shallower by the loss, and the calibration
    # is wrong by a patchy-transparency error that a star's measured change includes.
    cloudy = rng.random((n, epochs)) < CLOUDY_FRACTION
    cloud_loss = np.where(cloudy, rng.uniform(*CLOUD_LOSS_MAG, (n, epochs)), 0.0)
    calibration_error = rng.normal(0.0, 1.0, (n, epochs)) * CLOUD_CALIBRATION_ERROR * cloud_loss
    star_flux_mag = sources["star_mag"].to_numpy()[:, None]
    # Difference magnitude (the flux added since the reference) at each epoch, by class.
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
    # A variable's change is measured on top of the source itself, whose subtraction leaves a
    # residual of a fraction of its flux (SUBTRACTION_RESIDUAL, scattering from epoch to epoch): the
    # change must also stand 5 such residuals above it, as real alerts stand 5 sigma (sigmapsf <
    # 0.22 mag in every real packet).
    residual = SUBTRACTION_RESIDUAL * _lognormal(rng, 1.0, 0.5, (n, epochs))
    change = np.select([c == 2, c == 3], [np.abs(agn_flux), np.abs(var_flux)], np.inf)
    # Asteroids are seen once; bogus detections of a source recur a few times.
    detected = (difference_mag < limit - cloud_loss) & (change >= 5 * residual)
    one_off = cls >= 4
    first = np.argmax(detected, axis=1)
    rank = np.cumsum(detected, axis=1)
    keep_one_off = np.where(cls[:, None] == 4, rank == 1, rank <= rng.integers(1, 4, (n, 1)))
    detected = np.where(one_off[:, None], detected & keep_one_off, detected)
    del first
    ndethist = np.cumsum(detected, axis=1)
    # Variable stars and AGN have long detection histories before the window.
    ndethist = ndethist + np.where(np.isin(cls, [2, 3]), rng.integers(5, 200, n), 0)[:, None]
    rows, cols = np.nonzero(detected)
    # Keep at most max_alerts per source, chosen at random (deterministic given the rng).
    priority = rng.random(rows.size)
    order = np.lexsort((priority, rows))
    rows, cols = rows[order], cols[order]
    within = np.arange(rows.size) - np.searchsorted(rows, rows)
    keep = within < max_alerts
    rows, cols = rows[keep], cols[keep]
    reorder = np.lexsort((cols, rows))
    rows, cols = rows[reorder], cols[reorder]
    m = rows.size
    noise = _lognormal(rng, SCIENCE_NOISE_MEDIAN, SCIENCE_NOISE_SPREAD, m)
    fid = rng.choice([1, 2], m)
    # The template's sky per source and band (g, r), at the nominal zero point.
    template_sky = SCIENCE_NOISE_MEDIAN * _lognormal(rng, 1.0, TEMPLATE_SKY_SPREAD, (n, 2))
    template_sky *= np.array([TEMPLATE_SKY_TO_NOISE[1], TEMPLATE_SKY_TO_NOISE[2]])
    # Transparency: the zero point scatters from night to night, and drops by the cloud's loss.
    clear_zp = rng.normal(ZERO_POINT_MEDIAN, 0.15, m)
    magzpsci = clear_zp - cloud_loss[rows, cols]
    transmission = 10 ** (0.4 * (magzpsci - ZERO_POINT_MEDIAN))
    level = template_sky[rows, fid - 1] * transmission
    alerts = pd.DataFrame(
        {
            "source_index": rows,
            "jd": 2459000.5 + times[rows, cols],
            "phase_days": times[rows, cols] - sources["peak_time"].to_numpy()[rows],
            "true_difference_mag": difference_mag[rows, cols],
            "difference_sign": np.where(difference_sign[rows, cols] < 0, -1, 1),
            "subtraction_residual": np.where(np.isin(cls[rows], [2, 3]), residual[rows, cols], 0.0),
            "diffmaglim": limit[rows, cols] - cloud_loss[rows, cols],
            "calibration_error": calibration_error[rows, cols],
            "ndethist": ndethist[rows, cols],
            "fid": fid,
            "fwhm_px": np.clip(_lognormal(rng, SEEING_MEDIAN_PX, SEEING_SPREAD, m), 1.0, 6.0),
            "psf_beta": rng.uniform(2.2, 4.0, m).round(1),
            "noise": noise,
            # The science cutout's background level, and the template's (background-matched, gain-matched).
            "sky": level,
            "reference_level": level,
            # The template's own sky at the nominal zero point, and the flux scale that matches it to this exposure.
            "template_sky": template_sky[rows, fid - 1],
            "transmission": transmission,
            "magzpsci": magzpsci,
        }
    )
    # Peak magnitude as the survey measured it: the brightest detection of the whole light curve.
    observed_peak = np.where(detected, difference_mag, np.inf).min(axis=1)
    sources["peakmag"] = np.where(
        np.isin(cls, [0, 1]), np.minimum(sources["peakmag_true"], observed_peak), observed_peak
    )
    return alerts


def _host_morphology(rng, sources_with_host: pd.DataFrame):
    morph = galaxies.draw_morphology(rng, len(sources_with_host))
    morph["magnitude_r"] = sources_with_host["host_mag"].to_numpy()
    morph["half_light_radius"] = sources_with_host["host_radius_arcsec"].to_numpy()
    # Galaxy Zoo's merger fraction is for bright nearby galaxies; hosts rarely show companions at ZTF depth.
    return morph


def _offset_following_light(rng, morph) -> tuple[np.ndarray, np.ndarray]:
    """Transient offsets (arcsec, on the sky) drawn from the host's light: disk or bulge by B/T."""
    n = len(morph["magnitude_r"])
    in_bulge = rng.random(n) < morph["bulge_fraction"]
    re = morph["half_light_radius"]
    # Exponential disk: radius ~ Gamma(2, r_d); a de Vaucouleurs bulge is more concentrated.
    disk_radius = rng.gamma(2.0, re * morph["bulge_radius_ratio"].clip(0.15, 1) ** 0 / 1.678, n)
    bulge_radius = re * morph["bulge_radius_ratio"] * rng.gamma(1.2, 0.6, n)
    radius = np.where(in_bulge, bulge_radius, disk_radius)
    angle = rng.uniform(0, 2 * np.pi, n)
    q = np.where(in_bulge, morph["bulge_axis_ratio"], morph["disk_axis_ratio"])
    along, across = radius * np.cos(angle), radius * np.sin(angle) * q
    pa = morph["position_angle"]
    return along * np.cos(pa) - across * np.sin(pa), along * np.sin(pa) + across * np.cos(pa)


_PIXEL = render.pixel_transfer((CANVAS, CANVAS)).astype(np.float32)


def _smoothing(sigma, canvas: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian transfer functions (B, H, W//2+1) of widths ``sigma`` (B,), and their kernels' root sums of squares (B, 1, 1)."""
    transfer = render.gaussian_transfer(np.atleast_1d(np.asarray(sigma, dtype=np.float64)), canvas)
    kernel = render.irfft2(transfer.astype(np.complex64), canvas).astype(np.float64)
    return transfer, np.sqrt((kernel**2).sum(axis=(1, 2)))[:, None, None].astype(np.float32)


def correlated_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma) -> np.ndarray:
    """Gaussian noise of unit variance per pixel, correlated by Gaussian kernels of width ``sigma`` pixels.

    ``shape`` is (B, ..., H, W); ``sigma`` a number, or one width per leading index (B,). White
    noise is smoothed in Fourier space (periodic on the canvas) and divided by the kernel's root sum
    of squares, so each pixel keeps unit variance; :func:`correlated_noise_power` is its power spectrum.
    """
    canvas = shape[-2:]
    white = rng.standard_normal(shape, dtype=np.float32)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), shape[:1])
    transfer, gain = _smoothing(sigma, canvas)
    per_batch = int(np.prod(shape[1:-2], dtype=np.int64))  # images per leading index
    flat = white.reshape(shape[0], per_batch, *canvas)
    smoothed = render.irfft2(render.rfft2(flat) * transfer[:, None], canvas) / gain[:, None]
    return smoothed.reshape(shape).astype(np.float32)


def correlated_noise_power(sigma, canvas: tuple[int, int]) -> np.ndarray:
    """Power spectra (B, H, W//2+1) of :func:`correlated_noise` of widths ``sigma`` (B,), relative to white noise (1)."""
    transfer, gain = _smoothing(sigma, canvas)
    return (transfer / gain) ** 2


def _point_spectrum(flux, x, y):
    """Fourier spectrum (B, H, W//2+1) of pixel-integrated points of ``flux`` at canvas (x, y)."""
    phase = render.shift_phase(x, y, (CANVAS, CANVAS))
    return (np.asarray(flux, dtype=np.float32)[:, None, None] * _PIXEL) * phase


def _add_points(spectra, flux, x, y, psf=None):
    """Add points to the spectra of the images whose ``flux`` is non-zero (in place).

    Without ``psf`` they are pixel-integrated points still to be convolved; with ``psf`` = (fwhm,
    beta) per image they come already convolved and sampled (render.moffat_point_spectrum).
    """
    rows = np.nonzero(flux != 0)[0]
    if not rows.size:
        return
    if psf is None:
        spectra[rows] += _point_spectrum(flux[rows], x[rows], y[rows])
    else:
        fwhm, beta = psf
        spectra[rows] += render.moffat_point_spectrum(
            flux[rows], x[rows], y[rows], fwhm[rows], beta[rows], (CANVAS, CANVAS)
        )


def _power_law(rng, index, bounds, size) -> np.ndarray:
    """Values drawn from dN/dx ~ x^-index between ``bounds`` (index != 1)."""
    low, high = np.asarray(bounds, dtype=np.float64) ** (1.0 - index)
    return (low + rng.random(size) * (high - low)) ** (1.0 / (1.0 - index))


def _power_law_magnitudes(rng, slope, bounds, size) -> np.ndarray:
    """Magnitudes drawn from counts dN/dm ~ 10^(slope m) between ``bounds``."""
    low, high = 10 ** (slope * np.asarray(bounds, dtype=np.float64))
    return np.log10(low + rng.random(size) * (high - low)) / slope


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
            _power_law_magnitudes(rng, STAR_COUNT_SLOPE, STAR_MAGS, total_stars),
            _power_law_magnitudes(rng, GALAXY_COUNT_SLOPE, GALAXY_MAGS, total - total_stars)
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
    return spectra * _PIXEL


def render_batch(
    rng: np.random.Generator, sources: pd.DataFrame, alerts: pd.DataFrame
) -> tuple[np.ndarray, pd.DataFrame]:
    """Render the triplets of ``alerts`` (all of whose sources are in ``sources``).

    Returns
    -------
    triplets:
        (N, 63, 63, 3) float32 in counts, channels (science, reference, difference), before normalisation.
    measured:
        Per-alert measurements that go into the candidate table (magpsf, sigmapsf, fwhm, sgscore1, ...).
    """
    canvas = (CANVAS, CANVAS)
    n_src, n_alerts = len(sources), len(alerts)
    cls = sources["class_index"].to_numpy()
    kind = sources["bogus_kind"].to_numpy()

    # --- per source: candidate position, host light, the field, reference PSF ---------------------
    cand_x = CENTRE + rng.uniform(-0.5, 0.5, n_src)
    cand_y = CENTRE + rng.uniform(-0.5, 0.5, n_src)
    host_spectrum = np.zeros((n_src, 2, CANVAS, CANVAS // 2 + 1), dtype=np.complex64)
    offset_x = np.zeros(n_src)
    offset_y = np.zeros(n_src)
    host_index = np.nonzero(sources["has_host"].to_numpy())[0]
    host_truth = {}
    if host_index.size:
        morph = _host_morphology(rng, sources.iloc[host_index])
        dx, dy = _offset_following_light(rng, morph)
        is_sn = cls[host_index] == 0
        # Nuclear transients and AGN sit on the nucleus (astrometric scatter only).
        dx = np.where(is_sn, dx, rng.normal(0, 0.12, host_index.size))
        dy = np.where(is_sn, dy, rng.normal(0, 0.12, host_index.size))
        offset_x[host_index], offset_y[host_index] = dx, dy
        centre = np.stack([cand_x[host_index] - dx / PIXEL_SCALE, cand_y[host_index] - dy / PIXEL_SCALE], axis=1)
        light = galaxies.intrinsic_images(
            morph, CANVAS, np.full(host_index.size, PIXEL_SCALE), 0.0, ("g", "r"), oversample=1, centre=centre
        )
        host_spectrum[host_index] = render.rfft2(light)
        host_truth = {"bulge_fraction": morph["bulge_fraction"], "arm_count": morph["arm_count"]}
    # The field (stars and faint galaxies), static: in the reference and the science image alike.
    field = draw_field(rng, sources["field_star_density"].to_numpy(), sources["extinction_r"].to_numpy())
    host_spectrum += field_spectra(field, n_src)
    # A point source on the candidate: the variable star, or the bright star behind a bogus residual.
    central_star = (cls == 3) | np.isin(kind, ["dipole", "psf_mismatch", "ghost"])
    central_star_mag = np.where(
        np.isin(kind, ["psf_mismatch", "ghost"]), rng.uniform(12.5, 15.5, n_src), sources["star_mag"].to_numpy()
    )
    nucleus = cls == 2
    nucleus_mag = sources["host_mag"].to_numpy() - 2.5 * np.log10(sources["nucleus_fraction"].to_numpy())
    # Dipoles also come from misaligned galaxy nuclei; give some dipoles a host-like blob instead.

    # --- per alert ----------------------------------------------------------------------------------
    src = alerts["source_index"].to_numpy()
    band = (alerts["fid"].to_numpy() == 2).astype(np.int64)  # 0 = g, 1 = r
    zp = alerts["magzpsci"].to_numpy()
    to_counts = lambda mag: 10 ** (-0.4 * (mag - zp))  # noqa: E731
    fwhm = alerts["fwhm_px"].to_numpy()
    beta = alerts["psf_beta"].to_numpy()
    ref_fwhm = sources["reference_fwhm"].to_numpy()[src]
    sci_transfer = render.moffat_transfer(fwhm, beta, canvas)
    ref_transfer = render.moffat_transfer(ref_fwhm, REFERENCE_BETA, canvas)

    # Static scene (host + field + quiescent central star / nucleus), in the alert's band.
    static = host_spectrum[src, band] * to_counts(0.0).astype(np.float32)[:, None, None]
    # The science image's static sources are off by the exposure's calibration error (cloudy exposures,
    # observe_sources); the candidate's own error is in its change already.
    miscalibrated = static * alerts["calibration_error"].to_numpy().astype(np.float32)[:, None, None]
    central_flux = np.where(central_star[src], to_counts(central_star_mag[src]), 0.0)
    central_flux += np.where(nucleus[src], to_counts(np.nan_to_num(nucleus_mag[src], nan=99.0)), 0.0)
    # (The point source on the candidate is added below, already convolved: see _add_points.)

    # What changed since the reference: the transient, the variable part, an asteroid.
    a_cls = cls[src]
    a_kind = kind[src]
    new_flux = np.where(a_cls <= 4, to_counts(alerts["true_difference_mag"].to_numpy()), 0.0)
    sign = alerts["difference_sign"].to_numpy()
    changed = np.zeros_like(static)
    # A fading variable star or AGN is fainter in the science image than in the reference.
    candidate_change = np.where(a_cls == 4, 0.0, sign * new_flux)
    trailed = (a_cls == 4) & (rng.random(n_alerts) < 0.4)
    trail_length = np.where(trailed, rng.uniform(2.0, 8.0, n_alerts), 0.0)
    trail_angle = rng.uniform(0, np.pi, n_alerts)
    for step in np.linspace(-0.5, 0.5, 7):
        px = cand_x[src] + step * trail_length * np.cos(trail_angle)
        py = cand_y[src] + step * trail_length * np.sin(trail_angle)
        _add_points(changed, np.where(a_cls == 4, new_flux / 7, 0.0), px, py)
    ghost = a_kind == "ghost"
    ghost_width = rng.uniform(2.0, 4.0, n_alerts)
    if np.any(ghost):
        # A ghost: a defocused copy of a bright star, a blob of a few pixels, in the science image only.
        g = np.nonzero(ghost)[0]
        ghost_flux = to_counts(alerts["true_difference_mag"].to_numpy() - 1.0)[g]
        blob = render.gaussian_transfer(ghost_width[g], canvas)
        changed[g] += _point_spectrum(ghost_flux, cand_x[src][g], cand_y[src][g]) * blob

    science_spectrum = (static + changed + miscalibrated) * sci_transfer
    reference_spectrum = static * ref_transfer
    # The candidate's point source (the star or nucleus, and its change) is the brightest thing in
    # most cutouts: drawn with its PSF's aliases folded in, so it does not ring (render.moffat_point_spectrum).
    candidate = (cand_x[src], cand_y[src])
    _add_points(science_spectrum, central_flux + candidate_change, *candidate, psf=(fwhm, beta))
    _add_points(reference_spectrum, central_flux, *candidate, psf=(ref_fwhm, np.full(n_alerts, REFERENCE_BETA)))
    science_model = render.irfft2(science_spectrum, canvas)
    reference_model = render.irfft2(reference_spectrum, canvas)

    # Noise: science per epoch; reference one deep realisation per source and band.
    sky = alerts["sky"].to_numpy()
    noise = alerts["noise"].to_numpy()
    read_noise = np.sqrt(np.maximum(noise**2 - sky / GAIN, 1.0))
    science = render.add_noise(rng, science_model, sky, GAIN, read_noise)
    # The template's noise: the Poisson noise of its co-added sky, with an excess per source, gain-matched
    # to the exposure (scaled by its transmission, like the template's level).
    frames = np.where(
        rng.random(n_src) < REFERENCE_FRAMES_MORE,
        rng.integers(REFERENCE_FRAMES + 1, REFERENCE_FRAMES_MAX + 1, n_src),
        REFERENCE_FRAMES,
    )
    excess = _lognormal(rng, REFERENCE_NOISE_EXCESS, REFERENCE_NOISE_SPREAD, n_src)
    template_sky = alerts["template_sky"].to_numpy()
    ref_noise_sigma = excess[src] * np.sqrt(template_sky / (GAIN * frames[src])) * alerts["transmission"].to_numpy()
    # Same realisation for every alert of a source in a band: the template does not change. A ZTF
    # reference is a co-add of resampled epochs, so its noise is correlated between neighbouring
    # pixels; smooth white noise to match, keeping
    # its per-pixel standard deviation.
    # How many epochs and how much resampling differ from field to field: so does the correlation.
    smoothing = np.clip(_lognormal(rng, REFERENCE_NOISE_SMOOTHING, REFERENCE_NOISE_SMOOTHING_SPREAD, n_src), 0.3, 2.5)
    reference_noise = correlated_noise(rng, (n_src, 2, CANVAS, CANVAS), smoothing)
    reference = reference_model + reference_noise[src, band] * ref_noise_sigma[:, None, None].astype(np.float32)

    # Science-only defects (real space).
    defects = np.zeros_like(science)
    defect_flux = to_counts(alerts["true_difference_mag"].to_numpy())
    cx, cy = np.rint(cand_x[src]).astype(int), np.rint(cand_y[src]).astype(int)
    for index in np.nonzero(np.isin(a_kind, ["cosmic_ray", "hot_pixel", "bad_column"]))[0]:
        if a_kind[index] == "hot_pixel":
            defects[index, cy[index], cx[index]] = defect_flux[index] * 0.6
        elif a_kind[index] == "cosmic_ray":
            length = rng.integers(1, 5)
            direction = rng.uniform(0, np.pi)
            for k in range(length):
                defects[
                    index, cy[index] + int(round(k * np.sin(direction))), cx[index] + int(round(k * np.cos(direction)))
                ] += defect_flux[index] * 0.5 / length
        else:
            defects[index, :, cx[index]] += defect_flux[index] * 0.05 * rng.uniform(0.5, 1.5)
    science += defects

    # --- image subtraction: ZOGY (Zackay, Ofek & Gal-Yam 2016), as ZTF's pipeline does -------------------
    # D = (P_r N - P_n R) / sqrt(sigma_n^2 |P_r|^2 + S_r |P_n|^2) in Fourier space: its noise is
    # white, as in real ZTF difference cutouts. Subtraction artefacts come from the pipeline's errors:
    # a PSF model of the wrong width (psf_mismatch: large; others: small) and misregistration (dipole).
    sigma_sci = fwhm / 2.3548
    psf_error = np.where(
        a_kind == "psf_mismatch",
        rng.choice([-1, 1], n_alerts) * rng.uniform(0.12, 0.25, n_alerts),
        rng.normal(0, PSF_MODEL_ERROR, n_alerts),
    )
    shift_scale = np.where(a_kind == "dipole", rng.uniform(0.4, 1.2, n_alerts), REGISTRATION_ERROR_PX)
    shift_x, shift_y = rng.normal(0, 1, n_alerts) * shift_scale, rng.normal(0, 1, n_alerts) * shift_scale
    ref_spectrum = render.rfft2(reference)  # the reference model carries no sky
    sci_spectrum = render.rfft2(science - sky[:, None, None].astype(np.float32))
    psf_ref = render.moffat_transfer(ref_fwhm * (1 + psf_error), REFERENCE_BETA, canvas)  # the pipeline's models
    psf_sci = sci_transfer
    phase = render.shift_phase(shift_x, shift_y, canvas)
    sigma_n = noise.astype(np.float32)[:, None, None]
    sigma_r = ref_noise_sigma.astype(np.float32)[:, None, None]
    # The reference's noise is correlated: its power spectrum replaces sigma_r^2 (ZOGY with coloured
    # noise), which keeps the difference's noise white at every frequency.
    reference_power = sigma_r**2 * correlated_noise_power(smoothing, canvas)[src]
    whitening = np.sqrt(sigma_n**2 * psf_ref**2 + reference_power * psf_sci**2) + np.float32(1e-12)
    # Scaled back to science counts (a point source keeps its flux); the cutouts are L2-normalised anyway.
    flux_scale = np.sqrt(sigma_n**2 + sigma_r**2)
    difference = render.irfft2(
        (psf_ref * sci_spectrum - psf_sci * ref_spectrum * phase) * (flux_scale / whitening), canvas
    )
    difference += (rng.normal(0.0, DIFFERENCE_BACKGROUND_SPREAD, n_alerts)[:, None, None] * flux_scale).astype(
        np.float32
    )
    # A negative subtraction is written as reference minus science, so the source shows positive in
    # the difference cutout, as in ZTF packets with isdiffpos "f" (98% of those in ../shared/data,
    # alertlib.sky.realism.stream_calibration).
    difference *= sign.astype(np.float32)[:, None, None]
    reference_level = alerts["reference_level"].to_numpy() * np.exp(rng.normal(0, 0.003, n_alerts))
    reference_cutout = reference + reference_level[:, None, None].astype(np.float32)

    crop = slice(CROP, CROP + STAMP_SIZE)
    triplets = np.empty((n_alerts, STAMP_SIZE, STAMP_SIZE, 3), dtype=np.float32)
    for channel, image in enumerate((science, reference_cutout, difference)):
        triplets[..., channel] = image[:, crop, crop]
    # Masked pixels, NaN in the packets and zero after NaN -> 0, the same in all three cutouts: the part
    # of a stamp off the chip (a strip along any side), and masked blocks (around saturated stars,
    # bad pixels), never on the candidate itself. See MASKED_STRIP_FRACTION.
    strip = rng.random(n_alerts) < MASKED_STRIP_FRACTION
    for index in np.nonzero(strip)[0]:
        depth = rng.integers(*MASKED_STRIP_DEPTH_PX)
        side = rng.integers(4)
        if side == 0:
            triplets[index, :depth] = 0.0
        elif side == 1:
            triplets[index, -depth:] = 0.0
        elif side == 2:
            triplets[index, :, :depth] = 0.0
        else:
            triplets[index, :, -depth:] = 0.0
    blocks = np.where(rng.random(n_alerts) < MASKED_BLOCK_FRACTION, rng.integers(1, 4, n_alerts), 0)
    middle = STAMP_SIZE // 2
    for index in np.nonzero(blocks)[0]:
        for _ in range(blocks[index]):
            height, width = rng.integers(*MASKED_BLOCK_SIDE_PX, 2)
            while True:  # a corner anywhere, the block clipped by the stamp, clear of the candidate
                top = rng.integers(-height // 2, STAMP_SIZE - height // 2)
                left = rng.integers(-width // 2, STAMP_SIZE - width // 2)
                if not (top - 3 <= middle < top + height + 3 and left - 3 <= middle < left + width + 3):
                    break
            triplets[index, max(top, 0) : top + height, max(left, 0) : left + width] = 0.0

    # --- measurements ------------------------------------------------------------------------------
    true_flux = to_counts(alerts["true_difference_mag"].to_numpy())
    noise_area = 4 * np.pi * sigma_sci**2
    # Photon noise of the sky (in the noise), the transient and what sits beneath it (the variable
    # star or AGN nucleus whose change is measured), and the subtraction's residual of that source
    # (observe_sources), a fraction of its flux: in real stream alerts on stars the PSF-fit error is
    # about 2% of the star's flux (median sigmapsf 0.12 at a difference flux 0.20 of the star's;
    # alertlib.sky.realism.stream_calibration), far above its photon noise.
    residual = alerts["subtraction_residual"].to_numpy() * central_flux
    flux_error = np.sqrt(noise**2 * noise_area + (true_flux + central_flux) / GAIN + residual**2)
    measured_flux = np.maximum(true_flux + rng.normal(0, 1, n_alerts) * flux_error, 0.2 * true_flux)
    magpsf = zp - 2.5 * np.log10(measured_flux)
    sigmapsf = 1.0857 * flux_error / measured_flux
    # Nearest Pan-STARRS source: the host (galaxy-like score) or the star, else a random field object.
    host_mag_src = sources["host_mag"].to_numpy()
    host_in_ps1 = sources["has_host"].to_numpy() & (np.nan_to_num(host_mag_src, nan=99) < 21.5)
    offset = np.hypot(offset_x, offset_y)
    sg_host = rng.beta(1.2, 8.0, n_src)
    sg_star = rng.uniform(0.85, 1.0, n_src)
    # Field objects Pan-STARRS would list: brighter than FIELD_COUNT_MAG within 30 arcsec.
    owner = field["owner"].to_numpy()
    field_distance = (
        np.hypot(field["x"].to_numpy() - cand_x[owner], field["y"].to_numpy() - cand_y[owner]) * PIXEL_SCALE
    )
    listed = (field["mag_r"].to_numpy() < FIELD_COUNT_MAG) & (field_distance < 30.0)
    nmtchps = np.bincount(owner[listed], minlength=n_src) + host_in_ps1 * (offset < 30.0) + central_star
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
    sgscore = np.select([host_in_ps1, central_star], [sg_host, sg_star], sg_field)
    distpsnr = np.select(
        [host_in_ps1, central_star],
        [offset + np.abs(rng.normal(0, 0.1, n_src)), np.abs(rng.normal(0, 0.15, n_src))],
        dist_field,
    )
    compact = np.isin(a_kind, ["cosmic_ray", "hot_pixel"])
    measured = pd.DataFrame(
        {
            "magpsf": magpsf,
            "sigmapsf": sigmapsf,
            "fwhm": np.where(
                compact,
                rng.uniform(0.6, 1.3, n_alerts),
                fwhm * np.exp(rng.normal(0, 0.05, n_alerts)) + trail_length * 0.5,
            ),
            "sgscore1": sgscore[src],
            "distpsnr1": distpsnr[src],
            "nmtchps": nmtchps[src],
            "host_offset_arcsec": offset[src],
            "reference_fwhm": ref_fwhm,
        }
    )
    del host_truth
    return triplets, measured


def _object_id(source_id: np.ndarray, seed: int) -> np.ndarray:
    """ZTF-like object names, unique per (seed, source): ``ZTFsim`` + 7 letters."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    code = (np.asarray(source_id, dtype=np.int64) + 1_000_003 * int(seed)) % 26**7
    digits = [(code // 26**k) % 26 for k in range(6, -1, -1)]
    return np.array(["ZTFsim" + "".join(chars) for chars in zip(*(letters[d] for d in digits), strict=True)])


def source_set(alert_class: np.ndarray, label: np.ndarray) -> np.ndarray:
    """The BTS release's ``source_set``: trues, dims, vars or rejects."""
    return np.select(
        [label == 1, np.isin(alert_class, ["sn", "nuclear"]), np.isin(alert_class, ["varstar", "agn"])],
        ["trues", "dims", "vars"],
        "rejects",
    )


def simulate_alert_batch(
    seed: int, batch_index: int, n_sources: int, first_source_id: int, max_alerts: int = 8, class_mix: str = "bts"
):
    """Sources, alerts and raw triplets of one batch; its random stream depends only on (seed, batch).

    Returns
    -------
    triplets:
        (N, 63, 63, 3) float32 counts (before normalisation).
    candidates:
        One row per alert: ZTF candidate fields, labels and truth columns.
    """
    rng = np.random.default_rng([int(seed), int(batch_index), 3])
    sources = draw_sources(rng, n_sources, class_mix)
    alerts = observe_sources(rng, sources, max_alerts=max_alerts)
    triplets, measured = render_batch(rng, sources, alerts)
    src = alerts["source_index"].to_numpy()
    source_id = first_source_id + src
    label = (
        sources["class_index"].isin([0, 1]).to_numpy() & (sources["peakmag"].to_numpy() <= PEAK_MAG_THRESHOLD)
    ).astype(np.int64)[src]
    alert_class = sources["alert_class"].to_numpy()[src]
    candid = (np.int64(seed) % 1000) * 10**15 + source_id.astype(np.int64) * 1000 + np.arange(len(alerts)) % 1000
    candidates = pd.DataFrame(
        {
            "objectId": _object_id(source_id, seed),
            "candid": candid,
            "label": label,
            "source_set": source_set(alert_class, label),
            "alert_class": alert_class,
            "bogus_kind": sources["bogus_kind"].to_numpy()[src],
            "source_id": source_id,
            "peakmag": sources["peakmag"].to_numpy()[src],
            "jd": alerts["jd"].to_numpy(),
            "fid": alerts["fid"].to_numpy(),
            "isdiffpos": np.where(alerts["difference_sign"].to_numpy() > 0, "t", "f"),
            "ra": sources["ra"].to_numpy()[src],
            "dec": sources["dec"].to_numpy()[src],
            "magpsf": measured["magpsf"].to_numpy(),
            "sigmapsf": measured["sigmapsf"].to_numpy(),
            "fwhm": measured["fwhm"].to_numpy(),
            "sgscore1": measured["sgscore1"].to_numpy(),
            "distpsnr1": measured["distpsnr1"].to_numpy(),
            "nmtchps": measured["nmtchps"].to_numpy(),
            "ndethist": alerts["ndethist"].to_numpy(),
            "diffmaglim": alerts["diffmaglim"].to_numpy(),
            "magzpsci": alerts["magzpsci"].to_numpy(),
            "true_difference_mag": alerts["true_difference_mag"].to_numpy(),
            "phase_days": alerts["phase_days"].to_numpy(),
            "redshift": sources["redshift"].to_numpy()[src],
            "host_mag": sources["host_mag"].to_numpy()[src],
            "host_radius_arcsec": sources["host_radius_arcsec"].to_numpy()[src],
            "host_offset_arcsec": measured["host_offset_arcsec"].to_numpy(),
            "reference_fwhm": measured["reference_fwhm"].to_numpy(),
            "sky_level": alerts["sky"].to_numpy(),
            "sky_noise": alerts["noise"].to_numpy(),
            "galactic_latitude": sources["galactic_latitude"].to_numpy()[src],
            "field_star_density": sources["field_star_density"].to_numpy()[src],
        }
    )
    return triplets, candidates


def split_by_source(
    candidates: pd.DataFrame, seed: int, fractions=(0.81, 0.09, 0.10), n_max: int = 100
) -> dict[str, np.ndarray]:
    """Row indices of train/val/test: sources split 81/9/10; training keeps <= ``n_max`` alerts per source.

    The split is stratified by the source's label: the sources of each label are split 81/9/10 on
    their own, validation and test getting at least one source of each label that has three or more,
    so every split holds both classes (a small sky could otherwise leave a test split without one
    real transient, and its ROC AUC undefined).
    """
    rng = np.random.default_rng([int(seed), 7])
    by_source = candidates.groupby("source_id", sort=True)["label"].first()
    assignment: dict[str, list] = {"train": [], "val": [], "test": []}
    for label in sorted(by_source.unique()):
        order = rng.permutation(by_source.index[by_source == label].to_numpy())
        n = len(order)
        least = 1 if n >= 3 else 0  # val and test get at least one source of each label when n >= 3
        n_val = max(least, int(round(fractions[1] * n)))
        n_test = max(least, int(round(fractions[2] * n)))
        n_train = n - n_val - n_test
        assignment["train"].extend(order[:n_train])
        assignment["val"].extend(order[n_train : n_train + n_val])
        assignment["test"].extend(order[n_train + n_val :])
    source_of_row = candidates["source_id"].to_numpy()
    rows = {}
    for split, members in assignment.items():
        index = np.nonzero(np.isin(source_of_row, members))[0]
        if split == "train" and n_max is not None:
            priority = rng.random(index.size)
            order_in = np.lexsort((priority, source_of_row[index]))
            index = index[order_in]
            groups = source_of_row[index]
            within = np.arange(index.size) - np.searchsorted(groups, groups)
            index = np.sort(index[within < n_max])
        rows[split] = index
    return rows
