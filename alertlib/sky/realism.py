"""How real is the simulated sky? Calibration statistics and a classifier two-sample test.

``triplet_statistics`` measures, on L2-normalised triplets (so real and simulated are compared on
the same footing), what the simulator was calibrated on: the noise-to-level ratio of the science
and reference cutouts (sky noise over sky level does not change under normalisation), the noise of
the difference, the PSF width of the candidate in the difference, pixel-value quantiles of each
channel, and whether the reference shows an extended host around the candidate.
``field_calibration`` measures on real packets what the simulated field (star density by galactic
latitude, crowding) was calibrated on: ``nmtchps`` by latitude and the reference noise correlation
in sparse fields. ``sky_calibration`` measures on the raw cutouts (``raw_cutout_levels``) what the
simulated background levels, noises and cloudy exposures were calibrated on; ``stream_calibration``
the share of negative subtractions and how they are written, the stars under alerts, and the
detection limits of clear exposures.

``two_sample_test`` trains classifiers to tell simulated from real triplets and reports their
held-out (cross-validated) ROC AUC with a bootstrap interval: 0.5 means the classifier cannot tell
them apart. Two classifiers look from two sides: a small CNN on the pixels, and gradient-boosted
trees on the calibration statistics; the reported ``auc`` is the larger (the stronger critic).
Folds and bootstrap keep groups whole: each simulated source, and for real alerts each ZTF object
and each exposure (``linked_groups``), since alerts of one exposure share its sky and seeing.

Real triplets are read with ``alertlib.io.packets.load_triplets``; simulated ones from a folder in the
BTS release layout (``alertlib simulate alerts``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.vocab import CHANNELS

QUANTILES = [5, 10, 25, 50, 75, 90, 95]  # percentiles the calibration functions report
# The statistics the simulator was calibrated on, compared and drawn beside real packets.
CALIBRATION_STATISTICS = (
    "science_noise_to_level",
    "reference_noise_to_level",
    "difference_noise",
    "psf_fwhm_px",
    "difference_peak_snr",
    "reference_extent",
    "reference_noise_corr",
    "difference_noise_corr",
)


def _robust_sigma(values: np.ndarray, axis) -> np.ndarray:
    median = np.median(values, axis=axis, keepdims=True)
    return 1.4826 * np.median(np.abs(values - median), axis=axis)


def _neighbour_correlation(strips: np.ndarray) -> np.ndarray:
    """Correlation of the noise between horizontally and vertically adjacent pixels, per image (N, H, W).

    Measured away from the candidate (the caller passes the top third of the cutout), after removing
    the median and clipping at 4 robust sigmas so that stars do not dominate. Co-added, resampled
    references have correlated noise (about 0.6 in ZTF packets); ZOGY difference images have white
    noise (about 0).
    """
    x = strips.astype(np.float64)
    x = x - np.median(x, axis=(1, 2), keepdims=True)
    sigma = np.maximum(_robust_sigma(x, axis=(1, 2))[:, None, None], 1e-30)
    x = np.clip(x, -4 * sigma, 4 * sigma)
    power = np.maximum((x**2).mean(axis=(1, 2)), 1e-300)
    across = (x[:, :, 1:] * x[:, :, :-1]).mean(axis=(1, 2))
    down = (x[:, 1:, :] * x[:, :-1, :]).mean(axis=(1, 2))
    return 0.5 * (across + down) / power


def triplet_statistics(triplets: np.ndarray) -> pd.DataFrame:
    """Calibration statistics of (N, 63, 63, 3) L2-normalised triplets, one row per triplet."""
    triplets = np.asarray(triplets, dtype=np.float32)
    n, size = triplets.shape[0], triplets.shape[1]
    centre = size // 2
    rows = {}
    valid = triplets != 0  # zero padding at chip edges is not sky
    for k, name in enumerate(CHANNELS):
        channel = triplets[..., k]
        flat = channel.reshape(n, -1)
        masked = np.where(valid[..., k].reshape(n, -1), flat, np.nan)
        level = np.nanmedian(masked, axis=1)
        sigma = 1.4826 * np.nanmedian(np.abs(masked - level[:, None]), axis=1)
        rows[f"{name}_level"] = level
        rows[f"{name}_noise"] = sigma
        if name != "difference":
            rows[f"{name}_noise_to_level"] = sigma / np.maximum(np.abs(level), 1e-9)
        for q in (1, 50, 99, 99.9):
            rows[f"{name}_q{q}"] = np.nanpercentile(masked, q, axis=1)
    for k, name in enumerate(CHANNELS):
        rows[f"{name}_noise_corr"] = _neighbour_correlation(triplets[:, : size // 3, :, k])
    difference = triplets[..., 2]
    box = difference[:, centre - 5 : centre + 6, centre - 5 : centre + 6]
    peak = box.max(axis=(1, 2))
    rows["difference_peak_snr"] = peak / np.maximum(rows["difference_noise"], 1e-9)
    # PSF width from the area above half the peak (robust for noisy, undersampled stamps).
    above = (box >= 0.5 * peak[:, None, None]).sum(axis=(1, 2))
    rows["psf_fwhm_px"] = 2.0 * np.sqrt(above / np.pi)
    # Extended emission around the candidate in the reference: a host galaxy, not a star.
    reference = triplets[..., 1] - rows["reference_level"][:, None, None]
    yy, xx = np.mgrid[0:size, 0:size]
    radius = np.hypot(yy - centre, xx - centre)
    core = reference[:, radius < 3].sum(axis=1)
    ring = reference[:, (radius >= 3) & (radius < 9)].sum(axis=1)
    ring_noise = rows["reference_noise"] * np.sqrt(((radius >= 3) & (radius < 9)).sum())
    rows["reference_ring_snr"] = ring / np.maximum(ring_noise, 1e-12)
    rows["reference_extent"] = ring / np.maximum(np.abs(core), 1e-12)
    rows["host_visible"] = (rows["reference_ring_snr"] > 5) & (rows["reference_extent"] > 1.0)
    return pd.DataFrame(rows)


def compare_statistics(simulated: pd.DataFrame, real: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Median and 10-90% range of each statistic, simulated beside real (host_visible: the fraction)."""
    columns = columns or [*CALIBRATION_STATISTICS, "host_visible"]
    rows = []
    for column in columns:
        for name, table in (("simulated", simulated), ("real", real)):
            values = table[column].astype(float).to_numpy()
            rows.append(
                {
                    "statistic": column,
                    "data": name,
                    "median": float(np.nanmedian(values)),
                    "p10": float(np.nanpercentile(values, 10)),
                    "p90": float(np.nanpercentile(values, 90)),
                    "mean": float(np.nanmean(values)),
                }
            )
    return pd.DataFrame(rows)


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


def read_simulated_triplets(folder: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Every split of a BTS-layout folder, concatenated (triplets, candidates)."""
    from alertlib.core.vocab import SPLITS
    from alertlib.io.release import read_split

    parts = [read_split(folder, split, mmap=False) for split in SPLITS]
    return np.concatenate([p.triplets for p in parts]), pd.concat([p.candidates for p in parts], ignore_index=True)


def read_real_triplets(paths) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Real ZTF triplets from packet files and folders (``alertlib.io.packets.load_triplets``)."""
    from alertlib.io.packets import load_triplets

    triplets, candidates, skipped = load_triplets([Path(p) for p in paths], dataset="ztf")
    if len(triplets) == 0:
        raise ValueError(
            f"no ZTF triplets could be read from {[str(p) for p in paths]} ({len(skipped)} alerts skipped); "
            f"give ZTF Avro or Fink Parquet packet files or folders"
        )
    return triplets, candidates, skipped


def _cnn_scores(train_x, train_y, test_x, seed: int, epochs: int = 10) -> np.ndarray:
    """Train a small CNN (with flips and 90-degree rotations) and score ``test_x``."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 1),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.from_numpy(np.moveaxis(train_x, -1, 1).copy()) * 63.0  # normalised cutouts have pixels ~1/63
    y = torch.from_numpy(train_y.astype(np.float32))
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            batch = order[start : start + 64]
            images = x[batch]
            k = int(torch.randint(0, 4, (1,), generator=generator))
            images = torch.rot90(images, k, dims=(2, 3))
            if torch.rand(1, generator=generator) < 0.5:
                images = images.flip(3)
            optimiser.zero_grad()
            loss = loss_fn(model(images).squeeze(1), y[batch])
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        test = torch.from_numpy(np.moveaxis(test_x, -1, 1).copy()) * 63.0
        return torch.sigmoid(model(test).squeeze(1)).numpy()


def _feature_scores(train_x, train_y, test_x, seed: int) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15, random_state=seed)
    model.fit(train_x, train_y)
    return model.predict_proba(test_x)[:, 1]


def bootstrap_auc(
    labels: np.ndarray, scores: np.ndarray, seed: int, n_boot: int = 1000, groups=None
) -> tuple[float, float, float]:
    """ROC AUC and its 95% bootstrap interval.

    Without ``groups`` the triplets are resampled; with them, whole groups are (a cluster bootstrap,
    each class's groups drawn with replacement, as many as it has), since triplets of one group are
    not independent draws.
    """
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    auc = float(roc_auc_score(labels, scores))
    if groups is None:
        groups = np.arange(len(labels))
    members = []  # per class, the indices of each of its groups
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        _, inverse = np.unique(np.asarray(groups)[where], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        members.append(np.split(where[order], np.flatnonzero(np.diff(inverse[order])) + 1))
    values = []
    for _ in range(n_boot):
        index = np.concatenate([np.concatenate([m[i] for i in rng.integers(0, len(m), len(m))]) for m in members])
        if labels[index].min() != labels[index].max():
            values.append(roc_auc_score(labels[index], scores[index]))
    low, high = np.percentile(values, [2.5, 97.5])
    return auc, float(low), float(high)


def two_sample_test(
    simulated: np.ndarray,
    real: np.ndarray,
    seed: int = 0,
    folds: int = 5,
    epochs: int = 10,
    n_boot: int = 1000,
    sim_groups=None,
    real_groups=None,
) -> dict:
    """Cross-validated classifier two-sample test between simulated and real triplets.

    The larger set is subsampled to the size of the smaller, so chance is exactly 0.5. Each fold's
    classifiers are trained on the other folds; out-of-fold scores of all triplets give the AUC.
    ``sim_groups`` and ``real_groups`` (e.g. the source of each simulated alert; for real ones, the
    ZTF object and the exposure joined by :func:`linked_groups`) keep all alerts of a group in one
    fold, and the bootstrap resamples whole groups: alerts of one source share its reference image,
    alerts of one exposure its sky, seeing and processing, and a critic that has seen a group's
    other alerts in training would recognise the group rather than tell simulated from real.

    Returns
    -------
    dict
        ``auc``, ``auc_low``, ``auc_high`` (the stronger classifier), ``n_sim``, ``n_real``, and per
        classifier ``auc_cnn``, ``auc_features`` with their intervals.
    """
    import torch
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    rng = np.random.default_rng(seed)
    n = min(len(simulated), len(real))
    sim_index = np.sort(rng.choice(len(simulated), n, replace=False))
    real_index = np.sort(rng.choice(len(real), n, replace=False))
    images = np.concatenate([np.asarray(simulated[sim_index], np.float32), np.asarray(real[real_index], np.float32)])
    labels = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])  # 1 = real
    features = triplet_statistics(images).astype(float).to_numpy()
    cnn, trees = np.zeros(2 * n), np.zeros(2 * n)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    groups = None
    if sim_groups is not None and real_groups is not None:
        groups = np.concatenate(
            [
                ["sim:" + str(g) for g in np.asarray(sim_groups)[sim_index]],
                ["real:" + str(g) for g in np.asarray(real_groups)[real_index]],
            ]
        )
        splits = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(images, labels, groups)
    else:
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(images, labels)
    for fold, (train, test) in enumerate(splits):
        cnn[test] = _cnn_scores(images[train], labels[train], images[test], seed + fold, epochs)
        trees[test] = _feature_scores(features[train], labels[train], features[test], seed + fold)
    result = {"n_sim": int(n), "n_real": int(n)}
    for name, scores in (("cnn", cnn), ("features", trees)):
        auc, low, high = bootstrap_auc(labels, scores, seed, n_boot, groups)
        result.update({f"auc_{name}": auc, f"auc_{name}_low": low, f"auc_{name}_high": high})
    best = "cnn" if result["auc_cnn"] >= result["auc_features"] else "features"
    result.update(
        {
            "auc": result[f"auc_{best}"],
            "auc_low": result[f"auc_{best}_low"],
            "auc_high": result[f"auc_{best}_high"],
            "critic": best,
        }
    )
    return result


def linked_groups(*keys) -> np.ndarray:
    """Group numbers (0, 1, ...) that join items sharing a value of any key: connected components.

    E.g. ``linked_groups(objectId, jd)``: alerts of one object, and alerts of one exposure, and so on
    transitively, fall in one group. Missing values (None, NaN) join nothing.
    """
    n = len(keys[0]) if keys else 0
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for key in keys:
        if len(key) != n:
            raise ValueError(f"keys of different lengths: {n} and {len(key)}")
        first: dict = {}
        for i, value in enumerate(pd.Series(key).tolist()):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            if value in first:
                parent[root(i)] = root(first[value])
            else:
                first[value] = i
    roots = np.array([root(i) for i in range(n)], dtype=np.int64)
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


def exposure_of(candidates: pd.DataFrame) -> pd.Series:
    """The exposure of each real ZTF alert: its ``jd`` (the exposure's start, shared by every alert
    of one exposure, whatever the CCD), None where missing."""
    if "jd" not in candidates:
        return pd.Series([None] * len(candidates), index=candidates.index, dtype=object)
    return candidates["jd"].astype(float).round(6)


def sky_against_packets(sim_dir, real_packets, seed: int = 0, **options) -> dict:
    """:func:`two_sample_test` of a simulated folder against real packets, folds grouped by source
    (simulated) and by object and exposure (real, :func:`linked_groups`).

    ``options`` go to :func:`two_sample_test` (``folds``, ``epochs``, ``n_boot``). The result also
    holds ``n_real_skipped``, the real alerts the packet reader could not use.
    """
    simulated, sim_candidates = read_simulated_triplets(sim_dir)
    real, real_candidates, skipped = read_real_triplets(real_packets)
    result = two_sample_test(
        simulated,
        real,
        seed=seed,
        sim_groups=sim_candidates["source_id"].to_numpy(),
        real_groups=linked_groups(real_candidates["objectId"], exposure_of(real_candidates)),
        **options,
    )
    result["n_real_skipped"] = int(len(skipped))
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sim_dir", help="simulated alerts in the BTS release layout (alertlib simulate alerts)")
    parser.add_argument("real_packets", nargs="+", help="real ZTF packet files or folders (Avro, Fink Parquet)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10, help="CNN epochs per fold")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    result = sky_against_packets(args.sim_dir, args.real_packets, seed=args.seed, folds=args.folds, epochs=args.epochs)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"two-sample AUC {result['auc']:.3f} [{result['auc_low']:.3f}, {result['auc_high']:.3f}] "
        f"(critic: {result['critic']}; CNN {result['auc_cnn']:.3f}, statistics {result['auc_features']:.3f}); "
        f"{result['n_sim']} simulated vs {result['n_real']} real triplets ({result['n_real_skipped']} real alerts skipped). "
        f"0.5 = indistinguishable."
    )
    return 0


def plot_calibration(simulated: pd.DataFrame, real: pd.DataFrame, columns: list[str] | None = None):
    """Histograms of calibration statistics, simulated beside real (shared bins, densities)."""
    import matplotlib.pyplot as plt

    columns = columns or list(CALIBRATION_STATISTICS)
    logarithmic = {"science_noise_to_level", "reference_noise_to_level", "difference_peak_snr", "reference_extent"}
    figure, axes = plt.subplots(1, len(columns), figsize=(2.6 * len(columns), 2.4))
    for axis, column in zip(np.atleast_1d(axes), columns, strict=True):
        values = [t[column].astype(float).to_numpy() for t in (simulated, real)]
        values = [v[np.isfinite(v) & ((v > 0) if column in logarithmic else True)] for v in values]
        both = np.concatenate(values)
        low, high = np.percentile(both, [1, 99])
        bins = np.geomspace(max(low, 1e-6), high, 25) if column in logarithmic else np.linspace(low, high, 25)
        for data, name in zip(values, ("simulated", "real ZTF"), strict=True):
            axis.hist(data, bins=bins, density=True, histtype="step", label=name)
        if column in logarithmic:
            axis.set_xscale("log")
        axis.set_title(column, fontsize=8)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    figure.tight_layout()
    return figure
