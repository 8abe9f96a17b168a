"""Weak labels for real alerts, from cross-matches, curated samples and the survey's own scores.

Real alerts rarely come with a class. Many carry evidence of one: a spectroscopic classification
reported to TNS, a curated BTS sample's ``source_set``, a SIMBAD object type or a variable-star
catalogue match at the alert's position (Fink's ``cdsxmatch``, ``vsx``, ``gcvs``, ``gaiaClass``), a
known solar-system object (Fink's ``roid``), or ZTF's own real/bogus machine score. The mapping from
that evidence to one coarse class per alert is a table in the package
(``alertlib/io/tables/weak_labels.csv``: column, how to match, value, class, label source), read in
order: the first rule that matches an alert gives its class, so stronger evidence (spectroscopy)
comes before weaker (machine scores). Alerts that no rule matches (galaxy or "Unknown"
cross-matches, failed queries) are ``unlabelled``.

Classes: ``transient`` (extragalactic transient: SN, SLSN, TDE), ``varstar``, ``agn``, ``asteroid``,
``bogus`` (a machine label: say so wherever it is used) and ``unlabelled``. Every alert keeps its
``label_source`` and the value that matched (``label_evidence``). The binary ``label`` follows the
study's real-data task, extragalactic transient (1) against variable star and AGN (0); other classes
get -1 (not part of the binary task).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.errors import DataError

WEAK_LABELS_TABLE = Path(__file__).resolve().parent / "tables" / "weak_labels.csv"
CLASSES = ("transient", "varstar", "agn", "asteroid", "bogus", "unlabelled")
BINARY_POSITIVE = ("transient",)
BINARY_NEGATIVE = ("varstar", "agn")
# Values of a cross-match column that say "no match" (or a failed query), not a class.
NO_MATCH = frozenset({"", "nan", "none", "null", "unknown", "fail"})
MATCH_KINDS = ("exact", "regex", "catalogued", "below")


@lru_cache(maxsize=1)
def mapping_table() -> pd.DataFrame:
    """The rules of ``weak_labels.csv``, in order (first match wins); checked on load."""
    table = pd.read_csv(WEAK_LABELS_TABLE, dtype=str, keep_default_na=False)
    bad_kind = set(table["match"]) - set(MATCH_KINDS)
    bad_class = set(table["alert_class"]) - set(CLASSES)
    if bad_kind or bad_class:
        raise DataError(f"{WEAK_LABELS_TABLE}: unknown match kinds {sorted(bad_kind)} or classes {sorted(bad_class)}")
    return table


def _no_match(values: pd.Series) -> pd.Series:
    text = values.astype(str).str.strip().str.lower()
    return values.isna() | text.isin(NO_MATCH) | text.str.startswith("fail")


def rule_matches(rule: pd.Series, candidates: pd.DataFrame) -> np.ndarray:
    """Which alerts (rows of ``candidates``) one rule of the mapping table matches."""
    column = rule["column"]
    if column not in candidates.columns:
        return np.zeros(len(candidates), dtype=bool)
    values = candidates[column]
    if rule["only_if_missing"] and rule["only_if_missing"] in candidates.columns:
        applies = candidates[rule["only_if_missing"]].isna().to_numpy()
    else:
        applies = np.ones(len(candidates), dtype=bool)
    kind = rule["match"]
    if kind == "below":
        numbers = pd.to_numeric(values, errors="coerce")
        found = (numbers < float(rule["value"])).to_numpy()
    elif kind == "catalogued":
        found = (~_no_match(values)).to_numpy()
    else:
        text = values.where(~_no_match(values), "").astype(str).str.strip()
        if kind == "exact":
            # Numbers are compared as written in the table ("3" matches 3 and 3.0).
            numeric = pd.to_numeric(values, errors="coerce")
            try:
                found = ((text == rule["value"]) | (numeric == float(rule["value"]))).to_numpy()
            except ValueError:
                found = (text == rule["value"]).to_numpy()
        else:
            found = text.str.contains(re.compile(rule["value"]), regex=True).to_numpy()
    return applies & found


def weak_labels(candidates: pd.DataFrame) -> pd.DataFrame:
    """``alert_class``, ``label_source``, ``label_evidence`` and the binary ``label`` of each alert.

    Returns a frame with the same index as ``candidates``.
    """
    n = len(candidates)
    alert_class = np.full(n, "unlabelled", dtype=object)
    source = np.full(n, "none", dtype=object)
    evidence = np.full(n, "", dtype=object)
    open_rows = np.ones(n, dtype=bool)
    for _, rule in mapping_table().iterrows():
        hit = open_rows & rule_matches(rule, candidates)
        if not hit.any():
            continue
        alert_class[hit] = rule["alert_class"]
        source[hit] = rule["label_source"]
        evidence[hit] = [f"{rule['column']}={value}" for value in candidates.loc[hit, rule["column"]].astype(str)]
        open_rows &= ~hit
    label = np.where(np.isin(alert_class, BINARY_POSITIVE), 1, np.where(np.isin(alert_class, BINARY_NEGATIVE), 0, -1))
    return pd.DataFrame(
        {"alert_class": alert_class, "label_source": source, "label_evidence": evidence, "label": label},
        index=candidates.index,
    )


def label_summary(candidates: pd.DataFrame) -> pd.DataFrame:
    """Alerts and objects per class and label source (the table a user checks before trusting a result)."""
    table = candidates.assign(alert_class=pd.Categorical(candidates["alert_class"], categories=CLASSES))
    summary = table.groupby(["alert_class", "label_source"], observed=True).agg(
        alerts=("candid", "size"), objects=("objectId", "nunique")
    )
    return summary.reset_index()
