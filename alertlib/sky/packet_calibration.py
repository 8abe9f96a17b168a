"""The numbers the simulator is calibrated on, measured on real ZTF packets (and on simulated alerts alike).

Each function measures one side of the simulated sky; ``alertlib/sky/calibration.yaml`` names, for
each calibrated constant, the function and the key of the statistic it came from:

- :func:`raw_cutout_levels` and :func:`sky_calibration`: on the raw cutouts, the background levels and
  noises, the template's noise and frames, cloudy exposures;
- :func:`stream_calibration`: the share of negative subtractions and how they are written, the stars
  under alerts, and the detection limits of clear exposures;
- :func:`field_calibration`: the field's crowding (``nmtchps`` by galactic latitude) and the
  reference's noise in sparse fields;
- :func:`mask_calibration`: masked strips and blocks;
- :func:`image_calibration`: the PSF's width in the difference cutouts;
- :func:`exposure_conditions` and :func:`exposure_calibration`: each exposure's conditions, and how
  they scatter between the quadrants of one exposure;
- :func:`bogus_kinds` and :func:`bogus_calibration`: the bogus alerts' share and what their cutouts
  look like.

Alerts of one exposure share its sky and conditions: :func:`exposure_of` names the exposure of each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from astropy.stats import mad_std

from alertlib.core.vocab import CHANNELS
from alertlib.sky.calibration import GAIN

QUANTILES = [5, 10, 25, 50, 75, 90, 95]  # percentiles the calibration functions report
LEVEL_FIELDS = (
    "magzpsci",
    "fid",
    "nframesref",
    "nmtchps",
    "fwhm",
    "diffmaglim",
)  # candidate fields raw_cutout_levels keeps
NORMAL_5_95_WIDTH = 2 * 1.6448536269514722  # the 5-95% range of a normal distribution, in sigmas


def _on_star(candidates: pd.DataFrame) -> np.ndarray:
    """Alerts on a star: a Pan-STARRS source with ``sgscore1`` > 0.5 within 1.5 arcsec, with a ``magnr``."""
    number = {c: pd.to_numeric(candidates[c], errors="coerce") for c in ("magnr", "sgscore1", "distpsnr1")}
    return ((number["sgscore1"] > 0.5) & number["distpsnr1"].between(0, 1.5) & (number["magnr"] > 0)).to_numpy()


def stream_calibration(triplets: np.ndarray, candidates: pd.DataFrame) -> dict:
    """What the simulated variable stars and negative subtractions were calibrated on, in real packets.

    ``triplets`` (N, 63, 63, 3) and their ``candidates`` (``isdiffpos``, ``magnr``, ``magpsf``,
    ``sgscore1``, ``distpsnr1``), row for row. Returns the share of negative subtractions
    (``isdiffpos`` "f" or "0"); for each sign, the share whose difference cutout's most extreme pixel
    near the candidate (7x7 box) is positive (ZTF writes a negative subtraction as reference minus
    science, so the source shows positive either way); and, for alerts on a star (a Pan-STARRS
    source with ``sgscore1`` > 0.5 within 1.5 arcsec), quantiles (5, 10, 25, 50, 75, 90, 95%) of the
    star's magnitude in the reference (``magnr``), of ``magpsf``, and of the difference flux over
    the star's, and the median PSF-fit error (``sigmapsf``) on such alerts as a fraction of the star's
    flux; and the quantiles and robust spread of the detection limit (``diffmaglim``) in clear
    exposures (zero point within a magnitude of the median), the spread also with each exposure
    counted once (:func:`exposure_of`); and the share of alerts measured fainter than their limit
    (``magpsf`` > ``diffmaglim``).
    """
    sign = candidates["isdiffpos"].astype(str).str.lower().str[0].to_numpy()
    negative = np.isin(sign, ["f", "0"])
    centre = triplets.shape[1] // 2
    box = np.asarray(triplets[:, centre - 3 : centre + 4, centre - 3 : centre + 4, 2], dtype=np.float64)
    box = box.reshape(len(box), -1)
    extreme = np.where(box.max(axis=1) >= -box.min(axis=1), box.max(axis=1), box.min(axis=1))

    def share(mask):
        return float((extreme[mask] > 0).mean()) if mask.any() else float("nan")

    result = {
        "n_alerts": int(len(negative)),
        "negative_fraction": float(negative.mean()) if len(negative) else float("nan"),
        "positive_centre_fraction_negative": share(negative),
        "positive_centre_fraction_positive": share(~negative),
    }
    if "diffmaglim" in candidates and "magzpsci" in candidates:
        zero_point = pd.to_numeric(candidates["magzpsci"], errors="coerce")
        limit = pd.to_numeric(candidates["diffmaglim"], errors="coerce")
        clear = (zero_point.median() - zero_point <= 1.0).to_numpy() & limit.notna().to_numpy()
        if clear.any():  # exposures within a magnitude of the median zero point: no thick cloud
            values = limit.to_numpy(float)[clear]
            result["clear_diffmaglim_quantiles"] = np.percentile(values, QUANTILES).tolist()
            result["clear_diffmaglim_robust_sigma"] = float(mad_std(values))
            first_of_exposure = ~exposure_of(candidates)[clear].duplicated().to_numpy()
            result["clear_diffmaglim_robust_sigma_exposures_once"] = float(mad_std(values[first_of_exposure]))
    if "diffmaglim" in candidates and "magpsf" in candidates:
        beyond = pd.to_numeric(candidates["magpsf"], errors="coerce") - pd.to_numeric(
            candidates["diffmaglim"], errors="coerce"
        )
        result["fainter_than_limit_fraction"] = float((beyond.dropna() > 0).mean())
    if all(c in candidates for c in ("magnr", "magpsf", "sgscore1", "distpsnr1")):  # the simulated table has no magnr
        on_star = _on_star(candidates)
        magnr = pd.to_numeric(candidates["magnr"], errors="coerce").to_numpy(float)[on_star]
        magpsf = pd.to_numeric(candidates["magpsf"], errors="coerce").to_numpy(float)[on_star]
        result["n_on_star"] = int(on_star.sum())
        if on_star.any():
            flux_ratio = 10 ** (-0.4 * (magpsf - magnr))
            result["star_magnr_quantiles"] = np.percentile(magnr, QUANTILES).tolist()
            result["star_magpsf_quantiles"] = np.percentile(magpsf, QUANTILES).tolist()
            result["star_flux_ratio_quantiles"] = np.percentile(flux_ratio, QUANTILES).tolist()
            if "sigmapsf" in candidates:  # the PSF-fit flux error over the star's flux
                sigmapsf = pd.to_numeric(candidates["sigmapsf"], errors="coerce").to_numpy(float)[on_star]
                result["star_psf_fit_error_over_star_flux_median"] = float(np.nanmedian(sigmapsf / 1.0857 * flux_ratio))
    return result


def field_calibration(candidates: pd.DataFrame, statistics: pd.DataFrame) -> dict:
    """The real-packet numbers the simulated field was calibrated on.

    ``candidates`` are real ZTF candidates (``nmtchps``, ``ra``, ``dec``) and ``statistics`` their
    :func:`alertlib.sky.realism.triplet_statistics`, row for row. Returns the median ``nmtchps``
    (Pan-STARRS objects within 30 arcsec) in bins of galactic latitude, the reference noise
    correlation in sparse fields (``nmtchps`` <= 5) and its Spearman correlation with ``nmtchps``, the
    median reference noise-to-level where ``nmtchps`` < 20, and the median ring/core light ratio of the
    reference (``reference_extent``) around bright stars (``magnr`` 12-15.5) where the candidates say.
    """
    from scipy.stats import spearmanr

    from alertlib.sky.field import galactic_coordinates

    nmtchps = pd.to_numeric(candidates["nmtchps"], errors="coerce").to_numpy(dtype=float)
    _, latitude = galactic_coordinates(candidates["ra"].to_numpy(float), candidates["dec"].to_numpy(float))
    bins = (0, 5, 10, 20, 30, 50, 90)
    by_latitude = {}
    for low, high in zip(bins[:-1], bins[1:], strict=True):
        inside = (np.abs(latitude) > low) & (np.abs(latitude) <= high) & np.isfinite(nmtchps)
        by_latitude[f"{low}-{high}"] = {
            "n": int(inside.sum()),
            "median_nmtchps": float(np.median(nmtchps[inside])) if inside.any() else None,
        }
    correlation = statistics["reference_noise_corr"].to_numpy(float)
    sparse = nmtchps <= 5
    result = {
        "nmtchps_by_abs_latitude": by_latitude,
        "nmtchps_quantiles_5_10_25_50_75_90_95": np.nanpercentile(nmtchps, QUANTILES).tolist(),
        "reference_noise_corr_median_sparse": float(np.median(correlation[sparse])),
        "reference_noise_corr_spearman_nmtchps": float(spearmanr(correlation, nmtchps, nan_policy="omit")[0]),
        "reference_noise_to_level_median_nmtchps_below_20": float(
            np.median(statistics["reference_noise_to_level"].to_numpy(float)[nmtchps < 20])
        ),
    }
    if all(c in candidates for c in ("magnr", "sgscore1", "distpsnr1")):
        magnr = pd.to_numeric(candidates["magnr"], errors="coerce")
        bright_star = _on_star(candidates) & magnr.between(12.0, 15.5).to_numpy()
        extent = statistics["reference_extent"].to_numpy(float)[bright_star]
        result["reference_extent_median_bright_stars"] = float(np.median(extent)) if extent.size else None
    return result


def image_calibration(statistics: pd.DataFrame) -> dict:
    """The mean PSF width of the candidates in the difference cutouts (``psf_fwhm_px`` of
    :func:`alertlib.sky.realism.triplet_statistics`), measured alike on real and simulated cutouts."""
    return {"psf_fwhm_px_mean": float(np.nanmean(statistics["psf_fwhm_px"].to_numpy(float)))}


def raw_cutout_levels(paths) -> pd.DataFrame:
    """Background level and noise (median, robust sigma; counts) of each raw ZTF cutout, before normalisation.

    One row per ZTF alert of the packet files or folders ``paths`` whose three cutouts decode:
    ``{channel}_level`` and ``{channel}_noise`` for science, reference and difference (zero and NaN
    pixels, the padding at chip edges, left out), with ``magzpsci``, ``fid``, ``nframesref``,
    ``nmtchps``, ``fwhm`` (of the candidate, pixels), ``jd`` and ``exposure`` (:func:`exposure_of`).
    """
    from alertlib.io.packets import PacketError, decode_stamp_fast, expand_paths, read_packet_file

    rows = []
    for path in expand_paths([Path(p) for p in paths]):
        alerts, _ = read_packet_file(path)
        for alert in alerts:
            if alert.survey != "ztf" or any(alert.cutouts.get(c) is None for c in CHANNELS):
                continue
            fields = alert.fields
            row = {key: fields.get(key) for key in ("objectId", "jd", *LEVEL_FIELDS)}
            try:
                for channel in CHANNELS:
                    image = decode_stamp_fast(alert.cutouts[channel]).astype(np.float64)
                    values = image[np.isfinite(image) & (image != 0)]
                    level = float(np.median(values))
                    row[f"{channel}_level"] = level
                    row[f"{channel}_noise"] = float(mad_std(values))
            except PacketError:  # an undecodable cutout: load_triplets lists those with their reason
                continue
            rows.append(row)
    table = pd.DataFrame(rows)
    for column in LEVEL_FIELDS:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["exposure"] = exposure_of(table)
    return table


def sky_calibration(levels: pd.DataFrame, gain: float = GAIN, cloud_loss_mag: float = 1.0) -> dict:
    """The real-packet numbers the simulated background levels, noises and cloudy exposures were calibrated on.

    ``levels`` is :func:`raw_cutout_levels` of real packets. An alert is *cloudy* when its zero point
    lies more than ``cloud_loss_mag`` below the median (thick cloud); the others are *clear*. Returns
    the template-to-science level ratio, the slope of log10(science level) against the zero point
    (0.4 when the level scales with the transparency), the median science sky-to-noise per band and
    its lognormal spread in clear exposures, the template noise over the Poisson noise of its
    co-added sky (``sqrt(level / (gain nframesref))``), ``nframesref`` quantiles, and the share of
    cloudy alerts (per alert, per exposure, and per alert with each exposure's alerts counted once)
    with the quantiles of their loss; and, where ``levels`` has the columns, those of
    :func:`_noise_frames_and_seeing` and :func:`_limit_depth`.
    """
    t = levels.dropna(subset=["magzpsci", "science_level", "reference_level"])
    zp = t["magzpsci"].to_numpy(float)
    loss = np.median(zp) - zp
    cloudy = loss > cloud_loss_mag
    clear = ~cloudy
    positive = (t["science_level"] > 0).to_numpy()

    sky_to_noise, sky_to_noise_spread = {}, {}
    for fid in (1, 2):
        ratio = (t["science_level"] / t["science_noise"]).to_numpy(float)[
            clear & positive & (t["fid"] == fid).to_numpy()
        ]
        sky_to_noise[fid] = float(np.median(ratio)) if ratio.size else None
        sky_to_noise_spread[fid] = float(mad_std(np.log(ratio))) if ratio.size else None
    coadd_poisson = np.sqrt(np.maximum(t["reference_level"], 1e-9) / (gain * t["nframesref"]))
    excess = (t["reference_noise"] / coadd_poisson).to_numpy(float)[clear]
    fit = positive
    slope = (
        float(np.polyfit(zp[fit], np.log10(t["science_level"].to_numpy(float)[fit]), 1)[0]) if fit.sum() > 2 else None
    )
    per_exposure = pd.Series(cloudy).groupby(t["exposure"].to_numpy()).first()
    once = pd.DataFrame({"exposure": t["exposure"].to_numpy(), "cloudy": cloudy})
    once = pd.concat([once[~once["cloudy"]], once[once["cloudy"]].drop_duplicates("exposure")])
    return {
        "n_alerts": int(len(t)),
        "median_zero_point": float(np.median(zp)),
        "reference_to_science_level_quantiles_5_50_95": np.percentile(
            (t["reference_level"] / t["science_level"]).to_numpy(float)[positive], [5, 50, 95]
        ).tolist(),
        "log10_level_per_zero_point_mag": slope,
        "clear_sky_to_noise_median_by_fid": sky_to_noise,
        "clear_sky_to_noise_spread_by_fid": sky_to_noise_spread,
        "reference_noise_over_coadd_poisson_quantiles_25_50_75": np.percentile(excess, [25, 50, 75]).tolist(),
        "nframesref_quantiles_25_50_75_95": np.nanpercentile(t["nframesref"], [25, 50, 75, 95]).tolist(),
        "cloudy_fraction_alerts": float(cloudy.mean()),
        "cloudy_fraction_exposures": float(per_exposure.mean()),
        "cloudy_fraction_alerts_exposures_once": float(once["cloudy"].mean()),
        "cloud_loss_quantiles_0_50_100": np.percentile(loss[cloudy], [0, 50, 100]).tolist() if cloudy.any() else None,
        **_noise_frames_and_seeing(t, clear),
        **_limit_depth(t, clear),
    }


def _noise_frames_and_seeing(t: pd.DataFrame, clear: np.ndarray) -> dict:
    """The science noise's lognormal spread in clear exposures, the difference's residual background
    (median level over noise: the standard deviation of a normal of the same 5-95% range), the share
    of exposures whose template has more frames than the median (each exposure counted once) and the
    most frames, and the candidates' median ``fwhm`` (pixels); each where ``t`` has the columns."""
    result = {}
    noise = t["science_noise"].to_numpy(float)[clear]
    result["clear_science_noise_log_spread"] = float(mad_std(np.log(noise[noise > 0])))
    if {"difference_level", "difference_noise"} <= set(t.columns):
        background = (t["difference_level"] / t["difference_noise"]).dropna().to_numpy(float)
        low, high = np.percentile(background, [5, 95])
        result["difference_level_over_noise_spread"] = float((high - low) / NORMAL_5_95_WIDTH)
    frames = t["nframesref"].to_numpy(float)
    once = ~t["exposure"].duplicated().to_numpy()
    result["nframesref_above_median_fraction_exposures_once"] = float(np.mean(frames[once] > np.nanmedian(frames)))
    result["nframesref_max"] = float(np.nanmax(frames))
    if "fwhm" in t.columns:
        result["fwhm_median_px"] = float(np.nanmedian(t["fwhm"].to_numpy(float)))
    return result


def _limit_depth(t: pd.DataFrame, clear: np.ndarray) -> dict:
    """Zero points and limits of clear exposures (each exposure counted once, :func:`exposure_of`): the
    zero point's robust spread, and how far ZTF's ``diffmaglim`` lies above the 5-sigma white-noise
    limit of the difference cutout's pixel noise for a Gaussian PSF of the candidate's ``fwhm``
    (``zp - 2.5 log10(5 noise sqrt(4 pi) fwhm / 2.3548)``), the median over alerts; where ``t`` has the columns."""
    once = ~t["exposure"].duplicated().to_numpy()
    result = {
        "clear_zero_point_robust_sigma_exposures_once": float(mad_std(t["magzpsci"].to_numpy(float)[clear & once]))
    }
    if {"diffmaglim", "fwhm", "difference_noise"} <= set(t.columns):
        sigma = t["fwhm"].to_numpy(float) / 2.3548
        white = t["magzpsci"].to_numpy(float) - 2.5 * np.log10(
            5 * t["difference_noise"].to_numpy(float) * np.sqrt(4 * np.pi) * sigma
        )
        offset = (white - t["diffmaglim"].to_numpy(float))[clear]
        result["limit_depth_offset_mag_median"] = float(np.nanmedian(offset))
    return result


def exposure_of(candidates: pd.DataFrame) -> pd.Series:
    """The exposure of each real ZTF alert: its ``jd`` (the exposure's start, shared by every alert
    of one exposure, whatever the CCD), None where missing."""
    if "jd" not in candidates:
        return pd.Series([None] * len(candidates), index=candidates.index, dtype=object)
    return candidates["jd"].astype(float).round(6)


def mask_calibration(triplets: np.ndarray) -> dict:
    """Masked pixels of (N, H, W, 3) triplets: zero in all three cutouts (NaN in the packets, then 0).

    Returns the share of alerts with masked pixels; with a *strip* (a whole row or column along a
    side masked: the stamp runs off the chip) and the least and most depth of their strips (pixels);
    and with masked pixels but no strip (*blocks*, around saturated stars and bad pixels).
    """
    masked = (np.asarray(triplets) == 0).all(axis=-1)
    any_masked = masked.any(axis=(1, 2))
    # Each side's run of whole masked rows or columns, from the edge inwards.
    sides = (masked, masked[:, ::-1], masked.transpose(0, 2, 1), masked.transpose(0, 2, 1)[:, ::-1])
    depth = np.max([np.cumprod(side.all(axis=2), axis=1).sum(axis=1) for side in sides], axis=0)
    strip = depth > 0
    return {
        "n_alerts": int(len(masked)),
        "masked_fraction": float(any_masked.mean()),
        "strip_fraction": float(strip.mean()),
        "strip_depth_px_min": int(depth[strip].min()) if strip.any() else None,
        "strip_depth_px_max": int(depth[strip].max()) if strip.any() else None,
        "block_fraction": float((any_masked & ~strip).mean()),
    }


def exposure_conditions(candidates: pd.DataFrame, statistics: pd.DataFrame) -> pd.DataFrame:
    """The conditions of each exposure of real alerts, in the columns of
    :data:`alertlib.sky.exposures.EXPOSURE_COLUMNS` (less the seeing) and ``psf_fwhm_px``.

    ``candidates`` (``jd``, ``fid``, ``ra``, ``dec``, ``magzpsci``, ``diffmaglim``) and their
    :func:`alertlib.sky.realism.triplet_statistics`, row for row. Per exposure (:func:`exposure_of`):
    the most common band, the median position, zero point and limit, the median background over
    pixel noise of the science cutouts (``1 / science_noise_to_level``), the mean PSF width in the
    difference cutouts (``psf_fwhm_px``, a measure of the seeing taken alike on simulated cutouts:
    :func:`image_calibration`) and the number of alerts.
    """
    table = pd.DataFrame(
        {
            "exposure": exposure_of(candidates).to_numpy(),
            **{c: pd.to_numeric(candidates[c], errors="coerce").to_numpy(float) for c in ("jd", "fid", "ra", "dec")},
            **{c: pd.to_numeric(candidates[c], errors="coerce").to_numpy(float) for c in ("magzpsci", "diffmaglim")},
            "sky_to_noise": 1.0 / statistics["science_noise_to_level"].to_numpy(float),
            "psf_fwhm_px": statistics["psf_fwhm_px"].to_numpy(float),
        }
    ).dropna(subset=["exposure"])
    grouped = table.groupby("exposure", sort=True)
    conditions = grouped[["jd", "ra", "dec", "magzpsci", "diffmaglim", "sky_to_noise"]].median()
    conditions["psf_fwhm_px"] = grouped["psf_fwhm_px"].mean()
    conditions["fid"] = grouped["fid"].agg(lambda band: band.mode().iloc[0]).astype(np.int64)
    conditions["n_alerts"] = grouped.size()
    return conditions.reset_index(drop=True)


def exposure_calibration(candidates: pd.DataFrame, statistics: pd.DataFrame, min_images: int = 10) -> dict:
    """How the conditions of one exposure's alerts scatter, measured on real exposures with many alerts.

    ``candidates`` (``jd``, ``pid``, ``magzpsci``, ``diffmaglim``, ``rb``) and their
    :func:`alertlib.sky.realism.triplet_statistics`, row for row. For each exposure with alerts on
    ``min_images`` quadrant images (``pid``) or more: the robust spread, between its images, of the
    images' zero points and limits (each image has one of each), and of the log background over
    pixel noise between its alerts; the medians over those exposures. Also the share of alerts that
    ZTF's real/bogus score calls bogus (``rb`` < 0.5).
    """
    number = {
        c: pd.to_numeric(candidates[c], errors="coerce").to_numpy(float) for c in ("pid", "magzpsci", "diffmaglim")
    }
    table = pd.DataFrame(
        {
            "exposure": exposure_of(candidates).to_numpy(),
            **number,
            "log_sky_to_noise": -np.log(statistics["science_noise_to_level"].to_numpy(float)),
        }
    )
    spreads = []
    for _, alerts in table.dropna(subset=["exposure", "pid"]).groupby("exposure"):
        images = alerts.groupby("pid")[["magzpsci", "diffmaglim"]].median()
        if len(images) >= min_images:
            spreads.append(
                [mad_std(images["magzpsci"]), mad_std(images["diffmaglim"]), mad_std(alerts["log_sky_to_noise"])]
            )
    result = {"n_exposures": len(spreads)}
    if spreads:
        zero_point, limit, sky = np.median(np.asarray(spreads), axis=0)
        result.update(
            {
                "quadrant_zero_point_robust_sigma": float(zero_point),
                "quadrant_diffmaglim_robust_sigma": float(limit),
                "sky_to_noise_log_robust_sigma_within_exposure": float(sky),
            }
        )
    if "rb" in candidates:
        rb = pd.to_numeric(candidates["rb"], errors="coerce")
        result["low_rb_fraction"] = float((rb[rb.notna()] < 0.5).mean())
    return result


# The kinds of bogus alert told apart on the cutouts by :func:`bogus_kinds`, in the order they are tried.
BOGUS_CUTOUT_KINDS = ("line", "sharp", "star", "dipole", "faint", "other")


def bogus_kinds(triplets: np.ndarray, statistics: pd.DataFrame) -> np.ndarray:
    """What each alert's cutouts look like, among :data:`BOGUS_CUTOUT_KINDS` (the first that applies).

    ``triplets`` (N, 63, 63, 3) L2-normalised and their :func:`alertlib.sky.realism.triplet_statistics`.
    *line*: a row or column of the difference through the candidate stands 10 sigma out beyond the
    candidate (a bad column, a bleed trail); *sharp*: the difference's PSF is 1.6 pixels wide or less
    (a cosmic ray, a hot pixel); *star*: a star beneath the candidate in the reference, 300 sigma or
    more at its peak (the residual of a bright star); *dipole*: a negative lobe beside the candidate
    deeper than 0.6 of its peak (misregistration); *faint*: a difference peak under 8 sigma; *other*.
    """
    triplets = np.asarray(triplets, dtype=np.float64)
    size = triplets.shape[1]
    centre = size // 2
    reference = triplets[..., 1] - statistics["reference_level"].to_numpy(float)[:, None, None]
    box = (slice(centre - 2, centre + 3),) * 2
    star_snr = reference[:, box[0], box[1]].max(axis=(1, 2)) / np.maximum(statistics["reference_noise"], 1e-12)
    difference = triplets[..., 2]
    near = difference[:, centre - 4 : centre + 5, centre - 4 : centre + 5]
    negative_lobe = -near.min(axis=(1, 2)) / np.maximum(near.max(axis=(1, 2)), 1e-12)
    away = np.r_[0 : centre - 5, centre + 6 : size]  # the line beyond the candidate, on both sides
    columns = difference[:, away][:, :, centre - 1 : centre + 2].mean(axis=1)
    rows = difference[:, centre - 1 : centre + 2][:, :, away].mean(axis=2)
    line_snr = np.abs(np.concatenate([columns, rows], axis=1)).max(axis=1) * np.sqrt(away.size)
    line_snr = line_snr / np.maximum(statistics["difference_noise"].to_numpy(float), 1e-12)
    return np.select(
        [
            line_snr > 10,
            statistics["psf_fwhm_px"].to_numpy(float) <= 1.6,
            star_snr > 300,
            negative_lobe > 0.6,
            statistics["difference_peak_snr"].to_numpy(float) < 8,
        ],
        list(BOGUS_CUTOUT_KINDS[:-1]),
        BOGUS_CUTOUT_KINDS[-1],
    )


def bogus_calibration(triplets: np.ndarray, candidates: pd.DataFrame, statistics: pd.DataFrame) -> dict:
    """The bogus alerts' share and what their cutouts look like (:func:`bogus_kinds`).

    Bogus are the alerts ZTF's real/bogus score rejects (``rb`` < 0.5) in real packets, those of
    ``alert_class`` "bogus" in simulated ones. An alert read twice (same ``candid``) counts once.
    Returns ``n_bogus``, ``bogus_fraction`` and ``kind_fractions`` (a share per kind).
    """
    once = ~candidates["candid"].duplicated().to_numpy()
    if "rb" in candidates:
        rb = pd.to_numeric(candidates["rb"], errors="coerce").to_numpy(float)
        once &= np.isfinite(rb)
        bogus = rb < 0.5
    else:
        bogus = (candidates["alert_class"] == "bogus").to_numpy()
    kinds = bogus_kinds(np.asarray(triplets)[once & bogus], statistics[once & bogus].reset_index(drop=True))
    shares = pd.Series(kinds).value_counts(normalize=True)
    return {
        "n_bogus": int((once & bogus).sum()),
        "bogus_fraction": float(bogus[once].mean()),
        "kind_fractions": {kind: float(shares.get(kind, 0.0)) for kind in BOGUS_CUTOUT_KINDS},
    }


def survey_calibration(candidates: pd.DataFrame, statistics: pd.DataFrame) -> dict:
    """How conditions spread across years and fields: clear exposures, each counted once.

    ``candidates`` (``jd``, ``fid``, ``magzpsci``, ``diffmaglim``) and their
    :func:`alertlib.sky.realism.triplet_statistics`, row for row; an exposure is *clear* when its
    zero point lies within a magnitude of the median. Returns the number of exposures, the median
    and robust spread of their limits, the robust spread of their log background over pixel noise
    (``1 / science_noise_to_level``) by band (``fid``), and the medians by year.
    """
    from astropy.time import Time

    number = {c: pd.to_numeric(candidates[c], errors="coerce") for c in ("jd", "fid", "magzpsci", "diffmaglim")}
    table = pd.DataFrame(
        {**number, "exposure": exposure_of(candidates), "sky_to_noise": 1.0 / statistics["science_noise_to_level"]}
    )
    table = table.dropna().drop_duplicates("exposure")
    table = table[(table["magzpsci"].median() - table["magzpsci"] <= 1.0) & (table["sky_to_noise"] > 0)]
    table["year"] = pd.DatetimeIndex(Time(table["jd"].to_numpy(), format="jd").datetime64).year
    by_year = table.groupby(["year", "fid"])[["diffmaglim", "sky_to_noise"]].median()
    return {
        "n_exposures": int(len(table)),
        "clear_diffmaglim_median_exposures_once": float(table["diffmaglim"].median()),
        "clear_diffmaglim_robust_sigma_exposures_once": float(mad_std(table["diffmaglim"])),
        "clear_sky_to_noise_log_spread_by_fid_exposures_once": {
            int(fid): float(mad_std(np.log(group["sky_to_noise"]))) for fid, group in table.groupby("fid")
        },
        "medians_by_year_and_fid": {f"{year}-{fid}": row.round(3).to_dict() for (year, fid), row in by_year.iterrows()},
    }
