"""The simulated background: template sky scaled by the transparency, gain-matched template noise, cloudy exposures."""

from __future__ import annotations

import numpy as np
import pytest

from alertlib.sky import calibration
from alertlib.sky.observing import observe_sources
from alertlib.sky.sources import draw_sources
from alertlib.sky.triplets import render_batch


def _observed(n=400, seed=5):
    rng = np.random.default_rng(seed)
    sources = draw_sources(rng, n)
    return sources, observe_sources(rng, sources)


def test_level_follows_the_template_sky_and_the_transparency():
    _, observed = _observed()
    level = observed["sky"].to_numpy()
    # The template cutout is background-matched to the science one.
    assert np.array_equal(observed["reference_level"].to_numpy(), level)
    expected = observed["template_sky"] * 10 ** (0.4 * (observed["magzpsci"] - calibration.ZERO_POINT_MEDIAN))
    assert np.allclose(level, expected)
    # r-band skies are brighter than g-band ones relative to the noise (real packets: 17.2 and 10.2).
    ratio = observed["template_sky"] / calibration.SCIENCE_NOISE_MEDIAN
    assert ratio[observed["fid"] == 2].median() > 1.3 * ratio[observed["fid"] == 1].median()


def test_cloudy_alerts_are_bright_and_keep_their_noise():
    _, observed = _observed()
    loss = calibration.ZERO_POINT_MEDIAN - observed["magzpsci"]
    cloudy = loss > calibration.CLOUD_LOSS_MAG[0] - 0.5
    assert 0 < cloudy.mean() < calibration.CLOUDY_FRACTION
    # Detected through the cloud: measured at five errors or more above a limit the loss lowers.
    assert (observed["measured_flux"][cloudy] >= 5 * observed["flux_error"][cloudy]).all()
    assert observed["diffmaglim"][cloudy].median() < observed["diffmaglim"][~cloudy].median() - 1
    # The level drops with the transparency, the science noise does not.
    to_noise = observed["sky"] / observed["noise"]
    assert to_noise[cloudy].median() < 0.3 * to_noise[~cloudy].median()
    assert 0.5 < observed["noise"][cloudy].median() / observed["noise"][~cloudy].median() < 2


def test_template_noise_is_gain_matched_like_its_level():
    from alertlib.sky.realism import triplet_statistics

    rng = np.random.default_rng(7)
    sources = draw_sources(rng, 300)
    observed = observe_sources(rng, sources)
    triplets, _ = render_batch(rng, sources, observed)
    stats = triplet_statistics(triplets / np.sqrt((triplets**2).sum(axis=(1, 2), keepdims=True)))
    loss = calibration.ZERO_POINT_MEDIAN - observed["magzpsci"].to_numpy()
    cloudy = loss > 0.5
    assert cloudy.any()
    # Template noise-to-level does not depend on the transparency (noise and level scale alike) ...
    ratio = stats["reference_noise_to_level"].to_numpy()
    assert 0.5 < np.median(ratio[cloudy]) / np.median(ratio[~cloudy]) < 2
    # ... while the science cutout's does: its noise is the exposure's own.
    science = stats["science_noise_to_level"].to_numpy()
    assert np.median(science[cloudy]) > 3 * np.median(science[~cloudy])


def test_cloudy_exposures_miscalibrate_every_static_source_in_the_cutout():
    rng = np.random.default_rng(11)
    sources = draw_sources(rng, 400, class_mix="ztf-stream")
    observed = observe_sources(rng, sources)
    error = observed["calibration_error"].to_numpy()
    cloudy = (calibration.ZERO_POINT_MEDIAN - observed["magzpsci"].to_numpy()) > calibration.CLOUD_LOSS_MAG[0] - 0.5
    assert cloudy.any() and (~cloudy).any()
    # Only cloudy exposures are miscalibrated, by either sign.
    assert np.all(error[~cloudy] == 0)
    assert (error[cloudy] > 0).any() and (error[cloudy] < 0).any()
    # The error scales the science image's static scene: rendered again without it (same random
    # draws), the science cutouts differ by the error times the scene, which the reference shows.
    calibrated = observed.assign(calibration_error=0.0)
    triplets, _ = render_batch(np.random.default_rng(1), sources, observed)
    unchanged, _ = render_batch(np.random.default_rng(1), sources, calibrated)
    change = triplets[..., 0] - unchanged[..., 0]
    assert np.all(change[~cloudy] == 0)
    large = np.flatnonzero(cloudy & (np.abs(error) > 0.1))
    assert large.size >= 3
    far = np.ones((63, 63), bool)
    far[27:36, 27:36] = False  # the candidate's own change is in observe_sources' magnitudes instead
    correlations = []
    for index in large:
        scaled = change[index] / error[index]
        reference = triplets[index, ..., 1] - np.median(triplets[index, ..., 1])
        correlations.append(np.corrcoef(reference[far], scaled[far])[0, 1])
    assert np.median(correlations) > 0.5


def test_masked_pixels_are_shared_by_the_three_cutouts_and_spare_the_candidate():
    rng = np.random.default_rng(13)
    sources = draw_sources(rng, 400)
    observed = observe_sources(rng, sources)
    triplets, _ = render_batch(rng, sources, observed)
    zero = triplets == 0
    assert np.array_equal(zero[..., 0], zero[..., 1]) and np.array_equal(zero[..., 0], zero[..., 2])
    masked = zero[..., 0].any(axis=(1, 2))
    expected = 1 - (1 - calibration.MASKED_STRIP_FRACTION) * (1 - calibration.MASKED_BLOCK_FRACTION)
    assert abs(masked.mean() - expected) < 0.05
    centre = 63 // 2
    assert not zero[:, centre - 2 : centre + 3, centre - 2 : centre + 3].any()


def test_supernovae_in_disks_follow_the_disk_light_whatever_the_bulge_size():
    from alertlib.sky.hosts import _offset_following_light

    n = 20000
    rng = np.random.default_rng(17)
    morph = {
        "magnitude_r": np.full(n, 18.0),
        "bulge_fraction": np.zeros(n),  # all in the disk
        "half_light_radius": np.full(n, 2.0),
        "bulge_radius_ratio": np.where(np.arange(n) < n // 2, 0.15, 0.45),
        "bulge_axis_ratio": np.ones(n),
        "disk_axis_ratio": np.ones(n),
        "position_angle": np.zeros(n),
    }
    dx, dy = _offset_following_light(rng, morph)
    radius = np.hypot(dx, dy)
    # Half the light of an exponential disk lies within its half-light radius; the bulge's size plays no part.
    for half in (radius[: n // 2], radius[n // 2 :]):
        assert abs(np.median(half) / 2.0 - 1) < 0.03


def test_each_epoch_limit_follows_its_noise_seeing_and_zero_point_and_detections_are_five_sigma():
    from alertlib.sky.exposures import difference_limit

    _, observed = _observed(n=600, seed=21)
    limit = difference_limit(observed["magzpsci"], observed["noise"], observed["fwhm_px"])
    assert np.allclose(observed["diffmaglim"], limit)
    # ZTF's limit is 5 of its PSF-fit errors of the sky, LIMIT_DEPTH_OFFSET_MAG above the white-noise one.
    white = observed["magzpsci"] - 2.5 * np.log10(
        5 * observed["noise"] * np.sqrt(4 * np.pi) * observed["fwhm_px"] / 2.3548
    )
    assert np.allclose(white - observed["diffmaglim"], calibration.LIMIT_DEPTH_OFFSET_MAG)
    # Every alert is measured at 5 errors or more (sigmapsf <= 0.217, as in every real packet); the
    # noise at each candidate scatters about its image's, so a few are measured beyond the limit.
    assert (observed["measured_flux"] >= 5 * observed["flux_error"]).all()
    magnitude = observed["magzpsci"] - 2.5 * np.log10(observed["measured_flux"])
    assert 0.005 < (magnitude > observed["diffmaglim"]).mean() < 0.15


def _exposure_sky(exposures, n=3000, seed=4, class_mix="ztf-exposure"):
    from alertlib.sky.exposures import exposure_quadrants

    rng = np.random.default_rng(seed)
    quadrants = exposure_quadrants(seed, exposures)
    sources = draw_sources(rng, n, class_mix, quadrants)
    return quadrants, sources, observe_sources(rng, sources, quadrants=quadrants)


def test_a_sky_of_exposures_shares_each_exposure_s_conditions_quadrant_by_quadrant():
    quadrants, sources, observed = _exposure_sky(3)
    assert len(quadrants) == 3 * 64 and set(quadrants["exposure"]) == {0, 1, 2}
    # One alert at most per source, all at the three exposures' times, in their bands.
    assert observed["source_index"].is_unique and observed["jd"].nunique() <= 3
    assert (observed.groupby("jd")["fid"].nunique() == 1).all()
    # Quadrants scatter about their exposure's zero point and limit by the calibrated spreads.
    by_exposure = quadrants.groupby("exposure")
    assert np.allclose(by_exposure["magzpsci"].std().median(), calibration.QUADRANT_ZERO_POINT_SPREAD, rtol=0.4)
    assert np.allclose(by_exposure["diffmaglim"].std().median(), calibration.QUADRANT_LIMIT_SPREAD, rtol=0.4)
    assert (by_exposure["fwhm_px"].nunique() == 1).all()  # one seeing per exposure
    # Each source lies in its quadrant of the sky, about 0.86 degrees a side.
    quadrant = quadrants.iloc[sources["quadrant_row"].to_numpy()]
    assert (np.abs(sources["dec"].to_numpy() - quadrant["dec"].to_numpy()) <= 0.44).all()
    # The background over the noise is the quadrant's.
    row = quadrants.iloc[sources["quadrant_row"].to_numpy()[observed["source_index"].to_numpy()]]
    assert np.allclose(observed["sky"] / observed["noise"], row["sky_to_noise"].to_numpy())


def test_a_sky_of_given_exposures_takes_their_conditions():
    import pandas as pd

    night = pd.DataFrame(
        {
            "jd": [2458451.7519, 2458451.7524],
            "fid": [1, 1],
            "ra": [23.0, 16.0],
            "dec": [-25.7, -17.4],
            "fwhm_px": [2.5, 3.0],
            "magzpsci": [25.5, 25.9],
            "diffmaglim": [19.5, 19.8],
            "sky_to_noise": [12.0, 15.2],
        }
    )
    quadrants, _, observed = _exposure_sky(night, n=2000)
    assert set(observed["fid"]) == {1} and set(observed["jd"]) <= set(night["jd"])
    for jd, alerts in observed.groupby("jd"):
        given = night.set_index("jd").loc[jd]
        assert abs(alerts["diffmaglim"].median() - given["diffmaglim"]) < 0.1
        assert abs(np.median(alerts["sky"] / alerts["noise"]) / given["sky_to_noise"] - 1) < 0.1
        assert (alerts["fwhm_px"] == given["fwhm_px"]).all()
    with pytest.raises(ValueError, match="columns"):
        _exposure_sky(night.drop(columns=["sky_to_noise"]))


def test_bogus_kinds_are_told_apart_on_the_cutouts_as_in_real_packets():
    import pandas as pd

    from alertlib.sky.packet_calibration import bogus_kinds
    from alertlib.sky.realism import triplet_statistics

    rng = np.random.default_rng(9)
    sources = draw_sources(rng, 600, class_mix="bts")
    sources = sources[sources["alert_class"] == "bogus"].reset_index(drop=True)
    observed = observe_sources(rng, sources)
    triplets, _ = render_batch(rng, sources, observed)
    triplets = triplets / np.sqrt((triplets**2).sum(axis=(1, 2), keepdims=True))
    kind = sources["bogus_kind"].to_numpy()[observed["source_index"].to_numpy()]
    seen = pd.crosstab(kind, bogus_kinds(triplets, triplet_statistics(triplets)), normalize="index")
    assert seen.loc["bad_column", "line"] > 0.8 and seen.loc["hot_pixel", "sharp"] > 0.8
    assert seen.loc["psf_mismatch", "star"] > 0.7 and seen.loc["noise", "faint"] > 0.5
    # A noise fluctuation lies at the limit, with nothing beneath it.
    noise = kind == "noise"
    assert noise.any() and (observed["diffmaglim"][noise] - observed["true_difference_mag"][noise]).abs().max() <= 0.5
    assert not sources.loc[sources["bogus_kind"] == "noise", "central_star"].any()
