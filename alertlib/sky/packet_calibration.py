"""The numbers the simulator is calibrated on, measured on real ZTF packets (and on simulated alerts alike).

Each function measures one side of the simulated sky; ``alertlib/sky/calibration.yaml`` names, for
each calibrated constant, the function and the key of the statistic it came from:

- :func:`raw_cutout_levels` and :func:`sky_calibration`: on the raw cutouts, the background levels and
  noises, the template's noise and frames, cloudy exposures;
- :func:`stream_calibration`: the share of negative subtractions and how they are written, the stars
  under alerts, and the detection limits of clear exposures;
- :func:`field_calibration`: the field's crowding (``nmtchps`` by galactic latitude) and the
  reference's noise in sparse fields;
- :func:`mask_calibration`: masked strips and blocks.

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
LEVEL_FIELDS = ("magzpsci", "fid", "nframesref", "nmtchps", "fwhm")  # candidate fields raw_cutout_levels keeps
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
    counted once (:func:`exposure_of`).
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
    :func:`_noise_frames_and_seeing`.
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
