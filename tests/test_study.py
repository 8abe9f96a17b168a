"""The study runner: grid expansion, resumable jobs, README headline, and a simulated end-to-end run."""

from __future__ import annotations

import numpy as np
import pytest

from alertlib.learn.datasets import TripletDataset
from alertlib.report import readme
from alertlib.study import grid, stages


def test_finetune_jobs_expand_the_grid_and_say_what_is_left_out(tmp_path, monkeypatch):
    monkeypatch.setenv("ALERTLIB_WEIGHTS", str(tmp_path / "no-weights"))
    profile = {
        "profile": "t",
        "finetune": {
            "crop": 33,
            "epochs": 1,
            "seeds": [0, 1],
            "grids": {
                "main": {
                    "task": "bts",
                    "archs": ["btsbot_cnn", "resnet18"],
                    "inits": ["scratch", "galaxy_sim", "imagenet"],
                },
                "mc": {
                    "task": "multiclass",
                    "label_column": "alert_class",
                    "archs": ["resnet18"],
                    "inits": ["scratch"],
                    "seeds": [5],
                },
            },
        },
    }
    checkpoints = {("resnet18", "galaxy_sim"): "/x/encoder.pt"}
    jobs, notes = grid.finetune_jobs(profile, lambda seed: tmp_path, checkpoints)
    described = sorted((j["task"], j["arch"], j["init"], j["seed"]) for j in jobs)
    assert described == sorted(
        [("bts", "btsbot_cnn", "scratch", s) for s in (0, 1)]
        + [("bts", "resnet18", "scratch", s) for s in (0, 1)]
        + [("bts", "resnet18", "galaxy_sim", s) for s in (0, 1)]
        + [("multiclass", "resnet18", "scratch", 5)]
    )
    assert all(j["crop"] == 33 for j in jobs)
    assert [j["checkpoint"] for j in jobs if j["init"] == "galaxy_sim"] == ["/x/encoder.pt"] * 2
    assert next(j for j in jobs if j["task"] == "multiclass")["label_column"] == "alert_class"
    # The custom CNN gets no imagenet/galaxy runs (scratch only); resnet18/imagenet is left out with the reason.
    assert len(notes) == 1 and "resnet18/imagenet" in notes[0] and "--online" in notes[0]


def test_triplet_crop_keeps_the_candidate_at_the_centre():
    triplets = np.zeros((1, 63, 63, 3), np.float32)
    triplets[0, 31, 31, :] = 1.0  # the candidate pixel
    triplets[0, 31, 40, 2] = 0.5  # something to the right of it
    for turns_seed in range(4):
        dataset = TripletDataset(triplets, [1], augment=True, seed=turns_seed, crop=33)
        image = dataset[0][0].numpy()
        assert image.shape == (3, 33, 33)
        assert image[0, 16, 16] == 1.0  # rotations and flips turn about the candidate
    with pytest.raises(ValueError, match="crop"):
        TripletDataset(triplets, [1], crop=64)


def test_readme_headline_is_replaced_between_markers(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(f"intro\n{readme.README_START}\nold\n{readme.README_END}\ntail\n")
    assert readme.update_readme("new table", path)
    assert path.read_text() == f"intro\n{readme.README_START}\nnew table\n{readme.README_END}\ntail\n"
    other = tmp_path / "OTHER.md"
    other.write_text("no markers")
    assert not readme.update_readme("x", other) and other.read_text() == "no markers"


def test_markdown_table():
    import pandas as pd

    text = readme.markdown_table(pd.DataFrame({"a": [1, None], "b": ["x", "y"]}))
    assert text.splitlines() == ["| a | b |", "| --- | --- |", "| 1.0 | x |", "|  | y |"]


def test_profile_naming_missing_real_data_fails_with_instructions(tmp_path):
    profile = {
        "profile": "p",
        "data": {"alerts": str(tmp_path / "missing"), "galaxy_catalog": str(tmp_path / "c.parquet")},
    }
    with pytest.raises(FileNotFoundError, match="BTS release layout"):
        stages.prepare_data(profile)


def _tiny_profile() -> dict:
    return {
        "profile": "e2e",
        "seed": 0,
        "simulate": {"n_galaxies": 256, "n_sources": 400, "n_test_sources": 200, "sky_per_seed": True},
        "pretrain": {"archs": ["resnet18"], "corpora": ["galaxy"], "image_size": 33, "epochs": 2, "progress": False},
        "finetune": {
            "crop": 33,
            "epochs": 6,
            "warmup_epochs": 1,
            "progress": False,
            "seeds": [0],
            "grids": {"main": {"task": "bts", "archs": ["resnet18"], "inits": ["galaxy_sim"]}},
        },
    }


def test_a_later_step_refuses_a_missing_or_stale_artefact(tmp_path, monkeypatch):
    from alertlib.study.artefacts import MissingArtefact

    monkeypatch.setenv("ALERTLIB_DATA", str(tmp_path))
    profile = _tiny_profile()
    with pytest.raises(MissingArtefact, match="00_data"):
        stages.finetune(profile)
    stages.prepare_data(profile, progress_bar=False)
    with pytest.raises(MissingArtefact, match="01_pretrain"):
        stages.finetune(profile)  # never trains what notebook 01 should have
    changed = {**profile, "simulate": {**profile["simulate"], "n_sources": 401}}
    with pytest.raises(MissingArtefact, match="other settings"):
        stages.load_data(changed)


@pytest.mark.slow
def test_simulated_sky_pretrain_then_finetune_learns(tmp_path, monkeypatch):
    """End to end on a tiny simulated sky: galaxy pre-training, then fine-tuning; the model learns.

    Also checks resumability: running the stage again reads every finished run back.
    """
    monkeypatch.setenv("ALERTLIB_DATA", str(tmp_path))
    profile = _tiny_profile()
    stages.prepare_data(profile, progress_bar=False)
    stages.pretrain(profile, progress_bar=False)
    results, notes = stages.finetune(profile, progress_bar=False)
    assert notes == []
    values = results.set_index("metric")["value"]
    assert results["init"].iloc[0] == "galaxy_sim" and results["weights_source"].iloc[0].startswith("checkpoint:")
    assert values["roc_auc"] > 0.65, values["roc_auc"]
    again, _ = stages.finetune(profile, progress_bar=False)
    assert again["run_id"].tolist() == results["run_id"].tolist()
    assert again["wall_time_s"].tolist() == results["wall_time_s"].tolist()  # read back, not re-run
    loaded, _ = stages.load_finetune(profile)
    assert loaded["run_id"].tolist() == results["run_id"].tolist()


def test_regenerated_data_under_the_same_path_is_a_new_run(tmp_path):
    import json

    from alertlib.learn.finetune import full_config
    from alertlib.learn.results import begin_run

    folder = tmp_path / "sky"
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({"content_sha256": "aaaa"}))
    config = {"data": str(folder), "arch": "btsbot_cnn", "init": "scratch"}
    first = begin_run(config, tmp_path / "run", full_config)
    assert first[0]["data_fingerprint"] == "aaaa"
    (folder / "dataset.json").write_text(json.dumps({"content_sha256": "bbbb"}))
    second = begin_run(config, tmp_path / "run", full_config)
    assert second[2] != first[2]  # the run id changes with the data's content


def test_learning_rate_sweep_chooses_on_validation_among_runs_that_pass_the_gate():
    import pandas as pd

    profile = {"finetune": {"lr_sweep": {"scratch": [1e-3, 3e-3], "pretrained": [3e-4]}}}
    jobs = [
        {"task": "bts", "arch": "resnet18", "init": init, "train_fraction": 1.0, "seed": seed, "lr": None}
        for init in ("scratch", "galaxy_sim")
        for seed in (0, 1)
    ] + [{"task": "bts", "arch": "resnet18", "init": "scratch", "train_fraction": 0.1, "seed": 0, "lr": None}]
    swept = grid.sweep_jobs(profile, jobs)
    assert sorted((j["init"], j["lr"], j["seed"]) for j in swept) == [
        ("galaxy_sim", 3e-4, 0),
        ("scratch", 1e-3, 0),
        ("scratch", 3e-3, 0),
    ]
    rows = []
    for run_id, init, lr, val_loss, passed in (
        ("a", "scratch", 1e-3, 0.60, 1.0),
        ("b", "scratch", 3e-3, 0.50, 0.0),  # lower loss, but the run failed the gate
        ("c", "galaxy_sim", 3e-4, 0.55, 1.0),
    ):
        for metric, value in (("best_val_loss", val_loss), ("gate_passed", passed), ("learning_rate", lr)):
            rows.append({"run_id": run_id, "arch": "resnet18", "init": init, "metric": metric, "value": value})
    choice = grid.choose_rates(pd.DataFrame(rows))
    chosen = choice[choice["chosen"]].set_index("init")["learning_rate"].to_dict()
    assert chosen == {"scratch": 1e-3, "galaxy_sim": 3e-4}
    applied = grid.apply_rates(jobs, choice)
    assert {j["lr"] for j in applied if j["init"] == "scratch"} == {1e-3}
    assert grid.sweep_jobs({"finetune": {}}, jobs) == []


def test_the_figures_read_every_device_benchmark_table(tmp_path, monkeypatch):
    """Notebook 03 writes benchmark_<device>.csv; the figures read them all (a cuda table included)."""
    from test_stats import make_benchmark  # tests/ is on sys.path under pytest

    from alertlib.study import artefacts

    monkeypatch.setenv("ALERTLIB_DATA", str(tmp_path))
    profile = {"profile": "gpu"}
    assert stages.load_benchmarks(profile) is None
    table = make_benchmark().assign(status="ok")
    for device in ("cpu", "cuda"):
        path = artefacts.benchmark_path(profile, device)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.assign(device=device).to_csv(path, index=False)
    loaded = stages.load_benchmarks(profile)
    assert set(loaded["device"]) == {"cpu", "cuda"}


def test_study_data_shows_its_first_replicate_and_names_a_missing_one(tmp_path):
    """A study of other replicates (seeds 3, 4) has no sky for the profile's seed 0: the notebooks show
    the first replicate's sky, and asking for a replicate the study lacks says which it has."""
    from alertlib.study.stages import StudyData

    data = StudyData(tmp_path / "catalog.parquet", {4: tmp_path / "s4", 3: tmp_path / "s3"}, {})
    assert data.example_seed == 3
    assert data.alerts_for(4) == tmp_path / "s4"
    with pytest.raises(KeyError, match=r"seed 0.*seeds \[3, 4\]"):
        data.alerts_for(0)
    shared = StudyData(tmp_path / "catalog.parquet", {-1: tmp_path / "sky"}, {})
    assert shared.alerts_for(7) == tmp_path / "sky" and shared.example_seed == -1
