"""Realism: calibration statistics and the classifier two-sample test."""

from __future__ import annotations

import numpy as np
import pytest

from alertlib.sky import packet_calibration, realism
from alertlib.sky.simulate import simulate_alert_arrays


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

    from alertlib.sky.realism import triplet_statistics
    from alertlib.sky.render import correlated_noise

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
    result = packet_calibration.field_calibration(table, realism.triplet_statistics(triplets))
    assert set(result["nmtchps_by_abs_latitude"]) == {"0-5", "5-10", "10-20", "20-30", "30-50", "50-90"}
    assert sum(b["n"] for b in result["nmtchps_by_abs_latitude"].values()) == len(table)
    # Crowding raises the reference's measured noise correlation in the simulation too.
    assert result["reference_noise_corr_spearman_nmtchps"] > 0.2


def test_sky_calibration_recovers_a_level_proportional_to_the_transparency():
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 200
    zp = 26.2 + rng.normal(0, 0.1, n) - np.where(np.arange(n) < 20, 3.0, 0.0)  # 20 cloudy alerts
    fid = rng.choice([1, 2], n)
    noise = 10 * np.exp(rng.normal(0, 0.1, n))
    level = np.where(fid == 1, 100.0, 180.0) * 10 ** (0.4 * (zp - 26.2))
    levels = pd.DataFrame(
        {
            "magzpsci": zp,
            "fid": fid,
            "nframesref": 15,
            "exposure": [f"e{i // 10 if i < 20 else i}" for i in range(n)],  # two cloudy exposures of 10
            "science_level": level,
            "science_noise": noise,
            "reference_level": level,
            "reference_noise": 1.3 * np.sqrt(level / (6.2 * 15)),
        }
    )
    result = packet_calibration.sky_calibration(levels)
    assert abs(result["log10_level_per_zero_point_mag"] - 0.4) < 0.02
    assert result["cloudy_fraction_alerts"] == 0.1
    assert result["cloudy_fraction_exposures"] == 2 / 182
    assert abs(result["reference_noise_over_coadd_poisson_quantiles_25_50_75"][1] - 1.3) < 1e-6
    assert result["clear_sky_to_noise_median_by_fid"][2] > 1.5 * result["clear_sky_to_noise_median_by_fid"][1]


@pytest.mark.realdata
def test_sky_calibration_of_real_packets(real_folder):
    result = packet_calibration.sky_calibration(packet_calibration.raw_cutout_levels([real_folder("ztf_packets")]))
    assert result["n_alerts"] > 0
    # ZTF template cutouts are background-matched to the science cutouts.
    assert 0.9 < result["reference_to_science_level_quantiles_5_50_95"][1] < 1.1


def test_linked_groups_join_objects_and_exposures():
    objects = ["a", "a", "b", "c", "d", "e"]
    exposures = [1.0, 2.0, 2.0, 3.0, float("nan"), float("nan")]
    groups = realism.linked_groups(objects, exposures)
    # a-a by object, a-b by exposure 2; c alone; missing exposures join nothing.
    assert groups[0] == groups[1] == groups[2]
    assert len({groups[0], groups[3], groups[4], groups[5]}) == 4
    assert sorted(set(groups.tolist())) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="lengths"):
        realism.linked_groups(objects, exposures[:2])


def test_cluster_bootstrap_is_wider_when_a_group_holds_many_triplets():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(100, int), np.ones(100, int)]
    scores = rng.normal(size=200) + 0.8 * labels
    scores[150:] += 2.0  # half of one class shares one group's shift: one draw, not fifty
    groups = np.r_[np.arange(150), np.full(50, 150)]
    auc, low, high = realism.bootstrap_auc(labels, scores, seed=0, n_boot=400)
    auc_g, low_g, high_g = realism.bootstrap_auc(labels, scores, seed=0, n_boot=400, groups=groups)
    assert auc == auc_g and low_g <= auc_g <= high_g
    assert high_g - low_g > 1.3 * (high - low)


def test_sky_against_packets_groups_real_alerts_by_object_and_exposure(monkeypatch, tmp_path):
    import pandas as pd

    seen = {}
    real_candidates = pd.DataFrame({"objectId": ["x", "y", "z"], "jd": [2459000.5, 2459000.5, 2459001.5]})
    monkeypatch.setattr(
        realism, "read_simulated_triplets", lambda _: (np.zeros((2, 63, 63, 3)), pd.DataFrame({"source_id": [7, 8]}))
    )
    monkeypatch.setattr(
        realism, "read_real_triplets", lambda _: (np.zeros((3, 63, 63, 3)), real_candidates, pd.DataFrame())
    )
    monkeypatch.setattr(realism, "two_sample_test", lambda *a, **k: seen.update(k) or {})
    realism.sky_against_packets(tmp_path, [tmp_path])
    assert seen["sim_groups"].tolist() == [7, 8]
    groups = seen["real_groups"]
    assert groups[0] == groups[1] != groups[2]  # x and y were seen in one exposure


def test_stream_calibration_of_simulated_alerts():
    from alertlib.sky.alerts import simulate_alert_batch

    raw, table = simulate_alert_batch(4, 0, 120, 0, class_mix="ztf-stream")
    simulated = packet_calibration.stream_calibration(raw, table)
    assert simulated["n_alerts"] == len(raw) and 0.2 < simulated["negative_fraction"] < 0.8
    assert simulated["positive_centre_fraction_negative"] > 0.9
    assert simulated["positive_centre_fraction_positive"] > 0.9
    flipped = raw.copy()
    flipped[..., 2] *= -1  # written the other way round, negative subtractions would show negative
    assert packet_calibration.stream_calibration(flipped, table)["positive_centre_fraction_negative"] < 0.1


@pytest.mark.realdata
def test_stream_calibration_of_real_packets(real_folder):
    triplets, candidates, _ = realism.read_real_triplets([real_folder("ztf_packets")])
    real = packet_calibration.stream_calibration(triplets, candidates)
    assert real["n_alerts"] == len(triplets) and 0 < real["negative_fraction"] < 1
    assert real["positive_centre_fraction_negative"] > 0.8
    assert real["n_on_star"] > 0 and 10 < real["star_magnr_quantiles"][3] < 20


def test_realism_by_set_compares_each_set_with_the_sky_of_its_mix(monkeypatch, tmp_path):
    from alertlib.sky import simulate

    mixes, simulate_alert_arrays = [], simulate.simulate_alert_arrays

    def simulate_recording(n_sources, seed, **options):
        mixes.append(options["class_mix"])
        return simulate_alert_arrays(n_sources, seed, **options)

    real_triplets, real_table = simulate_alert_arrays(40, seed=12, class_mix="ztf-stream", progress=False)
    noisy = real_triplets.copy()
    noisy[..., 2] += np.random.default_rng(0).normal(0, 0.02, noisy[..., 2].shape).astype(np.float32)
    real = {"same": real_triplets, "noisy": noisy}
    monkeypatch.setattr(simulate, "simulate_alert_arrays", simulate_recording)
    monkeypatch.setattr(realism, "read_real_triplets", lambda folders: (real[folders[0].name], real_table, []))
    for name in real:
        (tmp_path / name).mkdir()
    sets = {
        "same": realism.PacketSet(("same",), {"class_mix": "ztf-stream"}),
        "noisy": realism.PacketSet(("noisy",), {"class_mix": "bts"}, development=False),
        "absent": realism.PacketSet(("nowhere",), {"class_mix": "bts"}),
    }
    table = realism.realism_by_set(sets, n_sources=40, seed=3, n_boot=100, folds=3, workers=1, shared_data=tmp_path)
    assert table["set"].tolist() == ["same", "noisy"]  # a set whose folders are absent is left out
    assert mixes == ["ztf-stream", "bts"] and table["class_mix"].tolist() == mixes
    same, different = table.iloc[0], table.iloc[1]
    assert same["auc"] < 0.8 and different["auc"] > 0.9
    assert (table["auc_low"] <= table["auc"]).all() and (table["auc"] <= table["auc_high"]).all()
    assert table["development"].tolist() == [True, False]
    assert (table["n_real_alerts"] == len(real_table)).all() and (table["n_real"] <= table["n_sim_alerts"]).all()
    assert (table["n_real_groups"] == realism.real_groups(real_table).max() + 1).all()
    with pytest.raises(FileNotFoundError, match="none of the packet sets"):
        realism.realism_by_set({"absent": sets["absent"]}, shared_data=tmp_path)


def test_real_groups_by_exposure_or_by_quadrant_image():
    import pandas as pd

    table = pd.DataFrame({"objectId": ["a", "b", "c", "c"], "jd": [1.0, 1.0, 1.0, 2.0], "pid": [10, 11, 11, 20]})
    assert len(set(realism.real_groups(table, "exposure"))) == 1  # one exposure holds them all
    quadrant = realism.real_groups(table, "quadrant")
    assert quadrant[0] != quadrant[1] == quadrant[2] == quadrant[3]  # c links image 11 and image 20
    with pytest.raises(ValueError, match="group_by"):
        realism.real_groups(table, "night")


def test_statistics_critic_alone_trains_no_cnn(simulated_with_sources, monkeypatch):
    simulated, table = simulated_with_sources
    monkeypatch.setattr(realism, "_cnn_scores", lambda *a, **k: pytest.fail("the CNN critic was trained"))
    half = len(simulated) // 2
    result = realism.two_sample_test(simulated[:half], simulated[half:], folds=3, n_boot=50, critics=("features",))
    assert result["critic"] == "features" and "auc_cnn" not in result
    with pytest.raises(ValueError, match="critics"):
        realism.two_sample_test(simulated[:half], simulated[half:], critics=("eyes",))


@pytest.mark.realdata
def test_the_packet_sets_name_the_held_out_evaluation_folders_as_not_for_calibration(shared_data):
    held_out = {"alert-packets/fink-ztf-crossmatched", "bts-real-sample"}
    for name, packet_set in realism.PACKET_SETS.items():
        assert all((shared_data / folder).is_dir() for folder in packet_set.folders), name
        assert packet_set.development == (not held_out & set(packet_set.folders)), name


def test_a_held_out_set_never_lends_its_exposures_to_the_sky(monkeypatch, tmp_path):
    import pandas as pd

    monkeypatch.setattr(realism, "triplet_statistics", lambda _: pytest.fail("the held-out set was measured"))
    monkeypatch.setattr(
        realism, "read_real_triplets", lambda _: (np.zeros((2, 63, 63, 3)), pd.DataFrame({"objectId": ["a", "b"]}), [])
    )
    (tmp_path / "held-out").mkdir()
    held_out = realism.PacketSet(("held-out",), {"exposures": "matched"}, development=False)
    with pytest.raises(ValueError, match="held out"):
        realism.realism_by_set({"held-out": held_out}, shared_data=tmp_path)


def test_matched_exposures_take_each_exposure_s_conditions_and_its_seeing_from_the_psf_width():
    import pandas as pd

    from alertlib.sky.calibration import SEEING_MEDIAN_PX, TABLE

    candidates = pd.DataFrame(
        {
            "jd": [1.5, 1.5, 1.5, 2.5],
            "fid": [1, 1, 2, 2],
            "ra": [10.0, 11.0, 12.0, 50.0],
            "dec": [0.0, 1.0, 2.0, 5.0],
            "magzpsci": [26.0, 26.2, 26.4, 25.0],
            "diffmaglim": [19.0, 19.5, 20.0, 18.0],
        }
    )
    width = TABLE["seeing_median_px"].measured
    statistics = pd.DataFrame(
        {"science_noise_to_level": [0.1, 0.05, 0.1, 0.2], "psf_fwhm_px": [width] * 3 + [2 * width]}
    )
    table = realism.matched_exposures(candidates, statistics)
    assert table["jd"].tolist() == [1.5, 2.5] and table["fid"].tolist() == [1, 2]
    assert table.loc[0, ["magzpsci", "diffmaglim", "sky_to_noise", "ra"]].tolist() == [26.2, 19.5, 10.0, 11.0]
    assert np.allclose(table["fwhm_px"], [SEEING_MEDIAN_PX, 2 * SEEING_MEDIAN_PX])
