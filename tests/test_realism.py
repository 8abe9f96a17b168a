"""Realism: calibration statistics and the classifier two-sample test."""

from __future__ import annotations

import numpy as np
import pytest

from alertlib import realism
from alertlib.simulate import simulate_alert_arrays


@pytest.fixture(scope="module")
def simulated_with_sources():
    return simulate_alert_arrays(40, seed=11, progress=False)


@pytest.fixture(scope="module")
def simulated(simulated_with_sources):
    return simulated_with_sources[0]


def test_statistics_measure_what_was_simulated(simulated):
    stats = realism.triplet_statistics(simulated)
    assert len(stats) == len(simulated)
    # L2-normalised 63x63 cutouts with a sky level: the level sits near 1/63.
    assert 0.005 < stats["science_level"].median() < 0.016
    # The simulated science PSF FWHM has a median of 2.2 pixels; the half-maximum area recovers it.
    assert 1.5 < stats["psf_fwhm_px"].median() < 3.5
    table = realism.compare_statistics(stats, stats)
    assert set(table["data"]) == {"simulated", "real"}


def test_two_sample_test_detects_a_difference_and_not_a_copy(simulated_with_sources):
    simulated, table = simulated_with_sources
    sources = table["source_id"].to_numpy()
    half = len(simulated) // 2
    first, second = slice(0, half), slice(half, 2 * half)
    same = realism.two_sample_test(
        simulated[first],
        simulated[second],
        seed=0,
        folds=3,
        epochs=2,
        n_boot=100,
        sim_groups=sources[first],
        real_groups=sources[second],
    )
    assert {"auc", "auc_low", "auc_high", "n_sim", "n_real"} <= same.keys()
    assert same["auc"] < 0.8
    # Doubling the difference channel's noise is something a critic must see.
    rng = np.random.default_rng(0)
    altered = simulated[half : 2 * half].copy()
    altered[..., 2] += rng.normal(0, 0.02, altered[..., 2].shape).astype(np.float32)
    different = realism.two_sample_test(simulated[:half], altered, seed=0, folds=3, epochs=2, n_boot=100)
    assert different["auc"] > 0.9 and different["auc_low"] <= different["auc"] <= different["auc_high"]


@pytest.mark.realdata
def test_real_packets_are_read_with_the_packet_reader(real_folder):
    triplets, candidates, skipped = realism.read_real_triplets([real_folder("ztf_packets")])
    assert triplets.shape[1:] == (63, 63, 3) and len(candidates) == len(triplets)
    stats = realism.triplet_statistics(triplets)
    assert stats["psf_fwhm_px"].between(1, 8).mean() > 0.8


def test_noise_correlation_statistic_tells_smoothed_from_white_noise():
    import numpy as np

    from alertlib.alerts import correlated_noise
    from alertlib.realism import triplet_statistics

    rng = np.random.default_rng(0)
    white = rng.standard_normal((20, 63, 63, 3)).astype(np.float32)
    smooth = np.stack([correlated_noise(rng, (20, 63, 63), 0.75) for _ in range(3)], axis=-1)
    assert np.allclose(smooth.std(axis=(1, 2)), 1.0, atol=0.1)  # per-pixel variance kept
    for images, low, high in ((white, -0.12, 0.12), (smooth, 0.5, 0.75)):
        stats = triplet_statistics(images / np.sqrt((images**2).sum(axis=(1, 2), keepdims=True)))
        assert stats["reference_noise_corr"].between(low, high).all()
        assert stats["difference_noise_corr"].between(low, high).all()


def test_field_calibration_on_simulated_candidates(simulated_with_sources):
    triplets, table = simulated_with_sources
    result = realism.field_calibration(table, realism.triplet_statistics(triplets))
    assert set(result["nmtchps_by_abs_latitude"]) == {"0-5", "5-10", "10-20", "20-30", "30-50", "50-90"}
    assert sum(b["n"] for b in result["nmtchps_by_abs_latitude"].values()) == len(table)
    # Crowding raises the reference's measured noise correlation in the simulation too.
    assert result["reference_noise_corr_spearman_nmtchps"] > 0.2
