"""The alert simulator's calibrated numbers, read from the table ``calibration.yaml`` beside this module.

Each row of the table gives one constant's value, unit and meaning, where it comes from (real ZTF
packets of the shared data, a paper, or a choice) and how the value relates to it. Rows measured on
the packets name the function of ``alertlib.sky.packet_calibration`` and the key of its result that
gave the number, and the packet folders when not the table's (:func:`packets_of`);
``tests/test_calibration.py`` recomputes them. Only development sets are calibrated on, never the
study's held-out evaluation packets (``alert-packets/fink-ztf-crossmatched``, ``bts-real-sample``). The constants below are the table's
values under the names the simulator's modules use (pairs of bounds as tuples, per-band values as
dicts by ``fid``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

TABLE_PATH = Path(__file__).with_name("calibration.yaml")
RELATIONS = ("equals", "matched", "literature", "chosen")
MEASUREMENT_KEYS = ("measured_by", "statistic", "measured", "tolerance")


@dataclass(frozen=True)
class CalibratedConstant:
    """One row of the calibration table (see the comments at the top of ``calibration.yaml``)."""

    name: str
    value: int | float
    unit: str
    meaning: str
    source: str
    relation: str
    measured_by: str | None = None  # a function of alertlib.sky.packet_calibration
    statistic: str | None = None  # the key of its result: dotted keys, [i] for a list's item
    measured: float | None = None
    tolerance: float | None = None
    not_recomputable: str | None = None  # why the value cannot be recomputed from the packets
    packets: tuple[str, ...] | None = None  # the packet folders it was measured on, where not the table's


def _row(path: Path, name: str, fields: dict) -> CalibratedConstant:
    if "packets" in fields:
        fields = {**fields, "packets": tuple(fields["packets"])}
    try:
        row = CalibratedConstant(name=name, **fields)
    except TypeError as error:
        raise ValueError(f"{path}: constant {name!r} has unknown or missing fields ({error})") from error
    if isinstance(row.value, bool) or not isinstance(row.value, int | float):
        raise ValueError(f"{path}: constant {name!r} has value {row.value!r}, not a number (write 5000.0, not 5.0e3)")
    if row.relation not in RELATIONS:
        raise ValueError(f"{path}: constant {name!r} has relation {row.relation!r}; use one of {RELATIONS}")
    given = [getattr(row, key) is not None for key in MEASUREMENT_KEYS]
    if any(given) and not all(given):
        raise ValueError(f"{path}: constant {name!r} needs all of {MEASUREMENT_KEYS} or none")
    if all(given) == (row.not_recomputable is not None):
        raise ValueError(f"{path}: constant {name!r} needs either {MEASUREMENT_KEYS} or not_recomputable")
    if row.packets is not None and row.measured_by is None:
        raise ValueError(f"{path}: constant {name!r} names packets but no measurement on them")
    return row


def packets_of(row: CalibratedConstant) -> tuple[str, ...]:
    """The packet folders a measured row comes from: its own, else the table's."""
    return row.packets if row.packets is not None else tuple(PACKETS)


def load_table(path: str | Path = TABLE_PATH) -> tuple[list[str], dict[str, CalibratedConstant]]:
    """The packet folders and the rows of a calibration table, checked.

    Returns
    -------
    packets:
        The folders of real packets the measured rows come from, relative to the shared data folder.
    constants:
        One :class:`CalibratedConstant` per row, by name.
    """
    path = Path(path)
    table = yaml.safe_load(path.read_text())
    constants = {name: _row(path, name, fields) for name, fields in table["constants"].items()}
    return list(table["packets"]), constants


PACKETS, TABLE = load_table()


def _value(name: str) -> int | float:
    return TABLE[name].value


# Imaging conditions of the science image.
SCIENCE_NOISE_MEDIAN = _value("science_noise_median")
SCIENCE_NOISE_SPREAD = _value("science_noise_spread")
TEMPLATE_SKY_TO_NOISE = {1: _value("template_sky_to_noise_g"), 2: _value("template_sky_to_noise_r")}  # by fid
TEMPLATE_SKY_SPREAD = _value("template_sky_spread")
ZERO_POINT_MEDIAN = _value("zero_point_median")
ZERO_POINT_SPREAD = _value("zero_point_spread")
GAIN = _value("gain")
SEEING_MEDIAN_PX = _value("seeing_median_px")
SEEING_SPREAD = _value("seeing_spread")
# Cloudy exposures.
CLOUDY_FRACTION = _value("cloudy_fraction")
CLOUD_LOSS_MAG = (_value("cloud_loss_min_mag"), _value("cloud_loss_max_mag"))
CLOUD_CALIBRATION_ERROR = _value("cloud_calibration_error")
# The reference (template) image.
REFERENCE_NOISE_EXCESS = _value("reference_noise_excess")
REFERENCE_NOISE_SPREAD = _value("reference_noise_spread")
REFERENCE_FRAMES = _value("reference_frames")
REFERENCE_FRAMES_MORE = _value("reference_frames_more")
REFERENCE_FRAMES_MAX = _value("reference_frames_max")
REFERENCE_BETA = _value("reference_beta")
REFERENCE_FWHM_MEDIAN_PX = _value("reference_fwhm_median_px")
REFERENCE_NOISE_SMOOTHING = _value("reference_noise_smoothing")
REFERENCE_NOISE_SMOOTHING_SPREAD = _value("reference_noise_smoothing_spread")
# The difference image and the detections.
LIMIT_DEPTH_OFFSET_MAG = _value("limit_depth_offset_mag")
LOCAL_NOISE_SPREAD = _value("local_noise_spread")
# The quadrants of one exposure: spreads of their zero points, limits and log sky-to-noise about the exposure's.
QUADRANT_ZERO_POINT_SPREAD = _value("quadrant_zero_point_spread")
QUADRANT_LIMIT_SPREAD = _value("quadrant_limit_spread")
QUADRANT_SKY_TO_NOISE_SPREAD = _value("quadrant_sky_to_noise_spread")
SUBTRACTION_RESIDUAL = _value("subtraction_residual")
DIFFERENCE_BACKGROUND_SPREAD = _value("difference_background_spread")
PSF_MODEL_ERROR = _value("psf_model_error")
REGISTRATION_ERROR_PX = _value("registration_error_px")
# Variable stars: mean magnitudes from counts dN/dm ~ 10^(slope m) over VARIABLE_STAR_MAGS, fractional
# amplitudes from dN/dA ~ A^-VARIABILITY_INDEX over VARIABILITY_RANGE.
VARIABLE_STAR_SLOPE = _value("variable_star_slope")
VARIABLE_STAR_MAGS = (_value("variable_star_mag_min"), _value("variable_star_mag_max"))
VARIABILITY_INDEX = _value("variability_index")
VARIABILITY_RANGE = (_value("variability_min"), _value("variability_max"))
VARSTAR_DENSITY_POWER = _value("varstar_density_power")
# Bogus detections: the share of each kind (alertlib.sky.sources.BOGUS_KINDS, in its order), and the
# share of bogus sources in the mix of a whole exposure's candidates ("ztf-exposure").
BOGUS_FRACTIONS = {
    "dipole": _value("bogus_fraction_dipole"),
    "psf_mismatch": _value("bogus_fraction_psf_mismatch"),
    "cosmic_ray": _value("bogus_fraction_cosmic_ray"),
    "hot_pixel": _value("bogus_fraction_hot_pixel"),
    "bad_column": _value("bogus_fraction_bad_column"),
    "ghost": _value("bogus_fraction_ghost"),
    "noise": _value("bogus_fraction_noise"),
}
EXPOSURE_BOGUS_FRACTION = _value("exposure_bogus_fraction")
# Masked pixels: depths and sides uniform over the ranges, the upper bound excluded.
MASKED_STRIP_FRACTION = _value("masked_strip_fraction")
MASKED_STRIP_DEPTH_PX = (_value("masked_strip_depth_min_px"), _value("masked_strip_depth_max_px"))
MASKED_BLOCK_FRACTION = _value("masked_block_fraction")
MASKED_BLOCK_SIDE_PX = (_value("masked_block_side_min_px"), _value("masked_block_side_max_px"))
# The field: stars of the Milky Way (density by galactic latitude and longitude) and faint galaxies.
FIELD_COUNT_MAG = _value("field_count_mag")
FIELD_STARS_POLE = _value("field_stars_pole")
FIELD_DISK_CORE = _value("field_disk_core")
FIELD_BULGE = _value("field_bulge")
FIELD_EXTINCTION = _value("field_extinction")
FIELD_MAX_EXTINCTION = _value("field_max_extinction")
FIELD_DENSITY_SPREAD = _value("field_density_spread")
STAR_COUNT_SLOPE = _value("star_count_slope")
STAR_MAGS = (_value("star_mag_min"), _value("star_mag_max"))
STAR_COLOURS = (_value("star_colour_min"), _value("star_colour_max"))
GALAXY_COUNTS_22 = _value("galaxy_counts_22")
GALAXY_COUNT_SLOPE = _value("galaxy_count_slope")
GALAXY_MAGS = (_value("galaxy_mag_min"), _value("galaxy_mag_max"))
GALAXY_COLOURS = (_value("galaxy_colour_min"), _value("galaxy_colour_max"))
GALAXY_SIZE_SPLIT_MAG = _value("galaxy_size_split_mag")
GALAXY_SIGMAS_PX = (_value("galaxy_sigma_bright_px"), _value("galaxy_sigma_faint_px"))
