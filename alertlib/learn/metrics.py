"""Metrics on the test split: alert-level, multi-class, and the authors' source-level policies.

Alert level (binary BTS task): ROC AUC, balanced accuracy, accuracy, precision, recall and F1 with
the prediction ``score >= 0.5``, and the accuracy on each class.

Multi-class: accuracy, balanced accuracy, macro-F1, one-vs-rest ROC AUC, accuracy per class.

Source level (the policies of the BTSbot papers; a source is an ``objectId``; its truth is the
largest label of its alerts):

``bts_p1``
    At least 2 alerts with prediction 1 (score >= 0.5) and ``magpsf < 19``.
``bts_p2``
    ``bts_p1``, and the source has an alert at ``magpsf <= 18.5`` (it has been seen that bright).
``prod_p1``
    At least 1 alert with score > 0.85 and ``magpsf < 19``.
``prod_p2``
    At least 1 alert with score > 0.85 and ``magpsf <= 18.5``.

For each policy: source-level completeness (recall), purity (precision) and F1, and completeness and
purity of the sources whose true ``peakmag`` lies in each 0.25 mag bin from 17.0 to 18.5 (the
brightness at which the BTS is complete), and for the true sources a policy saves, the median delay
(days) from the source's first alert to the alert at which the policy fires (``<policy>_delay_days``).
The policies only use what an alert stream knows at the time (``magpsf`` of the alerts, in time
order); ``peakmag`` only places sources into bins.

BTSbot's source exclusions apply to every source-level number: sources with fewer than
:data:`MIN_SOURCE_ALERTS` alerts, and true sources none of whose alerts is at 18.5 mag or brighter
(no policy that needs ``magpsf <= 18.5`` could save them), are left out (``sources_excluded``).

Source-level ranking (``source_roc_auc``, ``source_average_precision``): a source's score is its
second-highest alert score (the score at which ``bts_p1``'s count of two alerts above a threshold
is reached), over the sources kept by the exclusions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

THRESHOLD = 0.5
PROD_THRESHOLD = 0.85
PEAKMAG_BIN_EDGES = tuple(np.round(np.arange(17.0, 18.5 + 1e-9, 0.25), 2))
POLICIES = ("bts_p1", "bts_p2", "prod_p1", "prod_p2")
POLICY_COLUMNS = ("objectId", "magpsf", "peakmag")
MIN_SOURCE_ALERTS = 2


def _safe_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC, or NaN when only one class is present (AUC is undefined then)."""
    return float(skm.roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def binary_metrics(labels, scores, threshold: float = THRESHOLD) -> dict[str, float]:
    """Alert-level metrics of a binary classifier.

    Parameters
    ----------
    labels:
        0/1 truth per alert.
    scores:
        Probability of class 1 per alert.
    """
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=float)
    predictions = (scores >= threshold).astype(int)
    per_class = {
        f"accuracy_class{c}": float(np.mean(predictions[labels == c] == c)) if np.any(labels == c) else float("nan")
        for c in (0, 1)
    }
    return {
        "roc_auc": _safe_auc(labels, scores),
        "balanced_accuracy": float(skm.balanced_accuracy_score(labels, predictions)),
        "accuracy": float(skm.accuracy_score(labels, predictions)),
        "precision": float(skm.precision_score(labels, predictions, zero_division=0)),
        "recall": float(skm.recall_score(labels, predictions, zero_division=0)),
        "f1": float(skm.f1_score(labels, predictions, zero_division=0)),
        **per_class,
    }


def multiclass_metrics(labels, probabilities, class_names=None) -> dict[str, float]:
    """Metrics of a multi-class classifier.

    Parameters
    ----------
    labels:
        Class index per alert.
    probabilities:
        (N, K) class probabilities.
    class_names:
        K names used in the per-class metric names (default ``0..K-1``).
    """
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=float)
    n_classes = probabilities.shape[1]
    class_names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
    predictions = probabilities.argmax(axis=1)
    present = np.unique(labels)
    # One-vs-rest AUC is undefined when a class is absent from the test labels.
    auc = (
        float(
            skm.roc_auc_score(labels, probabilities, multi_class="ovr", average="macro", labels=list(range(n_classes)))
        )
        if len(present) == n_classes
        else float("nan")
    )
    result = {
        "accuracy": float(skm.accuracy_score(labels, predictions)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(labels, predictions)),
        "macro_f1": float(skm.f1_score(labels, predictions, average="macro", labels=present, zero_division=0)),
        "roc_auc_ovr": auc,
    }
    for index, name in enumerate(class_names):
        mask = labels == index
        result[f"accuracy_{name}"] = float(np.mean(predictions[mask] == index)) if mask.any() else float("nan")
    return result


def source_policy_flags(candidates: pd.DataFrame, scores) -> pd.DataFrame:
    """One row per source: truth, ``peakmag``, its source score, whether each policy flags it and when,
    and whether BTSbot's exclusions keep it (``kept``).

    Parameters
    ----------
    candidates:
        The test split's candidate table, with ``objectId``, ``magpsf``, ``peakmag`` and ``label``
        (``jd`` gives the time order and the delays; without it the table's order is used).
    scores:
        Score of class 1 per alert, row-aligned with ``candidates``.
    """
    missing = [c for c in (*POLICY_COLUMNS, "label") if c not in candidates.columns]
    if missing:
        raise KeyError(f"source-level policies need columns {missing} in the candidate table")
    time = (
        candidates["jd"].to_numpy(dtype=float)
        if "jd" in candidates.columns
        else np.arange(len(candidates), dtype=float)
    )
    frame = pd.DataFrame(
        {
            "objectId": candidates["objectId"].to_numpy(),
            "time": time,
            "magpsf": candidates["magpsf"].to_numpy(dtype=float),
            "peakmag": candidates["peakmag"].to_numpy(dtype=float),
            "label": candidates["label"].to_numpy().astype(int),
            "score": np.asarray(scores, dtype=float),
        }
    ).sort_values(["objectId", "time"], kind="stable")
    frame["bts_hit"] = (frame["score"] >= THRESHOLD) & (frame["magpsf"] < 19.0)
    frame["prod_hit_19"] = (frame["score"] > PROD_THRESHOLD) & (frame["magpsf"] < 19.0)
    frame["prod_hit_185"] = (frame["score"] > PROD_THRESHOLD) & (frame["magpsf"] <= 18.5)
    frame["seen_185"] = frame["magpsf"] <= 18.5
    by_source = frame.groupby("objectId", sort=True)
    for column in ("bts_hit", "prod_hit_19", "prod_hit_185", "seen_185"):
        frame[f"{column}_count"] = by_source[column].cumsum()
    # Each policy fires at the first alert (in time) at which its condition holds.
    fires = {
        "bts_p1": frame["bts_hit_count"] >= 2,
        "bts_p2": (frame["bts_hit_count"] >= 2) & (frame["seen_185_count"] >= 1),
        "prod_p1": frame["prod_hit_19_count"] >= 1,
        "prod_p2": frame["prod_hit_185_count"] >= 1,
    }
    sources = by_source.agg(
        label=("label", "max"),
        peakmag=("peakmag", "min"),
        brightest=("magpsf", "min"),
        n_alerts=("score", "size"),
        first_time=("time", "min"),
        source_score=("score", lambda s: np.sort(s.to_numpy())[-2] if len(s) > 1 else s.iloc[0]),
    )
    for policy, condition in fires.items():
        first_fire = frame.loc[condition].groupby("objectId")["time"].min()
        sources[policy] = sources.index.isin(first_fire.index)
        sources[f"{policy}_time"] = first_fire.reindex(sources.index)
    sources["kept"] = (sources["n_alerts"] >= MIN_SOURCE_ALERTS) & ~(
        (sources["label"] == 1) & (sources["brightest"] > 18.5)
    )
    return sources.reset_index()


def _completeness_purity(truth: np.ndarray, flagged: np.ndarray) -> tuple[float, float]:
    true_count, flagged_count = int(truth.sum()), int(flagged.sum())
    hits = int((truth & flagged).sum())
    completeness = hits / true_count if true_count else float("nan")
    purity = hits / flagged_count if flagged_count else float("nan")
    return completeness, purity


def _safe_average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(skm.average_precision_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def policy_metrics(
    candidates: pd.DataFrame, scores, bin_edges=PEAKMAG_BIN_EDGES, exclusions: bool = True
) -> dict[str, float]:
    """Source-level ranking, and completeness, purity, F1 and delay per policy, overall and in bins of
    peak magnitude, over the sources BTSbot's exclusions keep (see the module docstring).

    Metric names: ``source_roc_auc``, ``source_average_precision``, ``sources_kept``,
    ``sources_excluded``, ``positive_sources``; ``<policy>_completeness``, ``<policy>_purity``,
    ``<policy>_f1``, ``<policy>_delay_days``, and ``<policy>_completeness_<lo>-<hi>`` /
    ``<policy>_purity_<lo>-<hi>`` per ``peakmag`` bin (``lo <= peakmag < hi``). Undefined values (no
    true or no flagged source) are NaN. ``exclusions=False`` keeps every source.
    """
    all_sources = source_policy_flags(candidates, scores)
    sources = all_sources[all_sources["kept"]] if exclusions else all_sources
    truth = sources["label"].to_numpy() == 1
    result: dict[str, float] = {
        "source_roc_auc": _safe_auc(truth.astype(int), sources["source_score"].to_numpy()),
        "source_average_precision": _safe_average_precision(truth.astype(int), sources["source_score"].to_numpy()),
        "sources_kept": float(len(sources)),
        "sources_excluded": float(len(all_sources) - len(sources)),
        "positive_sources": float(truth.sum()),
    }
    peakmag = sources["peakmag"].to_numpy()
    for policy in POLICIES:
        flagged = sources[policy].to_numpy(dtype=bool)
        completeness, purity = _completeness_purity(truth, flagged)
        result[f"{policy}_completeness"] = completeness
        result[f"{policy}_purity"] = purity
        both = completeness + purity
        result[f"{policy}_f1"] = 2 * completeness * purity / both if both > 0 else float("nan")
        saved = truth & flagged
        delays = (sources[f"{policy}_time"] - sources["first_time"]).to_numpy()[saved]
        result[f"{policy}_delay_days"] = float(np.median(delays)) if delays.size else float("nan")
        for low, high in zip(bin_edges[:-1], bin_edges[1:], strict=True):
            in_bin = (peakmag >= low) & (peakmag < high)
            completeness, purity = _completeness_purity(truth[in_bin], flagged[in_bin])
            result[f"{policy}_completeness_{low:.2f}-{high:.2f}"] = completeness
            result[f"{policy}_purity_{low:.2f}-{high:.2f}"] = purity
    return result


def has_policy_columns(candidates: pd.DataFrame) -> bool:
    """Whether the candidate table has what the source-level policies need."""
    return all(c in candidates.columns for c in POLICY_COLUMNS)
