"""The work of each numbered notebook, as one call per step, reading and writing its artefacts.

===============  =====================================  ==========================================
notebook         runs                                   reads
===============  =====================================  ==========================================
00_data          :func:`prepare_data`                   the profile (simulated sky or real data)
01_pretrain      :func:`pretrain`                       ``data``
02_finetune      :func:`finetune` (and                  ``data``, ``pretrain``
                 :func:`calibrate_finetuned`)
03_efficiency    :func:`benchmark`                      the profile's ``benchmark:`` block
04_real_alerts   :mod:`alertlib.study.realdata`,        ``finetune``, ``pretrain``
                 :func:`realism_by_set`
05_figures       (report functions on the tables),      ``finetune``, ``benchmark``, ``real``
                 :func:`explain_reference_model`
===============  =====================================  ==========================================

The ``load_*`` functions give a later notebook the artefacts it reads; each raises
:class:`alertlib.study.artefacts.MissingArtefact`, naming the notebook to run, when one is missing
or was made with other settings. No function here trains for a notebook other than its own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from alertlib.core.errors import DataNotFound
from alertlib.core.files import write_json, write_table
from alertlib.core.paths import REPO_ROOT, real_data_path
from alertlib.study import artefacts, grid


@dataclass(frozen=True)
class StudyData:
    """The data a profile studies: a galaxy vote catalog (pre-training) and alerts in the BTS layout.

    With ``simulate.sky_per_seed`` (the simulated default), each fine-tuning seed (replicate) has
    its own alert sky, split and test set, so that the differences between replicates carry the
    test-set noise too (:mod:`alertlib.report.intervals`); ``alerts`` maps seed to folder. Real data,
    or a single sky, is one folder for every seed.
    """

    galaxy_catalog: Path
    alerts: dict[int, Path]
    content: dict  # content hashes (simulated data) or paths (real data) that identify them

    def key(self) -> str:
        return artefacts.inputs_key(self.content)

    def alerts_for(self, seed: int) -> Path:
        """The alert folder that the replicate ``seed`` trains and tests on."""
        folder = self.alerts.get(int(seed), self.alerts.get(-1))
        if folder is None:
            raise KeyError(f"no alert sky for replicate seed {seed}; this study's skies: seeds {sorted(self.alerts)}")
        return folder

    @property
    def example_seed(self) -> int:
        """The replicate whose sky the notebooks show (the first one); -1 where one folder serves every seed."""
        return min(self.alerts)

    def to_json(self) -> dict:
        return {
            "galaxy_catalog": str(self.galaxy_catalog),
            "alerts": {str(seed): str(path) for seed, path in self.alerts.items()},
            "content": self.content,
        }

    @classmethod
    def from_json(cls, record: dict) -> StudyData:
        alerts = {int(seed): Path(path) for seed, path in record["alerts"].items()}
        return cls(Path(record["galaxy_catalog"]), alerts, record["content"])


# --- 00: the data ------------------------------------------------------------------------------------


def _data_inputs(profile: dict) -> dict:
    return {"data": profile.get("data"), "simulate": profile.get("simulate"), "seed": profile.get("seed", 0)}


def _real_paths(profile: dict) -> dict[str, Path]:
    """The real data a profile's ``data:`` block names (relative to the repository or absolute)."""
    resolved = {}
    for key, value in (profile.get("data") or {}).items():
        if key not in ("galaxy_catalog", "alerts") or not value:
            continue
        path = Path(os.path.expandvars(str(value)))
        path = path if path.is_absolute() else REPO_ROOT / path
        if not path.exists():
            raise DataNotFound(
                f"profile {profile['profile']!r} studies real data at {path} ({key}), which does not exist. "
                f"Put the files there (alerts: the BTS release layout from Zenodo 10.5281/zenodo.10839690; "
                f"galaxy_catalog: a galaxy-datasets catalog of vote counts) or edit the profile's data: block."
            )
        resolved[key] = path
    return resolved


def _content_of(folder: Path) -> str:
    """A data set's identity: its content hash when alertlib simulated it, else its path."""
    metadata = folder / "dataset.json"
    if metadata.is_file():
        return json.loads(metadata.read_text()).get("content_sha256") or str(folder)
    return str(folder)


def replicate_seeds(profile: dict) -> list[int]:
    """Every seed any fine-tuning grid of the profile uses (the replicates)."""
    block = profile.get("finetune", {})
    seeds = set(block.get("seeds", [profile.get("seed", 0)]))
    for grid_settings in (g for g in block.get("grids", {}).values() if g):
        seeds.update(grid_settings.get("seeds", []))
    return sorted(int(s) for s in seeds)


def _simulated_skies(profile: dict, progress_bar: bool) -> tuple[Path, dict[int, Path]]:
    """The simulated galaxy catalog and alert skies: one sky per replicate seed, or one for all."""
    from alertlib.sky.simulate import alert_sky_from_profile, sky_from_profile

    sky = sky_from_profile(profile, progress=progress_bar)
    catalog = Path(sky["galaxies"]) / "catalog.parquet"
    if not profile["simulate"].get("sky_per_seed"):
        return catalog, {-1: Path(sky["alerts"])}
    base = int(profile["simulate"].get("seed", profile.get("seed", 0)))
    skies = {}
    for seed in replicate_seeds(profile):
        replicate = {**profile, "simulate": {**profile["simulate"], "seed": base + seed}}
        skies[seed] = Path(alert_sky_from_profile(replicate, progress=progress_bar))
    return catalog, skies


def prepare_data(profile: dict, progress_bar: bool = True) -> StudyData:
    """The data of a profile (notebook 00): real data its ``data:`` block names, else the simulated sky.

    The simulated sky is generated once and cached under ``data/sim/`` (:mod:`alertlib.sky.simulate`);
    the choice is written to the ``data`` artefact for the later notebooks.
    """
    paths = _real_paths(profile)
    alerts = {-1: paths["alerts"]} if "alerts" in paths else None
    catalog = paths.get("galaxy_catalog")
    if alerts is None or catalog is None:
        simulated_catalog, simulated_alerts = _simulated_skies(profile, progress_bar)
        catalog = catalog or simulated_catalog
        alerts = alerts or simulated_alerts
    content = {"galaxy_catalog": _content_of(catalog.parent if catalog.is_file() else catalog)}
    content |= {f"alerts_{seed}": _content_of(path) for seed, path in sorted(alerts.items())}
    data = StudyData(catalog, alerts, content)
    path = artefacts.artefact_path(profile, "data")
    write_json(path, data.to_json())
    artefacts.record_inputs(path, _data_inputs(profile))
    return data


def load_data(profile: dict) -> StudyData:
    """The ``data`` artefact of notebook 00."""
    path = artefacts.require(profile, "data", _data_inputs(profile))
    return StudyData.from_json(json.loads(path.read_text()))


# --- 01: pre-training ---------------------------------------------------------------------------------


def _pretrain_inputs(profile: dict, data: StudyData) -> dict:
    return {"pretrain": profile["pretrain"], "seed": profile.get("seed", 0), "data": data.key()}


def pretrain(profile: dict, progress_bar: bool = True) -> pd.DataFrame:
    """Every pre-training run of the profile (notebook 01); finished runs are read back.

    Real Galaxy Zoo 1 pre-training is included when the profile's corpora list ``gz1`` and the real
    sample is present. Writes the ``pretrain`` artefact: every run's results and curves.
    """
    from alertlib.report.tables import load_per_run_tables

    data = load_data(profile)
    gz1 = real_data_path("galaxy_zoo_1_sample") if "gz1" in profile["pretrain"]["corpora"] else None
    jobs = grid.pretrain_jobs(profile, data.galaxy_catalog, gz1)
    results = grid.run_jobs("pretrain", jobs, artefacts.results_dir(profile), progress_bar=progress_bar)
    curves = _collect(results, "curves.csv", load_per_run_tables)
    _write(profile, {"pretrain_curves": curves, "pretrain": results}, _pretrain_inputs(profile, data))
    return results


def load_pretrain(profile: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``pretrain`` artefact of notebook 01: (results, curves)."""
    inputs = _pretrain_inputs(profile, load_data(profile))
    results = pd.read_parquet(artefacts.require(profile, "pretrain", inputs))
    curves = pd.read_parquet(artefacts.artefact_path(profile, "pretrain_curves"))
    return results, curves


# --- 02: fine-tuning -------------------------------------------------------------------------------------


def _finetune_inputs(profile: dict, data: StudyData, pretrain_results: pd.DataFrame) -> dict:
    return {
        "finetune": profile["finetune"],
        "data": data.key(),
        "pretrain_runs": sorted(pretrain_results["run_id"].unique()) if len(pretrain_results) else [],
    }


def _finetune_grid(profile: dict, data: StudyData, checkpoints: dict, progress_bar: bool):
    """Run the learning-rate sweep (if any), then every run of the grid at the chosen rates."""
    jobs, notes = grid.finetune_jobs(profile, data.alerts_for, checkpoints)
    root = artefacts.results_dir(profile)
    sweep = grid.sweep_jobs(profile, jobs)
    choice = pd.DataFrame(columns=["arch", "init", "learning_rate", "best_val_loss", "passed", "chosen", "run_id"])
    tables = []
    if sweep:
        swept = grid.run_jobs("finetune", sweep, root, progress_bar=progress_bar)
        choice = grid.choose_rates(swept)
        jobs = grid.apply_rates(jobs, choice)
        tables.append(swept)
    main = grid.run_jobs("finetune", jobs, root, progress_bar=progress_bar)
    results = pd.concat([*tables, main], ignore_index=True).drop_duplicates(["run_id", "metric"])
    results["lr_selected"] = results["run_id"].isin(set(main["run_id"]))
    return results.reset_index(drop=True), notes, choice


def finetune(profile: dict, progress_bar: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """Every fine-tuning run of the profile (notebook 02), with notes on the runs left out.

    Reads the encoders of notebook 01. With a ``finetune.lr_sweep`` block, each (arch, init) is
    first trained at every candidate learning rate on the first seed, the rate with the lowest
    validation loss is kept (:func:`alertlib.study.grid.choose_rates`), and the other seeds run at it;
    sweep runs that were not chosen stay in the table with ``lr_selected`` False. Writes the
    ``finetune`` artefact: results, test predictions and curves of every run, the rate choice and the notes.
    """
    from alertlib.report.tables import load_per_run_tables

    data = load_data(profile)
    pretrain_results, _ = load_pretrain(profile)
    checkpoints = grid.checkpoints_of(pretrain_results)
    results, notes, choice = _finetune_grid(profile, data, checkpoints, progress_bar)
    tables = {
        "calibration": calibrate_finetuned(results, data),
        "predictions": _collect(results, "predictions_test.parquet", load_per_run_tables),
        "finetune_curves": _collect(results, "curves.csv", load_per_run_tables),
        "lr_choice": choice,
        "finetune": results,
    }
    write_json(artefacts.artefact_path(profile, "finetune_notes"), notes)
    save_best_models(profile, results)
    _write(profile, tables, _finetune_inputs(profile, data, pretrain_results))
    return results, notes


def calibrate_finetuned(results: pd.DataFrame, data: StudyData) -> pd.DataFrame:
    """The temperature of every fine-tuning run, fitted on its replicate's validation split where its
    ``model.pt`` has none (:func:`alertlib.learn.calibration.calibrate_run`; runs done are read back).

    One row per run: its descriptors, ``T`` (``value``, ``status``, ``reason``) and the ECE and NLL
    before and after scaling on the validation and test splits.
    """
    from alertlib.learn.calibrate import calibrate_run

    descriptors = ("run_id", "task", "arch", "init", "seed", "train_fraction", "lr_selected", "run_dir")
    rows = []
    for _, run in results.drop_duplicates("run_id").iterrows():
        record = calibrate_run(run["run_dir"], data.alerts_for(run["seed"]))
        rows.append({key: run[key] for key in descriptors if key in run} | record)
    return pd.DataFrame(rows)


def best_model_path(profile: dict, task: str, arch: str, init: str) -> Path:
    """Where :func:`save_best_models` keeps the best model of (task, arch, init)."""
    return artefacts.results_dir(profile) / "checkpoints" / f"{task}_{arch}_{init}.pt"


def save_best_models(profile: dict, results: pd.DataFrame) -> pd.DataFrame:
    """Copy the best model of each (task, arch, init) to ``checkpoints/<task>_<arch>_<init>.pt``, for
    ``alertlib score --checkpoint``: among the runs on all training sources at the chosen learning
    rate that passed the validation gate, the one with the lowest validation loss (never the test)."""
    import shutil

    wide = results.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    runs = results.drop_duplicates("run_id").set_index("run_id").join(wide[["best_val_loss"]])
    if "gate_passed" in wide:
        runs = runs[wide["gate_passed"].reindex(runs.index).fillna(0) > 0]
    if "lr_selected" in runs:
        runs = runs[runs["lr_selected"].astype(bool)]
    runs = runs[runs["train_fraction"] == 1.0]
    best = runs.sort_values("best_val_loss").groupby(["task", "arch", "init"], sort=True).head(1)
    for _, run in best.iterrows():
        path = best_model_path(profile, run["task"], run["arch"], run["init"])
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(run["run_dir"]) / "model.pt", path)
    return best.reset_index()


def load_finetune(profile: dict) -> tuple[pd.DataFrame, list[str]]:
    """The ``finetune`` artefact of notebook 02: (results, notes on runs left out)."""
    pretrain_results, _ = load_pretrain(profile)
    inputs = _finetune_inputs(profile, load_data(profile), pretrain_results)
    results = pd.read_parquet(artefacts.require(profile, "finetune", inputs))
    notes = json.loads(artefacts.artefact_path(profile, "finetune_notes").read_text())
    return results, notes


def load_finetune_tables(profile: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Test predictions, training curves and the learning-rate choice of the fine-tuning runs (the
    ``finetune`` artefact)."""
    load_finetune(profile)  # checks that the artefact is there and current
    return (
        pd.read_parquet(artefacts.artefact_path(profile, "predictions")),
        pd.read_parquet(artefacts.artefact_path(profile, "finetune_curves")),
        pd.read_parquet(artefacts.artefact_path(profile, "lr_choice")),
    )


def load_calibration(profile: dict) -> pd.DataFrame:
    """Each fine-tuning run's temperature and calibration error (:func:`calibrate_finetuned`, written by 02)."""
    load_finetune(profile)  # checks that the artefact is there and current
    path = artefacts.artefact_path(profile, "calibration")
    if not path.is_file():
        raise artefacts.MissingArtefact(
            f"{path} does not exist: run notebooks/02_finetune.ipynb with profile {profile['profile']!r} first "
            f"(it reads finished runs back and calibrates them; or `alertlib study --profile {profile['profile']}`)"
        )
    return pd.read_parquet(path)


def _collect(results: pd.DataFrame, filename: str, reader) -> pd.DataFrame:
    """One table of a per-run file (``curves.csv``, ``predictions_test.parquet``) over the runs of ``results``."""
    if results.empty:
        return pd.DataFrame()
    frames = [reader(run_dir, filename) for run_dir in results["run_dir"].unique()]
    table = pd.concat(frames, ignore_index=True)
    if "lr_selected" in results.columns:
        selected = set(results.loc[results["lr_selected"], "run_id"])
        table["lr_selected"] = table["run_id"].isin(selected)
    return table


def _write(profile: dict, tables: dict[str, pd.DataFrame], inputs: dict) -> None:
    """Write a step's tables (the main one last) and then its inputs record."""
    for name, table in tables.items():
        write_table(artefacts.artefact_path(profile, name), table)
    artefacts.record_inputs(artefacts.artefact_path(profile, list(tables)[-1]), inputs)


# --- 03: the efficiency benchmark ----------------------------------------------------------------------


def _benchmark_inputs(settings) -> dict:
    import dataclasses

    from alertlib.core.provenance import machine_stamp

    stamp = machine_stamp()
    machine = {k: stamp[k] for k in ("cpu_model", "cpu_threads", "gpu_name", "torch_version", "timm_version")}
    return {"settings": dataclasses.asdict(settings), "machine": machine}


def benchmark(profile: dict) -> pd.DataFrame:
    """The profile's efficiency benchmark (notebook 03), read back when already measured here with
    the same settings; written to ``benchmark_<device>.csv``."""
    from alertlib.bench.runner import BenchmarkSettings, run_benchmark

    settings = BenchmarkSettings.from_profile(profile)
    path = artefacts.benchmark_path(profile, settings.device)
    inputs = _benchmark_inputs(settings)
    if artefacts.is_current(path, inputs):
        return pd.read_csv(path)
    table = run_benchmark(settings, out=path)
    artefacts.record_inputs(path, inputs)
    return table


def load_benchmarks(profile: dict) -> pd.DataFrame | None:
    """Every benchmark table of the profile (one per device measured), or None when 03 has not run."""
    from alertlib.bench.tables import load_benchmark_tables

    paths = sorted(artefacts.results_dir(profile).glob("benchmark_*.csv"))
    return load_benchmark_tables(paths) if paths else None


# --- 04: zero-shot embeddings (inference only) ------------------------------------------------------


def zero_shot_embeddings(profile: dict, arch: str, n_alerts: int = 1000) -> tuple[dict, pd.DataFrame]:
    """Encoder features of test alerts before any fine-tuning, one array per initialisation of ``arch``.

    Uses the encoders of notebook 01 (``scratch`` is a freshly initialised one); trains nothing.
    Returns the features by init and the candidate rows of the alerts embedded (the first
    ``n_alerts`` of the test split).
    """
    import torch
    from lightning.pytorch import seed_everything

    from alertlib.io.release import read_split
    from alertlib.learn.datasets import TripletDataset
    from alertlib.learn.models import create_model

    data = load_data(profile)
    pretrain_results, _ = load_pretrain(profile)
    checkpoints = grid.checkpoints_of(pretrain_results) if len(pretrain_results) else {}
    test = read_split(data.alerts_for(data.example_seed), "test")
    count = min(n_alerts, len(test))
    crop = profile["finetune"].get("crop")
    dataset = TripletDataset(test.triplets[:count], crop=crop)
    images = torch.stack([dataset[i][0] for i in range(count)])
    inits = {"scratch": None} | {init: path for (a, init), path in checkpoints.items() if a == arch}
    embeddings = {}
    for init, checkpoint in inits.items():
        seed_everything(profile.get("seed", 0), verbose=False)
        model = create_model(arch, init, input_size=crop, checkpoint=checkpoint).eval()
        with torch.no_grad():
            embeddings[init] = torch.cat([model.embed(batch) for batch in images.split(256)]).numpy()
    return embeddings, test.candidates.iloc[:count].reset_index(drop=True)


# --- 04: realism of the simulated sky against each real set --------------------------------------------


def _files_key(folders: list[Path]) -> str:
    """The identity of real packet folders: every file's name and size."""
    files = sorted((str(p), p.stat().st_size) for folder in folders for p in folder.rglob("*") if p.is_file())
    return artefacts.inputs_key({"files": files})


def realism_by_set(profile: dict) -> pd.DataFrame | None:
    """The statistics critic of the simulated sky against each real ZTF set of the shared data
    (:func:`alertlib.sky.realism.realism_by_set`), read back when done with the same settings and
    data; None without the shared data."""
    from alertlib.core.paths import shared_data_dir
    from alertlib.sky.realism import PACKET_SETS
    from alertlib.sky.realism import realism_by_set as measure
    from alertlib.sky.simulate import SIMULATOR_VERSION

    root = shared_data_dir()
    if root is None:
        return None
    settings = profile["realism"].get("by_set", {})
    folders = [root / f for packet_set in PACKET_SETS.values() for f in packet_set.folders if (root / f).exists()]
    path = artefacts.artefact_path(profile, "realism_by_set")
    inputs = {
        "settings": settings,
        "seed": profile.get("seed", 0),
        "simulator": SIMULATOR_VERSION,
        "packets": _files_key(folders),
    }
    if artefacts.is_current(path, inputs):
        return pd.read_parquet(path)
    table = measure(seed=profile.get("seed", 0), **settings)
    write_table(path, table)
    artefacts.record_inputs(path, inputs)
    return table


# --- 05: where the reference model looks (inference only) ----------------------------------------------


def explain_reference_model(profile: dict) -> dict:
    """Integrated-gradients attributions of the best model of the profile's ``attribution`` block
    (task, arch, init: the BTS custom CNN from scratch by default) on a few correctly and wrongly
    classified alerts of each class: the simulated test split of its replicate, and the real
    weak-labelled alerts of notebook 04 (when the shared data is there).

    Returns ``{"simulated": Explanations, "real": Explanations}`` (:mod:`alertlib.learn.attribution`);
    trains nothing.
    """
    from alertlib.core.vocab import REFERENCE_ARCH
    from alertlib.io.release import read_split
    from alertlib.learn.attribution import explain_alerts
    from alertlib.learn.inference import load_model
    from alertlib.study.realdata import real_alerts

    settings = {"task": "bts", "arch": REFERENCE_ARCH, "init": "scratch", **profile.get("attribution", {})}
    path = best_model_path(profile, settings.pop("task"), settings.pop("arch"), settings.pop("init"))
    if not path.is_file():
        raise artefacts.MissingArtefact(f"{path} does not exist: run notebooks/02_finetune.ipynb first")
    model = load_model(path)
    options = {**settings, "seed": profile.get("seed", 0)}
    test = read_split(load_data(profile).alerts_for(model.config["seed"]), "test")
    explained = {"simulated": explain_alerts(model, test.triplets, test.candidates, **options)}
    real = real_alerts()
    if real is not None:
        explained["real"] = explain_alerts(model, real.triplets, real.candidates, **options)
    return explained


# --- one run by hand (the notebooks' teaching cells) ----------------------------------------------------


def hand_config(profile: dict, data: StudyData, arch: str, init: str, checkpoints: dict, seed: int, **settings) -> dict:
    """The full config of one fine-tune outside the grid, with the profile's settings (crop, budget)
    and the replicate's data; ``settings`` override them (e.g. ``epochs=1``, ``augment=False``)."""
    from alertlib.learn.finetune import full_config

    block = {k: v for k, v in profile["finetune"].items() if k not in ("grids", "seeds", "lr_sweep")}
    config = {**block, "data": str(data.alerts_for(seed)), "arch": arch, "init": init, "seed": seed, "progress": False}
    if init != "scratch":
        config["checkpoint"] = checkpoints.get((arch, init))
    return full_config({**config, **settings})
