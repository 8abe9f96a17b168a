"""The numbers the simulator is calibrated on, measured on real ZTF packets (and on simulated alerts alike).

Each function measures one side of the simulated sky; ``alertlib/sky/calibration.yaml`` names, for
each calibrated constant, the function and the key of the statistic it came from:

- :func:`raw_cutout_levels` and :func:`sky_calibration`: on the raw cutouts, the background levels and
  noises, the template's noise and frames, cloudy exposures;
- :func:`stream_calibration`: the share of negative subtractions and how they are written, the stars
  under alerts, and the detection limits of clear exposures;
- :func:`field_calibration`: the field's crowding (``nmtchps`` by galactic latitude) and the
  reference noise correlation in sparse fields.

Alerts of one exposure share its sky and conditions: :func:`exposure_of` names the exposure of each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.vocab import CHANNELS

QUANTILES = [5, 10, 25, 50, 75, 90, 95]  # percentiles the calibration functions report


def stream_calibration(triplets: np.ndarray, candidates: pd.DataFrame) -> dict:
    """What the simulated variable stars and negative subtractions were calibrated on, in real packets.

    ``triplets`` (N, 63, 63, 3) and their ``candidates`` (``isdiffpos``, ``magnr``, ``magpsf``,
    ``sgscore1``, ``distpsnr1``), row for row. Returns the share of negative subtractions
    (``isdiffpos`` "f" or "0"); for each sign, the share whose difference cutout's most extreme pixel
    near the candidate (7x7 box) is positive (ZTF writes a negative subtraction as reference minus
    science, so the source shows positive either way); and, for alerts on a star (a Pan-STARRS
    source with ``sgscore1`` > 0.5 within 1.5 arcsec), quantiles (5, 10, 25, 50, 75, 90, 95%) of the
    star's magnitude in the reference (``magnr``), of ``magpsf``, and of the difference flux over
    the star's; and the quantiles and robust spread of the detection limit (``diffmaglim``) in clear
    exposures (zero point within a magnitude of the median).
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
            result["clear_diffmaglim_robust_sigma"] = float(1.4826 * np.median(np.abs(values - np.median(values))))
    columns = ("magnr", "magpsf", "sgscore1", "distpsnr1")
    if all(c in candidates for c in columns):  # real packets; the simulated table has no magnr
        number = {c: pd.to_numeric(candidates[c], errors="coerce") for c in columns}
        on_star = ((number["sgscore1"] > 0.5) & number["distpsnr1"].between(0, 1.5) & (number["magnr"] > 0)).to_numpy()
        magnr, magpsf = number["magnr"].to_numpy(float)[on_star], number["magpsf"].to_numpy(float)[on_star]
        result["n_on_star"] = int(on_star.sum())
        if on_star.any():
            result["star_magnr_quantiles"] = np.percentile(magnr, QUANTILES).tolist()
            result["star_magpsf_quantiles"] = np.percentile(magpsf, QUANTILES).tolist()
            result["star_flux_ratio_quantiles"] = np.percentile(10 ** (-0.4 * (magpsf - magnr)), QUANTILES).tolist()
    return result


def field_calibration(candidates: pd.DataFrame, statistics: pd.DataFrame) -> dict:
    """The real-packet numbers the simulated field was calibrated on.

    ``candidates`` are real ZTF candidates (``nmtchps``, ``ra``, ``dec``) and ``statistics`` their
    :func:`triplet_statistics`, row for row. Returns the median ``nmtchps`` (Pan-STARRS objects within
    30 arcsec) in bins of galactic latitude, the reference noise correlation in sparse fields
    (``nmtchps`` <= 5) and its Spearman correlation with ``nmtchps``.
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
    return {
        "nmtchps_by_abs_latitude": by_latitude,
        "nmtchps_quantiles_5_10_25_50_75_90_95": np.nanpercentile(nmtchps, QUANTILES).tolist(),
        "reference_noise_corr_median_sparse": float(np.median(correlation[sparse])),
        "reference_noise_corr_spearman_nmtchps": float(spearmanr(correlation, nmtchps, nan_policy="omit")[0]),
    }


def raw_cutout_levels(paths) -> pd.DataFrame:
    """Background level and noise (median, robust sigma; counts) of each raw ZTF cutout, before normalisation.

    One row per ZTF alert of the packet files or folders ``paths`` whose three cutouts decode:
    ``{channel}_level`` and ``{channel}_noise`` for science, reference and difference (zero and NaN
    pixels, the padding at chip edges, left out), with ``magzpsci``, ``fid``, ``nframesref``,
    ``nmtchps``, ``jd`` and ``exposure`` (:func:`exposure_of`).
    """
    from alertlib.io.packets import PacketError, decode_stamp_fast, expand_paths, read_packet_file

    rows = []
    for path in expand_paths([Path(p) for p in paths]):
        alerts, _ = read_packet_file(path)
        for alert in alerts:
            if alert.survey != "ztf" or any(alert.cutouts.get(c) is None for c in CHANNELS):
                continue
            fields = alert.fields
            row = {key: fields.get(key) for key in ("objectId", "jd", "magzpsci", "fid", "nframesref", "nmtchps")}
            try:
                for channel in CHANNELS:
                    image = decode_stamp_fast(alert.cutouts[channel]).astype(np.float64)
                    values = image[np.isfinite(image) & (image != 0)]
                    level = float(np.median(values))
                    row[f"{channel}_level"] = level
                    row[f"{channel}_noise"] = float(1.4826 * np.median(np.abs(values - level)))
            except PacketError:  # an undecodable cutout: load_triplets lists those with their reason
                continue
            rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("magzpsci", "fid", "nframesref", "nmtchps"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["exposure"] = exposure_of(table)
    return table


def sky_calibration(levels: pd.DataFrame, gain: float = 6.2, cloud_loss_mag: float = 1.0) -> dict:
    """The real-packet numbers the simulated background levels, noises and cloudy exposures were calibrated on.

    ``levels`` is :func:`raw_cutout_levels` of real packets. An alert is *cloudy* when its zero point
    lies more than ``cloud_loss_mag`` below the median (thick cloud); the others are *clear*. Returns
    the template-to-science level ratio, the slope of log10(science level) against the zero point
    (0.4 when the level scales with the transparency), the median science sky-to-noise per band and
    its lognormal spread in clear exposures, the template noise over the Poisson noise of its
    co-added sky (``sqrt(level / (gain nframesref))``), ``nframesref`` quantiles, and the share of
    cloudy alerts (per alert, per exposure, and per alert with each exposure's alerts counted once)
    with the quantiles of their loss.
    """
    t = levels.dropna(subset=["magzpsci", "science_level", "reference_level"])
    zp = t["magzpsci"].to_numpy(float)
    loss = np.median(zp) - zp
    cloudy = loss > cloud_loss_mag
    clear = ~cloudy
    positive = (t["science_level"] > 0).to_numpy()

    def spread(values):
        values = np.log(values)
        return float(1.4826 * np.median(np.abs(values - np.median(values))))

    sky_to_noise, sky_to_noise_spread = {}, {}
    for fid in (1, 2):
        ratio = (t["science_level"] / t["science_noise"]).to_numpy(float)[
            clear & positive & (t["fid"] == fid).to_numpy()
        ]
        sky_to_noise[fid] = float(np.median(ratio)) if ratio.size else None
        sky_to_noise_spread[fid] = spread(ratio) if ratio.size else None
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
    }


def exposure_of(candidates: pd.DataFrame) -> pd.Series:
    """The exposure of each real ZTF alert: its ``jd`` (the exposure's start, shared by every alert
    of one exposure, whatever the CCD), None where missing."""
    if "jd" not in candidates:
        return pd.Series([None] * len(candidates), index=candidates.index, dtype=object)
    return candidates["jd"].astype(float).round(6)
