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
