"""How real is the simulated sky? Calibration statistics of triplets and a classifier two-sample test.

``triplet_statistics`` measures, on L2-normalised triplets (so real and simulated are compared on
the same footing), what the simulator was calibrated on: the noise-to-level ratio of the science
and reference cutouts (sky noise over sky level does not change under normalisation), the noise of
the difference, the PSF width of the candidate in the difference, pixel-value quantiles of each
channel, and whether the reference shows an extended host around the candidate. The numbers the
simulator's constants come from are measured on real packets by ``alertlib.sky.packet_calibration``.

``two_sample_test`` trains classifiers to tell simulated from real triplets and reports their
held-out (cross-validated) ROC AUC with a bootstrap interval: 0.5 means the classifier cannot tell
them apart. Two classifiers look from two sides: the study's smallest CNN on the pixels, and gradient-boosted
trees on the calibration statistics; the reported ``auc`` is the larger (the stronger critic).
Folds and bootstrap keep groups whole: each simulated source, and for real alerts each ZTF object
and each exposure (``linked_groups``), since alerts of one exposure share its sky and seeing.

Real triplets are read with ``alertlib.io.packets.load_triplets``; simulated ones from a folder in the
BTS release layout (``alertlib simulate alerts``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.stats import mad_std

from alertlib.core.vocab import CHANNELS
from alertlib.sky.packet_calibration import exposure_of

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


def _neighbour_correlation(strips: np.ndarray) -> np.ndarray:
    """Correlation of the noise between horizontally and vertically adjacent pixels, per image (N, H, W).

    Measured away from the candidate (the caller passes the top third of the cutout), after removing
    the median and clipping at 4 robust sigmas so that stars do not dominate. Co-added, resampled
    references have correlated noise (about 0.6 in ZTF packets); ZOGY difference images have white
    noise (about 0).
    """
    x = strips.astype(np.float64)
    x = x - np.median(x, axis=(1, 2), keepdims=True)
    sigma = np.maximum(mad_std(x, axis=(1, 2))[:, None, None], 1e-30)
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
        sigma = mad_std(masked, axis=1, ignore_nan=True)
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


CRITICS = ("cnn", "features")  # the two-sample test's classifiers: pixels, calibration statistics
CRITIC_ARCH = "braai_vgg"  # the smallest CNN of the study: two VGG blocks of 16 and 32 filters


def _cnn_scores(train_x, train_y, test_x, seed: int, epochs: int = 10) -> np.ndarray:
    """Train the study's smallest CNN (:data:`CRITIC_ARCH`) to tell real (1) from simulated (0); score ``test_x``.

    The model comes from ``alertlib.learn.models.create_model`` and trains with
    ``alertlib.learn.training.fit`` (objective ``binary``, flips and 90-degree rotations), for
    ``epochs`` epochs without early stopping: its validation set is its own training set, so the
    weights kept are those of the epoch that fits it best. The L2-normalised cutouts are scaled by
    the stamp's side (pixels about 1, not 1/63), which plain CNNs without normalisation layers need.
    """
    from alertlib.core.provenance import seed_everything
    from alertlib.learn.datasets import TripletDataset
    from alertlib.learn.models import create_model
    from alertlib.learn.training import fit, predict_logits

    scale = np.float32(train_x.shape[1])
    seed_everything(seed)
    model = create_model(CRITIC_ARCH)
    train = TripletDataset(train_x * scale, train_y, augment=True, seed=seed)
    config = {"seed": seed, "epochs": epochs, "warmup_epochs": 0, "patience": epochs, "progress": False}
    result = fit(model, train, TripletDataset(train_x * scale, train_y), "binary", config, description="critic")
    logits = predict_logits(result.model, TripletDataset(test_x * scale))
    return 1.0 / (1.0 + np.exp(-logits[:, 0].astype(np.float64)))


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
    critics: tuple[str, ...] = CRITICS,
) -> dict:
    """Cross-validated classifier two-sample test between simulated and real triplets.

    The larger set is subsampled to the size of the smaller, so chance is exactly 0.5. Each fold's
    classifiers are trained on the other folds; out-of-fold scores of all triplets give the AUC.
    ``sim_groups`` and ``real_groups`` (e.g. the source of each simulated alert; for real ones, the
    ZTF object and the exposure joined by :func:`linked_groups`) keep all alerts of a group in one
    fold, and the bootstrap resamples whole groups: alerts of one source share its reference image,
    alerts of one exposure its sky, seeing and processing, and a critic that has seen a group's
    other alerts in training would recognise the group rather than tell simulated from real.
    ``critics`` names the classifiers to train (:data:`CRITICS`): ``("features",)`` alone, the
    gradient-boosted trees on the calibration statistics, takes seconds where the CNN takes minutes.

    Returns
    -------
    dict
        ``auc``, ``auc_low``, ``auc_high`` (the stronger classifier, named by ``critic``), ``n_sim``,
        ``n_real``, and per classifier ``auc_cnn``, ``auc_features`` with their intervals.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    unknown = sorted(set(critics) - set(CRITICS))
    if unknown or not critics:
        raise ValueError(f"critics must be some of {CRITICS}, not {critics!r}")

    rng = np.random.default_rng(seed)
    n = min(len(simulated), len(real))
    sim_index = np.sort(rng.choice(len(simulated), n, replace=False))
    real_index = np.sort(rng.choice(len(real), n, replace=False))
    images = np.concatenate([np.asarray(simulated[sim_index], np.float32), np.asarray(real[real_index], np.float32)])
    labels = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])  # 1 = real
    features = triplet_statistics(images).astype(float).to_numpy() if "features" in critics else None
    scores = {name: np.zeros(2 * n) for name in critics}
    if "cnn" in critics:
        import torch

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
        if "cnn" in critics:
            scores["cnn"][test] = _cnn_scores(images[train], labels[train], images[test], seed + fold, epochs)
        if "features" in critics:
            scores["features"][test] = _feature_scores(features[train], labels[train], features[test], seed + fold)
    result = {"n_sim": int(n), "n_real": int(n)}
    for name in critics:
        auc, low, high = bootstrap_auc(labels, scores[name], seed, n_boot, groups)
        result.update({f"auc_{name}": auc, f"auc_{name}_low": low, f"auc_{name}_high": high})
    best = max((name for name in CRITICS if name in critics), key=lambda name: result[f"auc_{name}"])
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
    transitively, fall in one group. Missing values (None, NaN) join nothing. Items and the keys'
    values are the nodes of a graph whose edges join each item to its values
    (``scipy.sparse.csgraph.connected_components``); groups are numbered in order of their first item.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(keys[0]) if keys else 0
    items, values, nodes = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], n
    for key in keys:
        if len(key) != n:
            raise ValueError(f"keys of different lengths: {n} and {len(key)}")
        codes, distinct = pd.factorize(pd.Series(list(key), dtype=object))  # missing values: code -1
        linked = codes >= 0
        items.append(np.flatnonzero(linked))
        values.append(nodes + codes[linked])
        nodes += len(distinct)
    items, values = np.concatenate(items), np.concatenate(values)
    graph = coo_matrix((np.ones(items.size), (items, values)), shape=(nodes, nodes))
    return connected_components(graph, directed=False)[1][:n].astype(np.int64)


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


@dataclass(frozen=True)
class PacketSet:
    """Real ZTF packets to hold the simulated sky against, and the simulated sky that matches them.

    ``folders`` are relative to the shared data folder (or absolute); ``sky`` holds the options of
    :func:`alertlib.sky.simulate.simulate_alert_arrays` that make the matching sky (its
    ``class_mix``, ...; ``"exposures": "matched"``: a sky of the set's own exposures, their
    conditions measured on its packets by :func:`matched_exposures`); ``n_sources``, when given,
    replaces the number of sources of the sky; ``development`` says whether the simulator may be
    calibrated on these packets: the others are held out for evaluation and appear in realism
    reports only (and their conditions are never measured).
    """

    folders: tuple[str, ...]
    sky: dict = field(default_factory=dict)
    development: bool = True
    n_sources: int | None = None


# The real ZTF sets of the shared data, each with the sky of its class mix. Development sets: a
# sample of the public stream, every candidate of one night's exposures (bogus ones included, 152 of
# 499 with rb < 0.5), and the brokers' test alerts of 2018-2023. The cross-matched Fink alerts are
# part of the study's held-out evaluation set: reported, never calibrated on.
PACKET_SETS = {
    "stream": PacketSet(
        ("alert-packets/ztf", "alert-packets/ztf-spark-snappy", "alert-packets/fink-ztf-parquet"),
        {"class_mix": "ztf-stream"},
    ),
    "exposure": PacketSet(
        ("alert-packets/ztf-one-exposure-2018",), {"class_mix": "ztf-exposure", "exposures": "matched"}, n_sources=6000
    ),
    "brokers": PacketSet(("alert-packets/ztf-brokers",), {"class_mix": "ztf-stream"}),
    "crossmatched": PacketSet(
        ("alert-packets/fink-ztf-crossmatched",), {"class_mix": "ztf-crossmatched"}, development=False
    ),
}
GROUP_BY = ("exposure", "quadrant")


def real_groups(candidates: pd.DataFrame, group_by: str = "exposure") -> np.ndarray:
    """Groups of real alerts that folds keep whole: one ZTF object, and one exposure (``"exposure"``,
    :func:`exposure_of`) or one quadrant's image of an exposure (``"quadrant"``: ``pid``, ZTF's
    processing image, which has its own PSF model, zero point and subtraction), joined by
    :func:`linked_groups`."""
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by must be one of {GROUP_BY}, not {group_by!r}")
    if group_by == "quadrant" and "pid" in candidates:
        images = pd.to_numeric(candidates["pid"], errors="coerce").astype("Int64").astype(object)
        images = images.where(images.notna(), None)
    else:
        images = exposure_of(candidates)
    return linked_groups(candidates["objectId"], images)


def matched_exposures(candidates: pd.DataFrame, statistics: pd.DataFrame) -> pd.DataFrame:
    """The conditions of the exposures of real alerts as a simulated sky's exposures
    (:func:`alertlib.sky.packet_calibration.exposure_conditions`), the seeing from the PSF width in
    their difference cutouts: the simulator's median seeing was matched so that its cutouts' mean
    PSF width is the real packets' (``seeing_median_px`` in the calibration table), and an
    exposure's seeing is that median scaled by its own mean width over theirs."""
    from alertlib.sky.calibration import SEEING_MEDIAN_PX, TABLE
    from alertlib.sky.packet_calibration import exposure_conditions

    conditions = exposure_conditions(candidates, statistics)
    conditions["fwhm_px"] = SEEING_MEDIAN_PX * conditions["psf_fwhm_px"] / TABLE["seeing_median_px"].measured
    return conditions


def realism_by_set(
    sets: dict[str, PacketSet] | None = None,
    n_sources: int = 600,
    seed: int = 0,
    max_alerts: int = 8,
    group_by: str = "exposure",
    folds: int = 5,
    n_boot: int = 1000,
    workers: int | None = None,
    shared_data: str | Path | None = None,
) -> pd.DataFrame:
    """The statistics critic (:func:`two_sample_test` with ``critics=("features",)``) of the simulated
    sky against each real set on its own, each set against the sky of its own class mix.

    ``sets`` maps names to :class:`PacketSet` (default :data:`PACKET_SETS`; sets whose folders are
    absent are left out). Each set's sky has ``n_sources`` sources of ``seed`` with ``max_alerts``
    alerts each (unless the set's ``sky`` says otherwise); folds keep each simulated source and each
    real group (:func:`real_groups`) whole.

    Returns
    -------
    pandas.DataFrame
        One row per set: ``set``, ``development``, ``class_mix``, ``auc``, ``auc_low``, ``auc_high``
        (95% cluster-bootstrap interval), ``n_sim``, ``n_real`` (the alerts compared: the larger
        side is subsampled to the smaller), ``n_sim_alerts``, ``n_real_alerts``, ``n_real_groups``,
        ``n_real_skipped`` and ``folders``.
    """
    from alertlib.core.paths import shared_data_dir
    from alertlib.sky.simulate import simulate_alert_arrays

    sets = PACKET_SETS if sets is None else sets
    root = Path(shared_data) if shared_data is not None else shared_data_dir()
    skies, rows = {}, []
    for name, packet_set in sets.items():
        folders = [Path(f) if Path(f).is_absolute() or root is None else root / f for f in packet_set.folders]
        if not all(folder.exists() for folder in folders):
            continue
        real, real_candidates, skipped = read_real_triplets(folders)
        options = {"max_alerts": max_alerts, **packet_set.sky}
        size = packet_set.n_sources or n_sources
        key = json.dumps([size, options, name if options.get("exposures") == "matched" else None], sort_keys=True)
        if options.get("exposures") == "matched":
            if not packet_set.development:
                raise ValueError(f"set {name!r} is held out: its exposures' conditions may not be measured")
            options["exposures"] = matched_exposures(real_candidates, triplet_statistics(real))
        if key not in skies:
            skies[key] = simulate_alert_arrays(size, seed, progress=False, workers=workers, **options)
        simulated, sim_candidates = skies[key]
        groups = real_groups(real_candidates, group_by)
        result = two_sample_test(
            simulated,
            real,
            seed=seed,
            folds=folds,
            n_boot=n_boot,
            sim_groups=sim_candidates["source_id"].to_numpy(),
            real_groups=groups,
            critics=("features",),
        )
        rows.append(
            {
                "set": name,
                "development": packet_set.development,
                "class_mix": options.get("class_mix", "bts"),
                **{k: result[k] for k in ("auc", "auc_low", "auc_high", "n_sim", "n_real")},
                "n_sim_alerts": len(simulated),
                "n_real_alerts": len(real),
                "n_real_groups": int(len(np.unique(groups))),
                "n_real_skipped": int(len(skipped)),
                "folders": ";".join(str(f) for f in packet_set.folders),
            }
        )
    if not rows:
        raise FileNotFoundError(
            f"none of the packet sets {sorted(sets)} was found under {root}; set ALERTLIB_SHARED_DATA to the shared data"
        )
    return pd.DataFrame(rows)
