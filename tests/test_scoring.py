"""alertlib score: real packets and release-layout folders in, one row per alert and the skips out."""

from __future__ import annotations

import pandas as pd
import pytest

from alertlib.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An (untrained) BTS model saved as fine-tuning saves one: scoring needs no particular weights."""
    from alertlib.learn.finetune import full_config, save_model
    from alertlib.learn.models import create_model

    path = tmp_path_factory.mktemp("model") / "model.pt"
    model = create_model("btsbot_cnn", "scratch", num_outputs=1, input_size=33)
    config = full_config({"data": str(path.parent), "arch": "btsbot_cnn", "crop": 33, "seed": 3})
    save_model(path, model, config, {"run_id": "test", "class_names": None, "pretrain_provenance": {}})
    return path


@pytest.mark.realdata
def test_score_real_packets_and_a_release_folder(shared_data, checkpoint, tmp_path, capsys):
    packets = shared_data / "alert-packets"
    inputs = [
        packets / "ztf",
        packets / "lsst",
        packets / "rubin-real",
        shared_data / "bts-real-sample/zenodo-v10-layout",
    ]
    out = tmp_path / "scores.parquet"
    assert main(["score", *map(str, inputs), "--checkpoint", str(checkpoint), "--out", str(out), "--workers", "1"]) == 0
    scores = pd.read_parquet(out)
    skipped = pd.read_csv(tmp_path / "skipped.csv")
    assert len(scores) == 12 + 9  # the ZTF packets and the release sample's nine rows
    assert scores["score"].between(0, 1).all() and scores["candid"].notna().all()
    assert {"objectId", "candid", "bts_p1", "bts_p2", "prod_p1", "prod_p2", "arch", "init", "seed"} <= set(
        scores.columns
    )
    assert (scores["arch"] == "btsbot_cnn").all() and (scores["seed"] == 3).all()
    # Simulated LSST packets have no cutouts; real Rubin stamps are not 63x63: both listed with the reason.
    assert set(skipped["reason"]) == {"no cutouts", "other stamp size"}
    assert (skipped["reason"] == "no cutouts").sum() == 82 and (skipped["reason"] == "other stamp size").sum() >= 100
    assert "alerts scored" in capsys.readouterr().out


def test_score_refuses_missing_inputs(checkpoint, tmp_path, capsys):
    assert (
        main(["score", str(tmp_path / "nowhere"), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "s.csv")])
        == 2
    )
    assert "no such file or folder" in capsys.readouterr().err


@pytest.mark.realdata
def test_any_number_of_workers_gives_the_same_table_and_counts_a_corrupt_packet(
    shared_data, checkpoint, tmp_path, capsys, monkeypatch
):
    """Decoding in 2 worker processes while inference runs gives the rows, order and skips of 1 process."""
    import shutil

    from alertlib.learn import scoring

    monkeypatch.setattr(scoring, "CHUNK_ALERTS", 16)  # many chunks, cut across the decoders' batches
    packets = tmp_path / "packets"
    for folder in ("ztf", "ztf-spark-snappy"):
        shutil.copytree(shared_data / "alert-packets" / folder, packets / folder)
    good = sorted((packets / "ztf").iterdir())[0].read_bytes()
    (packets / "ztf" / "corrupt.avro").write_bytes(good[: len(good) // 2] + b"\x00" * 64)
    tables = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}" / "scores.parquet"
        out.parent.mkdir()
        assert (
            main(["score", str(packets), "--checkpoint", str(checkpoint), "--out", str(out), "--workers", str(workers)])
            == 0
        )
        tables[workers] = pd.read_parquet(out), pd.read_csv(out.parent / "skipped.csv")
        summary = f"{len(tables[workers][0])} alerts scored, {len(tables[workers][1])} skipped"
        assert summary in capsys.readouterr().out
    pd.testing.assert_frame_equal(tables[1][0], tables[2][0])
    pd.testing.assert_frame_equal(tables[1][1], tables[2][1])
    scores, skipped = tables[2]
    assert len(scores) == 12 + 98 and scores["score"].between(0, 1).all()  # smaller stamps are padded to 63x63
    assert len(skipped) == 1 and skipped["file"].iloc[0].endswith("corrupt.avro")
    assert skipped["reason"].iloc[0] == "truncated avro"
