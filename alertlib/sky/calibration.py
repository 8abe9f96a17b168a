"""The simulator's calibrated numbers: imaging conditions, the field, variable stars, masks.

Each number says where it comes from: real ZTF packets measured with the calibration functions of
``alertlib.sky.realism``, or a choice. The modules of the alert simulator (``sources``,
``observing``, ``field``, ``triplets``, ``measurements``) read them from here.
"""

from __future__ import annotations

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
# is part), and scaled by each exposure's transparency. Numbers from alertlib.sky.packet_calibration.sky_calibration
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
# Real stream alerts on a star (alertlib.sky.packet_calibration.stream_calibration) have |difference| flux over the
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
# the sparsest real fields (see alertlib.sky.packet_calibration.field_calibration).
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
# alertlib.sky.packet_calibration.field_calibration; the faint ends of the counts are cut where crowded simulated
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
ZERO_POINT_MEDIAN = 26.1
GAIN = 6.2
