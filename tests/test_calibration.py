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
    for name, row in calibration.TABLE.items():
        assert row.unit and row.meaning and row.source, name
        assert row.relation in calibration.RELATIONS, name
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


@pytest.fixture(scope="module")
def packet_statistics(shared_data):
    """The results of every calibration function on the table's packet folders."""
    folders = [shared_data / folder for folder in calibration.PACKETS]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        pytest.skip(f"packet folders absent from the shared data: {missing}")
    triplets, candidates, _ = realism.read_real_triplets(folders)
    return {
        "sky_calibration": packet_calibration.sky_calibration(packet_calibration.raw_cutout_levels(folders)),
        "stream_calibration": packet_calibration.stream_calibration(triplets, candidates),
        "field_calibration": packet_calibration.field_calibration(candidates, realism.triplet_statistics(triplets)),
        "mask_calibration": packet_calibration.mask_calibration(triplets),
    }


@pytest.mark.realdata
def test_measured_rows_recompute_from_the_packets(packet_statistics):
    assert packet_statistics["sky_calibration"]["n_alerts"] == 285  # the packets the table was measured on
    off = []
    for name, row in calibration.TABLE.items():
        if row.measured_by is None:
            continue
        recomputed = float(_statistic(packet_statistics[row.measured_by], row.statistic))
        if not abs(recomputed - row.measured) <= row.tolerance + 1e-9:
            off.append(f"{name}: {row.measured_by} {row.statistic} = {recomputed:.6g}, table {row.measured}")
        if row.relation == "equals" and not abs(row.value - recomputed) <= row.tolerance + 1e-9:
            off.append(f"{name}: value {row.value} is {abs(row.value - recomputed):.3g} from {recomputed:.6g}")
    assert not off, off


@pytest.mark.realdata
def test_the_real_template_sky_spread_is_the_sky_to_noise_spread_less_the_noise_spread(packet_statistics):
    """template_sky_spread and science_noise_spread in quadrature give the real sky-to-noise spread."""
    sky = packet_statistics["sky_calibration"]
    measured = np.mean(list(sky["clear_sky_to_noise_spread_by_fid"].values()))
    simulated = np.hypot(calibration.TEMPLATE_SKY_SPREAD, calibration.SCIENCE_NOISE_SPREAD)
    assert abs(simulated - measured) < 0.05, (simulated, measured)
