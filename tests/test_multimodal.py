"""Image + metadata models: the features (sky, packets, release), the model, its training and its checkpoint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from alertlib.core.errors import DataError
from alertlib.core.vocab import METADATA_FEATURES, base_arch, multimodal_mode
from alertlib.io.features import feature_matrix, lightcurve_features, normalisation_stats, packet_features
from alertlib.learn.models import create_model


def test_model_names_say_what_the_model_reads():
    assert multimodal_mode("resnet18") is None
    assert multimodal_mode("resnet18+meta") == "meta"
    assert multimodal_mode("btsbot_cnn+meta-frozen") == "meta-frozen"
    assert base_arch("convnext_pico+meta") == "convnext_pico"
    with pytest.raises(ValueError, match="unknown model suffix"):
        multimodal_mode("resnet18+metta")


def test_lightcurve_features_use_only_the_history_up_to_each_alert():
    table = pd.DataFrame(
        {
            "objectId": ["a", "a", "a", "b", "a"],
            "jd": [3.0, 1.0, 2.0, 5.0, 4.0],
            "magpsf": [18.0, 19.0, 17.5, 16.0, 17.5],
        }
    )
    features = lightcurve_features(table)
    assert features.index.equals(table.index)
    # Object a in time order: 19.0 (jd 1), 17.5 (jd 2), 18.0 (jd 3), 17.5 (jd 4).
    np.testing.assert_allclose(features["peakmag_so_far"], [17.5, 19.0, 17.5, 16.0, 17.5])
    np.testing.assert_allclose(features["maxmag_so_far"], [19.0, 19.0, 19.0, 16.0, 19.0])
    np.testing.assert_allclose(features["age"], [2.0, 0.0, 1.0, 0.0, 3.0])
    # The first alert to reach the running minimum (jd 2) is the peak, not the later tie at jd 4.
    np.testing.assert_allclose(features["days_since_peak"], [1.0, 0.0, 0.0, 0.0, 2.0])
    np.testing.assert_allclose(features["days_to_peak"], [1.0, 0.0, 1.0, 0.0, 1.0])


def test_packet_features_derive_what_a_packet_lacks_and_say_so():
    table = pd.DataFrame(
        {
            "objectId": ["a"],
            "jd": [2.0],
            "magpsf": [18.0],
            "ncovhist": [10],
            "ndethist": [4],
            "drb": [0.9],
            "jdstarthist": [1.5],
        }
    )
    derived = packet_features(table)
    assert derived.loc[0, "nnotdet"] == 6
    assert derived.loc[0, "new_drb"] == 0.9
    assert derived.loc[0, "age"] == pytest.approx(0.5)  # from jdstarthist, before the first alert here
    assert set(derived.attrs["feature_sources"]) >= {"nnotdet", "new_drb", "age"}


def test_feature_matrix_refuses_missing_and_non_finite_features_by_name():
    table = pd.DataFrame({name: [1.0, 2.0] for name in METADATA_FEATURES})
    assert feature_matrix(table).shape == (2, 25)
    with pytest.raises(DataError, match="lacks the metadata features \\['scorr'\\]"):
        feature_matrix(table.drop(columns="scorr"), where="x.csv")
    broken = table.assign(chipsf=[1.0, np.nan])
    with pytest.raises(DataError, match="chipsf': 1"):
        feature_matrix(broken)


def test_the_sky_writes_every_feature_consistently_with_its_light_curves(tmp_path, monkeypatch):
    from alertlib.io.release import read_split
    from alertlib.sky.simulate import cached_sky

    monkeypatch.setenv("ALERTLIB_DATA", str(tmp_path))
    folder = cached_sky("alerts", 40, seed=3, progress=False, max_alerts=4, workers=1)
    again = read_split(folder, "train").candidates
    table = read_split(folder, "train").candidates
    features = feature_matrix(table, where=str(folder))  # all 25, finite
    assert np.array_equal(features, feature_matrix(again))
    assert (table["nnotdet"] == table["ncovhist"] - table["ndethist"]).all()
    assert (table["peakmag_so_far"] <= table["magpsf"] + 1e-9).all()
    assert (table["maxmag_so_far"] >= table["magpsf"] - 1e-9).all()
    assert table["new_drb"].between(0, 1).all()
    bogus = table["alert_class"] == "bogus"
    if bogus.any() and (~bogus).any():
        assert table.loc[bogus, "new_drb"].median() < table.loc[~bogus, "new_drb"].median()


def test_btsbot_multimodal_cnn_has_the_btsbot_package_layers():
    from alertlib.bench.zoo import load_btsbot_architectures
    from alertlib.learn.models import BTSBOT_CNN_CONFIG
    from alertlib.learn.multimodal import MULTIMODAL_CONFIG

    config = {**BTSBOT_CNN_CONFIG, **MULTIMODAL_CONFIG, "metadata_cols": list(METADATA_FEATURES), "image_size": 63}
    theirs = load_btsbot_architectures().mm_cnn(config)
    ours = create_model("btsbot_cnn+meta", "scratch")
    # Their image branch has no dense layers (the fused head replaces them); ours keeps the
    # image-only model's encoder, so the counts compare encoder + metadata branch + fused head.
    count = sum(p.numel() for name, p in ours.named_parameters() if not name.startswith("image_model.head"))
    assert count == sum(p.numel() for p in theirs.parameters())
    images, features = torch.randn(4, 3, 63, 63), torch.randn(4, 25)
    assert ours.eval()(images, features).shape == theirs.eval()(images, features).shape == (4, 1)


def test_features_are_standardised_with_the_training_statistics_held_in_the_model():
    model = create_model("resnet18+meta", "scratch", input_size=33).eval()
    features = np.random.default_rng(0).normal(5.0, 3.0, (16, 25)).astype(np.float32)
    mean, std = normalisation_stats(features)
    model.set_feature_normalisation(mean, std)
    state = model.state_dict()
    assert torch.allclose(state["feature_mean"], torch.from_numpy(mean))
    images = torch.randn(16, 3, 33, 33)
    with torch.no_grad():
        base = model(images, torch.from_numpy(features))
        shifted = model(images, torch.from_numpy(features + 1.0))
    assert not torch.allclose(base, shifted)  # the features reach the output


def _split(rng, n, folder):
    from alertlib.io.release import Split

    label = rng.integers(0, 2, n)
    table = pd.DataFrame({name: rng.normal(0, 1, n) for name in METADATA_FEATURES})
    table["magpsf"] = 18.0 + np.where(label == 1, -1.0, 1.0) + rng.normal(0, 0.1, n)  # only the features tell
    table = table.assign(objectId=[f"o{i}" for i in range(n)], candid=np.arange(n), label=label)
    triplets = rng.normal(0, 0.01, (n, 63, 63, 3)).astype(np.float32)  # noise: the images tell nothing
    return Split(triplets, table, "t1", folder)


def test_a_multimodal_model_learns_what_only_the_metadata_says_and_round_trips(tmp_path):
    from alertlib.learn.finetune import fit_and_evaluate, full_config, save_model
    from alertlib.learn.inference import load_model

    rng = np.random.default_rng(1)
    splits = {name: _split(rng, n, tmp_path) for name, n in (("train", 192), ("val", 64), ("test", 64))}
    config = full_config(
        {
            "data": str(tmp_path),
            "arch": "btsbot_cnn+meta",
            "epochs": 8,
            "lr": 3e-3,
            "crop": 33,
            "progress": False,
            "augment": False,
        }
    )
    outcome = fit_and_evaluate(config, splits)
    assert outcome.values["roc_auc"] > 0.9  # an image-only model cannot beat 0.5 here
    train = feature_matrix(splits["train"].candidates)
    np.testing.assert_allclose(outcome.model.feature_mean.numpy(), train.mean(axis=0), rtol=1e-5, atol=1e-6)
    save_model(tmp_path / "model.pt", outcome.model, config, {"class_names": None})
    loaded = load_model(tmp_path / "model.pt")
    assert loaded.arch == "btsbot_cnn+meta" and loaded.feature_names == METADATA_FEATURES
    images, features = torch.randn(3, 3, 33, 33), torch.randn(3, 25)
    with torch.no_grad():
        assert torch.allclose(loaded(images, features), outcome.model.eval()(images, features))


def test_a_frozen_encoder_does_not_change_while_the_metadata_branch_trains(tmp_path):
    from lightning.pytorch import seed_everything

    from alertlib.learn.finetune import full_config, task_setup, train

    rng = np.random.default_rng(2)
    splits = {name: _split(rng, n, tmp_path) for name, n in (("train", 64), ("val", 32), ("test", 32))}
    config = full_config(
        {"data": str(tmp_path), "arch": "resnet18+meta-frozen", "epochs": 1, "crop": 33, "progress": False}
    )
    seed_everything(config["seed"], verbose=False)  # train() seeds the same way before it builds its model
    initial = create_model("resnet18+meta-frozen", "scratch", input_size=33).state_dict()
    trained = train(config, splits, task_setup(config, splits))[0].state_dict()
    encoder = [name for name in initial if name.startswith("image_model.encoder")]
    branch = [name for name in initial if name.startswith("metadata_branch") and initial[name].is_floating_point()]
    assert encoder and all(torch.equal(trained[name], initial[name]) for name in encoder)
    assert any(not torch.equal(trained[name], initial[name]) for name in branch)


def test_the_grid_leaves_out_a_frozen_encoder_without_pre_training_and_uses_image_checkpoints():
    from alertlib.study.grid import finetune_jobs

    profile = {
        "seed": 0,
        "finetune": {
            "seeds": [0],
            "grids": {
                "multimodal": {
                    "task": "bts",
                    "archs": ["btsbot_cnn+meta", "resnet18+meta-frozen"],
                    "inits": ["scratch", "galaxy_sim"],
                },
                "off": None,
            },
        },
    }
    jobs, notes = finetune_jobs(profile, lambda seed: "sky", {("resnet18", "galaxy_sim"): "enc.pt"})
    made = {(j["arch"], j["init"]) for j in jobs}
    assert made == {("btsbot_cnn+meta", "scratch"), ("resnet18+meta-frozen", "galaxy_sim")}
    assert any("frozen image encoder needs a pre-trained one" in note for note in notes)
    assert [j["checkpoint"] for j in jobs if j["init"] == "galaxy_sim"] == ["enc.pt"]


def test_modality_comparison_puts_each_image_model_beside_its_metadata_versions():
    from alertlib.report.tables import modality_comparison

    summary = pd.DataFrame(
        {
            "task": ["bts"] * 5,
            "arch": ["resnet18", "resnet18+meta", "btsbot_cnn", "resnet18+meta-frozen", "resnet18"],
            "init": ["scratch", "scratch", "scratch", "galaxy_sim", "galaxy_sim"],
            "metric": ["roc_auc"] * 5,
            "mean": [0.8, 0.9, 0.7, 0.85, 0.82],
        }
    )
    table = modality_comparison(summary).set_index("init")
    assert list(table.index) == ["galaxy_sim", "scratch"]  # btsbot_cnn has no metadata run: left out
    assert table.loc["scratch", "image + meta"] == 0.9 and table.loc["scratch", "image"] == 0.8
    assert table.loc["galaxy_sim", "image + meta-frozen"] == 0.85


@pytest.fixture(scope="module")
def multimodal_run(tmp_path_factory):
    """A tiny sky and an image + metadata model fine-tuned on it for one epoch (model.pt)."""
    from alertlib.learn.finetune import run_finetune
    from alertlib.sky.simulate import cached_sky

    root = tmp_path_factory.mktemp("multimodal")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ALERTLIB_DATA", str(root))
        sky = cached_sky("alerts", 40, seed=5, progress=False, max_alerts=4, workers=1)
    config = {"data": str(sky), "arch": "btsbot_cnn+meta", "epochs": 1, "crop": 33, "progress": False}
    run_finetune(config, root / "run")
    return sky, root / "run" / "model.pt"


def test_score_and_onnx_give_the_same_multimodal_scores(multimodal_run, tmp_path):
    from alertlib.learn.export import export_onnx
    from alertlib.learn.scoring import score_inputs

    sky, checkpoint = multimodal_run
    torch_scores, skipped = score_inputs([sky], checkpoint, workers=1)
    onnx_scores, _ = score_inputs([sky], None, workers=1, onnx=export_onnx(checkpoint, tmp_path / "model.onnx"))
    assert len(torch_scores) > 0 and len(skipped) == 0
    np.testing.assert_allclose(onnx_scores["score"], torch_scores["score"], atol=1e-4)
    assert torch_scores["arch"].eq("btsbot_cnn+meta").all()


def test_an_image_only_call_on_a_multimodal_model_says_what_it_needs(multimodal_run):
    from alertlib.core.errors import SettingError
    from alertlib.learn.inference import load_model, score_triplets

    model = load_model(multimodal_run[1])
    with pytest.raises(SettingError, match="reads 25 candidate features"):
        score_triplets(model, np.zeros((2, 63, 63, 3), dtype=np.float32), dtype="float32")


def test_packets_without_a_feature_are_reported_skips_not_silent_drops(multimodal_run):
    from alertlib.core.paths import real_data_path
    from alertlib.io.packets import expand_paths
    from alertlib.learn.scoring import score_inputs

    packets = real_data_path("ztf_packets")
    if packets is None:
        pytest.skip("the shared real packets are absent")
    scores, skipped = score_inputs([packets], multimodal_run[1], workers=1)
    missing = skipped[skipped["reason"] == "missing metadata"]
    assert len(missing) > 0 and missing["detail"].str.contains("new_drb").all()  # these packets carry no drb
    assert len(scores) + len(skipped) >= len(expand_paths([packets]))  # every packet is scored or listed
    assert np.isfinite(scores["score"]).all()


def test_both_data_paths_give_a_multimodal_model_the_same_training(tmp_path):
    from lightning.pytorch import seed_everything

    from alertlib.learn.datasets import TripletDataset
    from alertlib.learn.training import fit

    rng = np.random.default_rng(3)
    split = _split(rng, 96, tmp_path)
    features = feature_matrix(split.candidates)
    labels = split.candidates["label"].to_numpy()
    histories = {}
    for path in ("loader", "device"):
        seed_everything(0, verbose=False)
        model = create_model("btsbot_cnn+meta", "scratch", input_size=33)
        train = TripletDataset(split.triplets[:64], labels[:64], augment=True, seed=1, crop=33, features=features[:64])
        val = TripletDataset(split.triplets[64:], labels[64:], crop=33, features=features[64:])
        config = {"epochs": 2, "batch_size": 16, "progress": False, "data_path": path, "seed": 1, "accelerator": "cpu"}
        result = fit(model, train, val, "binary", config)
        assert result.settings["data_path"] == path
        histories[path] = result.history[["train_loss", "val_loss"]].to_numpy()
    np.testing.assert_allclose(histories["device"], histories["loader"], rtol=1e-5)
