"""ZTF-like alerts: the candidate table of a batch of simulated sources, and the split by source.

The simulator follows how a ZTF alert is made, one module per step:

- ``alertlib.sky.sources``: draw the sources (class, brightness, host, variability, place on the sky);
- ``alertlib.sky.field``: the field of stars and faint galaxies around each candidate;
- ``alertlib.sky.observing``: observe each source's light curve at random epochs; detections are alerts;
- ``alertlib.sky.triplets``: render each alert's science, reference and difference cutouts;
- ``alertlib.sky.measurements``: the candidate fields measured on them;
- this module: one batch's candidate table (:func:`simulate_alert_batch`) and the train/val/test split
  by source (:func:`split_by_source`).

The calibrated numbers all these steps use are in ``alertlib.sky.calibration``.

Labels follow the BTS: ``label`` = 1 when the source is a real extragalactic transient (``sn`` or
``nuclear``) whose light curve peaks at 18.5 mag or brighter; a single epoch's brightness does not
reveal the peak.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.core.vocab import PEAK_MAG_THRESHOLD
from alertlib.sky.exposures import exposure_quadrants
from alertlib.sky.observing import observe_sources
from alertlib.sky.sources import draw_sources
from alertlib.sky.triplets import render_batch


def _object_id(source_id: np.ndarray, seed: int) -> np.ndarray:
    """ZTF-like object names, unique per (seed, source): ``ZTFsim`` + 7 letters."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    code = (np.asarray(source_id, dtype=np.int64) + 1_000_003 * int(seed)) % 26**7
    digits = [(code // 26**k) % 26 for k in range(6, -1, -1)]
    return np.array(["ZTFsim" + "".join(chars) for chars in zip(*(letters[d] for d in digits), strict=True)])


def source_set(alert_class: np.ndarray, label: np.ndarray) -> np.ndarray:
    """The BTS release's ``source_set``: trues, dims, vars or rejects."""
    return np.select(
        [label == 1, np.isin(alert_class, ["sn", "nuclear"]), np.isin(alert_class, ["varstar", "agn"])],
        ["trues", "dims", "vars"],
        "rejects",
    )


def observe_batch(
    seed: int, batch_index: int, n_sources: int, max_alerts: int = 8, class_mix: str = "bts", exposures=None
):
    """The random stream, sources and alerts of one batch, before any rendering.

    The stream depends only on (seed, batch); :func:`simulate_alert_batch` renders from the returned
    generator, so the alerts found here are those it renders. ``exposures`` (a number of exposures or
    a table of them, :func:`alertlib.sky.exposures.exposure_quadrants`) makes a sky of exposures.
    """
    rng = np.random.default_rng([int(seed), int(batch_index), 3])
    quadrants = None if exposures is None else exposure_quadrants(seed, exposures)
    sources = draw_sources(rng, n_sources, class_mix, quadrants)
    alerts = observe_sources(rng, sources, max_alerts=max_alerts, quadrants=quadrants)
    # Only sources with alerts are rendered; each keeps its number in the batch (source_number).
    seen, alerts["source_index"] = np.unique(alerts["source_index"].to_numpy(), return_inverse=True)
    sources = sources.iloc[seen].reset_index(drop=True).assign(source_number=seen)
    return rng, sources, alerts


def alert_labels(sources: pd.DataFrame, alerts: pd.DataFrame, first_source_id: int) -> pd.DataFrame:
    """Per alert: ``source_id``, ``label`` and ``alert_class`` (all a split by source needs)."""
    src = alerts["source_index"].to_numpy()
    label = (
        sources["class_index"].isin([0, 1]).to_numpy() & (sources["peakmag"].to_numpy() <= PEAK_MAG_THRESHOLD)
    ).astype(np.int64)[src]
    return pd.DataFrame(
        {
            "source_id": first_source_id + sources["source_number"].to_numpy()[src],
            "label": label,
            "alert_class": sources["alert_class"].to_numpy()[src],
        }
    )


def simulate_alert_batch(
    seed: int,
    batch_index: int,
    n_sources: int,
    first_source_id: int,
    max_alerts: int = 8,
    class_mix: str = "bts",
    exposures=None,
):
    """Sources, alerts and raw triplets of one batch; its random stream depends only on (seed, batch).

    Returns
    -------
    triplets:
        (N, 63, 63, 3) float32 counts (before normalisation).
    candidates:
        One row per alert: ZTF candidate fields, labels and truth columns.
    """
    rng, sources, alerts = observe_batch(seed, batch_index, n_sources, max_alerts, class_mix, exposures)
    triplets, measured = render_batch(rng, sources, alerts)
    src = alerts["source_index"].to_numpy()
    labels = alert_labels(sources, alerts, first_source_id)
    source_id, label, alert_class = (labels[c].to_numpy() for c in ("source_id", "label", "alert_class"))
    candid = (np.int64(seed) % 1000) * 10**15 + source_id.astype(np.int64) * 1000 + np.arange(len(alerts)) % 1000
    candidates = pd.DataFrame(
        {
            "objectId": _object_id(source_id, seed),
            "candid": candid,
            "label": label,
            "source_set": source_set(alert_class, label),
            "alert_class": alert_class,
            "bogus_kind": sources["bogus_kind"].to_numpy()[src],
            "source_id": source_id,
            "peakmag": sources["peakmag"].to_numpy()[src],
            "jd": alerts["jd"].to_numpy(),
            "fid": alerts["fid"].to_numpy(),
            "isdiffpos": np.where(alerts["difference_sign"].to_numpy() > 0, "t", "f"),
            "ra": sources["ra"].to_numpy()[src],
            "dec": sources["dec"].to_numpy()[src],
            "magpsf": measured["magpsf"].to_numpy(),
            "sigmapsf": measured["sigmapsf"].to_numpy(),
            "fwhm": measured["fwhm"].to_numpy(),
            "sgscore1": measured["sgscore1"].to_numpy(),
            "distpsnr1": measured["distpsnr1"].to_numpy(),
            "nmtchps": measured["nmtchps"].to_numpy(),
            "ndethist": alerts["ndethist"].to_numpy(),
            "diffmaglim": alerts["diffmaglim"].to_numpy(),
            "magzpsci": alerts["magzpsci"].to_numpy(),
            "true_difference_mag": alerts["true_difference_mag"].to_numpy(),
            "phase_days": alerts["phase_days"].to_numpy(),
            "redshift": sources["redshift"].to_numpy()[src],
            "host_mag": sources["host_mag"].to_numpy()[src],
            "host_radius_arcsec": sources["host_radius_arcsec"].to_numpy()[src],
            "host_offset_arcsec": measured["host_offset_arcsec"].to_numpy(),
            "reference_fwhm": measured["reference_fwhm"].to_numpy(),
            "sky_level": alerts["sky"].to_numpy(),
            "sky_noise": alerts["noise"].to_numpy(),
            "galactic_latitude": sources["galactic_latitude"].to_numpy()[src],
            "field_star_density": sources["field_star_density"].to_numpy()[src],
        }
    )
    return triplets, candidates


SPLIT_FRACTIONS = (0.81, 0.09, 0.10)  # BTS's train/val/test split by source


def split_fractions(n_sources: int, n_test_sources: int | None = None) -> tuple[float, float, float]:
    """Train, validation and test shares of the sources: BTS's 81/9/10, or, with ``n_test_sources``
    test sources beside ``n_sources``, those split 90/10 (81:9) into train and validation."""
    if n_test_sources is None:
        return SPLIT_FRACTIONS
    test = n_test_sources / (n_sources + n_test_sources)
    train = SPLIT_FRACTIONS[0] / (SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1])
    return ((1 - test) * train, (1 - test) * (1 - train), test)


def split_by_source(
    candidates: pd.DataFrame, seed: int, fractions=SPLIT_FRACTIONS, n_max: int = 100
) -> dict[str, np.ndarray]:
    """Row indices of train/val/test: sources split by ``fractions`` (BTS's 81/9/10); training keeps
    <= ``n_max`` alerts per source.

    The split is stratified by the source's label: the sources of each label are split 81/9/10 on
    their own, validation and test getting at least one source of each label that has three or more,
    so every split holds both classes (a small sky could otherwise leave a test split without one
    real transient, and its ROC AUC undefined).
    """
    rng = np.random.default_rng([int(seed), 7])
    by_source = candidates.groupby("source_id", sort=True)["label"].first()
    assignment: dict[str, list] = {"train": [], "val": [], "test": []}
    for label in sorted(by_source.unique()):
        order = rng.permutation(by_source.index[by_source == label].to_numpy())
        n = len(order)
        least = 1 if n >= 3 else 0  # val and test get at least one source of each label when n >= 3
        n_val = max(least, int(round(fractions[1] * n)))
        n_test = max(least, int(round(fractions[2] * n)))
        n_train = n - n_val - n_test
        assignment["train"].extend(order[:n_train])
        assignment["val"].extend(order[n_train : n_train + n_val])
        assignment["test"].extend(order[n_train + n_val :])
    source_of_row = candidates["source_id"].to_numpy()
    rows = {}
    for split, members in assignment.items():
        index = np.nonzero(np.isin(source_of_row, members))[0]
        if split == "train" and n_max is not None:
            priority = rng.random(index.size)
            order_in = np.lexsort((priority, source_of_row[index]))
            index = index[order_in]
            groups = source_of_row[index]
            within = np.arange(index.size) - np.searchsorted(groups, groups)
            index = np.sort(index[within < n_max])
        rows[split] = index
    return rows
