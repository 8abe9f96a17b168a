"""``alertlib ingest``: packets to datasets in the release layout, skipped.csv, summary, benchmark."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_packets import write_avro, ztf_like_record

from alertlib.cli import main
from alertlib.io.ingest import benchmark
from alertlib.io.release import read_split


@pytest.fixture
def packet_folder(tmp_path):
    folder = tmp_path / "packets"
    folder.mkdir()
    write_avro(folder / "a.avro", [ztf_like_record(i) for i in range(4)], codec="deflate")
    write_avro(folder / "b.avro", [ztf_like_record(10, zero_science=True), ztf_like_record(11)], codec="snappy")
    (folder / "broken.avro").write_bytes((folder / "a.avro").read_bytes()[:300])
    (folder / "empty.avro").write_bytes(b"")
    return folder


def test_ingest_cli_writes_release_layout_and_skipped(packet_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["ingest", str(packet_folder), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["read"] == 4 + 2 + 1 + 1
    assert summary["written"] == {"ztf": 5}
    assert summary["skipped"] == {"all-zero cutout": 1, "empty file": 1, "truncated avro": 1}
    split = read_split(out / "ztf", "test")
    assert split.triplets.shape == (5, 63, 63, 3)
    assert split.candidates["candid"].tolist() == [1000, 1001, 1002, 1003, 1011]
    assert split.candidates["label"].isna().all()  # packets carry no label
    skipped = pd.read_csv(out / "skipped.csv")
    assert sorted(skipped["file"].map(lambda f: f.split("/")[-1])) == ["b.avro", "broken.avro", "empty.avro"]
    assert json.loads((out / "ztf" / "dataset.json").read_text())["labelled"] is False


def test_ingest_text_summary_and_usage_errors(packet_folder, tmp_path, capsys):
    assert main(["ingest", str(packet_folder), "--out", str(tmp_path / "o"), "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert "read 8 alerts from 4 files" in text and "written  ztf" in text and "skipped  empty file" in text
    assert main(["ingest", str(packet_folder)]) == 2
    assert main(["ingest", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_benchmark_reports_both_decoders(packet_folder, capsys):
    result = benchmark([packet_folder / "a.avro"], repeats=3, min_seconds=0.0)  # best of 3: the machine is shared
    assert result["alerts"] == 4
    assert result["fast_alerts_per_s"] > result["astropy_alerts_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["fast_alerts_per_s"] / result["astropy_alerts_per_s"], rel=0.01)


@pytest.mark.realdata
def test_ingest_every_real_packet(shared_data, tmp_path, capsys):
    out = tmp_path / "real"
    assert main(["ingest", str(shared_data / "alert-packets"), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["read"] == sum(summary["written"].values()) + sum(summary["skipped"].values())
    assert summary["written"]["ztf"] >= 1230 and summary["written"]["atlas"] >= 12
    assert summary["skipped"]["no cutouts"] == 82  # the simulated LSST packets
    assert set(summary["skipped"]) <= {
        "no cutouts",
        "truncated avro",
        "corrupt avro",
        "wrong format",
        "unsupported schema",
    }
    ztf = read_split(out / "ztf", "test")
    atlas = read_split(out / "atlas", "test")
    rubin = read_split(out / "rubin" / "30x30", "test")
    assert ztf.triplets.shape == (summary["written"]["ztf"], 63, 63, 3) and rubin.triplets.shape[1:] == (30, 30, 3)
    assert not atlas.candidates["has_reference"].any() and not np.asarray(atlas.triplets)[..., 1].any()
    assert len(pd.read_csv(out / "skipped.csv")) == sum(summary["skipped"].values())
