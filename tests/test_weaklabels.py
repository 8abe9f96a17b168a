"""Weak labels of real alerts: the mapping table on hand-made rows, and the real set built from the shared data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alertlib.io.weaklabels import CLASSES, mapping_table, weak_labels


def _rows(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"objectId": [f"ZTF{i}" for i in range(n)], "candid": list(range(n))}
    return pd.DataFrame({**base, **columns})


def test_each_kind_of_evidence_gives_its_class_and_source():
    rows = _rows(
        tnsclass=["(TNS) SLSN-I", None, None, None, None, None, None, None, None, None],
        cdsxmatch=["Galaxy", "RRLyr", "Seyfert_1", "Galaxy", "Fail 503", "Unknown", None, None, None, "Supernova"],
        vsx=[None, None, None, None, None, "UGSU", "Fail 503", None, None, None],
        roid=[0, 0, 0, 0, 0, 0, 0, 3.0, 2.0, 0],
        drb=[0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
        rb=[0.9] * 10,
    )
    labelled = weak_labels(rows)
    assert labelled["alert_class"].tolist() == [
        "transient",  # TNS wins over a galaxy cross-match
        "varstar",
        "agn",
        "unlabelled",  # a host galaxy says nothing about the alert
        "unlabelled",  # a failed query is not a class
        "varstar",  # VSX catalogues it
        "unlabelled",  # a failed VSX query is not a match
        "asteroid",  # roid 3: a known solar-system object
        "unlabelled",  # roid 2 is only a candidate
        "transient",  # a SIMBAD supernova
    ]
    assert labelled["label_source"].tolist()[:3] == ["tns", "simbad", "simbad"]
    assert labelled.loc[5, "label_source"] == "vsx" and labelled.loc[7, "label_source"] == "fink_roid"
    assert labelled.loc[0, "label_evidence"] == "tnsclass=(TNS) SLSN-I"
    # The binary real-data task: transient 1, variable star and AGN 0, the rest -1.
    assert labelled["label"].tolist() == [1, 0, 0, -1, -1, 0, -1, -1, -1, 1]


def test_machine_bogus_labels_come_last_and_rb_only_without_drb():
    rows = _rows(
        cdsxmatch=["RRLyr", "Unknown", "Unknown", "Unknown", "Unknown"],
        drb=[0.1, 0.3, 0.8, np.nan, np.nan],
        rb=[0.1, 0.9, 0.2, 0.2, 0.7],
    )
    labelled = weak_labels(rows)
    assert labelled["alert_class"].tolist() == ["varstar", "bogus", "unlabelled", "bogus", "unlabelled"]
    assert labelled["label_source"].tolist()[:4] == ["simbad", "ztf_drb_machine", "none", "ztf_rb_machine"]
    assert labelled["label_source"].str.endswith("_machine").sum() == 2  # machine labels say so in their name


def test_mapping_table_is_data_with_known_classes():
    table = mapping_table()
    assert set(table["alert_class"]) <= set(CLASSES)
    assert {"tns", "bts", "simbad", "vsx", "fink_roid"} <= set(table["label_source"])
    # Spectroscopy outranks catalogues, which outrank machine scores.
    order = table["label_source"].tolist()
    assert order.index("tns") < order.index("simbad") < order.index("ztf_drb_machine")


@pytest.mark.realdata
def test_real_set_from_the_shared_data(shared_data):
    from alertlib.io.realset import build_real_set

    real = build_real_set(
        [shared_data / "alert-packets"],
        [shared_data / "bts-real-sample/zenodo-v10-layout", shared_data / "bts-real-sample"],
    )
    candidates = real.candidates
    assert real.triplets.shape == (len(candidates), 63, 63, 3)
    assert not candidates["candid"].duplicated().any() and real.duplicates > 0
    summary = real.summary().set_index(["alert_class", "label_source"])
    assert summary.loc[("transient", "tns"), "objects"] >= 15  # the spectroscopic SLSNe
    assert summary.loc[("varstar", "simbad"), "objects"] >= 50
    # Every alert is labelled by exactly one source, and the counts add up.
    assert summary["alerts"].sum() == len(candidates)
    # An object never gets two classes from catalogue evidence.
    catalogued = candidates[candidates["label_source"].isin(["tns", "simbad", "vsx", "gcvs", "bts"])]
    assert catalogued.groupby("objectId")["alert_class"].nunique().max() == 1
