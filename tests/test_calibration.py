"""The calibration table (alertlib/sky/calibration.yaml): complete, loaded as is, and recomputed from real packets.

Each row measured on the packets names a function of ``alertlib.sky.packet_calibration`` and the key
of the statistic; here they are run again on the same packet folders and must give the number the
table records within the row's tolerance (and, for rows whose value *is* the statistic, the value
too). Rows that cannot be recomputed say why in the table; these tests check that they do.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from alertlib.sky import calibration, packet_calibration, realism


def _statistic(result: dict, path: str):
    """The number at ``path`` in a calibration function's result: dotted keys, ``[i]`` for a list's item."""
    value = result
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if index:
            value = value[int(index)]
        else:
            value = value[int(key)] if key.isdigit() and int(key) in value else value[key]
    return value


def test_every_row_says_where_it_comes_from():
    assert calibration.PACKETS == [
        "alert-packets/ztf",
        "alert-packets/ztf-spark-snappy",
        "alert-packets/fink-ztf-parquet",
    ]
    assert len(calibration.TABLE) > 50
    held_out = ("alert-packets/fink-ztf-crossmatched", "bts-real-sample")
    for name, row in calibration.TABLE.items():
        assert row.unit and row.meaning and row.source, name
        assert row.relation in calibration.RELATIONS, name
        # Only development sets: never the study's held-out evaluation packets.
        assert not any(folder.startswith(held_out) for folder in calibration.packets_of(row)), name
        if row.measured_by is None:
            assert row.not_recomputable, name
            assert row.relation != "equals", name  # a value equal to a statistic can be recomputed
        else:
            assert callable(getattr(packet_calibration, row.measured_by, None)), (name, row.measured_by)
            assert row.tolerance >= 0, name


def test_the_constants_are_the_table_values_exactly():
    """Every row is used by one constant; values keep their type (counts and pixels stay integers)."""
    source = calibration.__loader__.get_source(calibration.__name__)
    used = set(re.findall(r'_value\("(\w+)"\)', source))
    assert used == set(calibration.TABLE)
    assert calibration.REFERENCE_FRAMES == 15 and isinstance(calibration.REFERENCE_FRAMES, int)
    assert calibration.MASKED_STRIP_DEPTH_PX == (5, 30) and all(
        isinstance(v, int) for v in calibration.MASKED_STRIP_DEPTH_PX
    )
    assert calibration.CLOUD_LOSS_MAG == (1.0, 4.4) and calibration.TEMPLATE_SKY_TO_NOISE == {1: 10.2, 2: 17.2}
    assert calibration.GALAXY_COUNTS_22 == 5000.0 and isinstance(calibration.GALAXY_COUNTS_22, float)
    # Written and read again, every value is the same float (or int) bit for bit.
    for name, row in calibration.TABLE.items():
        again = yaml.safe_load(yaml.safe_dump({"value": row.value}))["value"]
        assert type(again) is type(row.value) and again == row.value, name


def test_a_value_written_so_that_yaml_reads_a_string_is_refused(tmp_path):
    table = tmp_path / "calibration.yaml"
    table.write_text(
        "packets: []\nconstants:\n  counts:\n    value: 5.0e3\n    unit: u\n    meaning: m\n    source: s\n"
        "    relation: chosen\n    not_recomputable: r\n"
    )
    with pytest.raises(ValueError, match="not a number"):
        calibration.load_table(table)


def _calibration_results(folders) -> dict:
    """The results of every calibration function on the packets of ``folders``."""
    triplets, candidates, _ = realism.read_real_triplets(folders)
    statistics = realism.triplet_statistics(triplets)
    return {
        "sky_calibration": packet_calibration.sky_calibration(packet_calibration.raw_cutout_levels(folders)),
        "stream_calibration": packet_calibration.stream_calibration(triplets, candidates),
        "field_calibration": packet_calibration.field_calibration(candidates, statistics),
        "mask_calibration": packet_calibration.mask_calibration(triplets),
        "image_calibration": packet_calibration.image_calibration(statistics),
        "exposure_calibration": packet_calibration.exposure_calibration(candidates, statistics),
        "bogus_calibration": packet_calibration.bogus_calibration(triplets, candidates, statistics),
        "survey_calibration": packet_calibration.survey_calibration(candidates, statistics),
    }


@pytest.fixture(scope="module")
def packet_statistics(shared_data):
    """The results of every calibration function, for each set of packet folders the table's rows name."""
    sets = {calibration.packets_of(row) for row in calibration.TABLE.values() if row.measured_by is not None}
    missing = sorted({folder for folders in sets for folder in folders if not (shared_data / folder).is_dir()})
    if missing:
        pytest.skip(f"packet folders absent from the shared data: {missing}")
    return {folders: _calibration_results([shared_data / folder for folder in folders]) for folders in sets}


@pytest.mark.realdata
def test_measured_rows_recompute_from_the_packets(packet_statistics):
    table_packets = packet_statistics[tuple(calibration.PACKETS)]
    assert table_packets["sky_calibration"]["n_alerts"] == 285  # the packets the table was measured on
    off = []
    for name, row in calibration.TABLE.items():
        if row.measured_by is None:
            continue
        results = packet_statistics[calibration.packets_of(row)]
        recomputed = float(_statistic(results[row.measured_by], row.statistic))
        if not abs(recomputed - row.measured) <= row.tolerance + 1e-9:
            off.append(f"{name}: {row.measured_by} {row.statistic} = {recomputed:.6g}, table {row.measured}")
        if row.relation == "equals" and not abs(row.value - recomputed) <= row.tolerance + 1e-9:
            off.append(f"{name}: value {row.value} is {abs(row.value - recomputed):.3g} from {recomputed:.6g}")
    assert not off, off


@pytest.mark.realdata
def test_the_real_template_sky_spread_is_the_sky_to_noise_spread_less_the_noise_spread(packet_statistics):
    """template_sky_spread and science_noise_spread in quadrature give the real sky-to-noise spread,
    less what the detection's selection narrows (the simulated alerts' own spread, which
    test_the_simulated_sky_gives_the_statistics_its_matched_rows_were_matched_to checks, is the real one)."""
    survey = packet_statistics[calibration.packets_of(calibration.TABLE["template_sky_spread"])]["survey_calibration"]
    measured = np.mean(list(survey["clear_sky_to_noise_log_spread_by_fid_exposures_once"].values()))
    simulated = np.hypot(calibration.TEMPLATE_SKY_SPREAD, calibration.SCIENCE_NOISE_SPREAD)
    assert 0 <= simulated - measured < 0.1, (simulated, measured)


# Rows matched on the simulated sky (class mix ztf-stream, 1500 sources, seed 0): the statistic the
# simulated alerts give, and how near the real one it must come (the sampling error of 1500 sources).
MATCHED_ON_THE_STREAM_SKY = {
    "science_noise_median": 0.05,
    "science_noise_spread": 0.03,
    "template_sky_spread": 0.03,
    "reference_noise_excess": 0.0005,
    "seeing_median_px": 0.03,
    "local_noise_spread": 0.006,
}


@pytest.mark.slow
def test_the_simulated_sky_gives_the_statistics_its_matched_rows_were_matched_to():
    from alertlib.sky.simulate import simulate_alert_arrays

    triplets, candidates = simulate_alert_arrays(1500, 0, class_mix="ztf-stream", progress=False)
    statistics = realism.triplet_statistics(triplets)
    results = {
        "stream_calibration": packet_calibration.stream_calibration(triplets, candidates),
        "field_calibration": packet_calibration.field_calibration(candidates, statistics),
        "image_calibration": packet_calibration.image_calibration(statistics),
        "survey_calibration": packet_calibration.survey_calibration(candidates, statistics),
    }
    off = []
    for name, tolerance in MATCHED_ON_THE_STREAM_SKY.items():
        row = calibration.TABLE[name]
        assert row.relation == "matched", name
        simulated = float(_statistic(results[row.measured_by], row.statistic))
        if abs(simulated - row.measured) > tolerance:
            off.append(f"{name}: simulated {row.statistic} = {simulated:.5g}, real {row.measured}")
    assert not off, off
