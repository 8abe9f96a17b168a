"""Run the study: execute the numbered notebooks in order with papermill, for one profile.

Profiles (``alertlib/profiles.yaml``, plus any user file) set the size of everything. The runner
passes the profile's name to each notebook's ``parameters`` cell; the notebooks read the rest of the
profile themselves, so the settings have one source. Executed copies are written atomically to
``runs/<profile>/``. A study that is stopped and restarted loses no finished work: each notebook skips
the runs whose results already exist.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd
import yaml

from .paths import PACKAGE_DIR, REPO_ROOT

PROFILES_FILE = PACKAGE_DIR / "profiles.yaml"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "alertlib"


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_profiles(extra_file: str | os.PathLike | None = None) -> dict[str, dict]:
    """All profiles: the package's, then those of ``extra_file`` or ``$ALERTLIB_PROFILES`` (which win)."""
    profiles = yaml.safe_load(PROFILES_FILE.read_text())
    extra = extra_file or os.environ.get("ALERTLIB_PROFILES")
    if extra:
        path = Path(extra)
        if not path.is_file():
            raise FileNotFoundError(f"profiles file {path} does not exist (from --profiles-file or $ALERTLIB_PROFILES)")
        profiles.update(yaml.safe_load(path.read_text()) or {})
    return profiles


def load_profile(name: str, extra_file: str | os.PathLike | None = None) -> dict:
    """One profile with its ``inherit`` chain resolved; ``name`` is recorded under ``profile``."""
    profiles = load_profiles(extra_file)
    if name not in profiles:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(sorted(profiles))}")
    chain, current = [], name
    while current is not None:
        if current in chain:
            raise ValueError(f"profile inheritance loops: {' -> '.join([*chain, current])}")
        chain.append(current)
        current = profiles[current].get("inherit")
    resolved: dict = {}
    for link in reversed(chain):
        resolved = _merge(resolved, {k: v for k, v in profiles[link].items() if k != "inherit"})
    resolved["profile"] = name
    return resolved


# --- the grid of runs -------------------------------------------------------------------------------

HUB_INITS = ("imagenet", "galaxyzoo")
PRETRAIN_INIT_OF_CORPUS = {"galaxy": "galaxy_sim", "gz1": "galaxy_gz1", "synthetic": "synthetic"}


def study_dir(profile: dict) -> Path:
    """Where a profile's results, checkpoints and predictions go: ``data/study/<profile>``."""
    from .paths import data_dir

    return data_dir() / "study" / profile["profile"]


def _job_dir(root: Path, config: dict, run_id: str) -> Path:
    """A readable, unique folder for one run: ``<task>_<arch>_<init>_f<fraction>_s<seed>_<run id>``."""
    label = config.get("task") or config.get("corpus")
    init = config.get("pretrain_init") or config.get("init")
    fraction = float(config.get("train_fraction", 1.0))
    return root / f"{label}_{config['arch']}_{init}_f{fraction:g}_s{config['seed']}_{run_id[:8]}"


def pretrain_jobs(profile: dict, galaxy_catalog: str | Path | None, gz1_folder: str | Path | None = None) -> list[dict]:
    """The pre-training runs of a profile: every architecture x corpus in its ``pretrain`` block.

    ``galaxy`` needs the simulated Galaxy Zoo catalog; ``gz1`` needs the real Galaxy Zoo 1 folder and
    is left out (and said so by :func:`run_pretrain_jobs`) when that folder is absent.
    """
    block = dict(profile["pretrain"])
    archs, corpora = block.pop("archs"), block.pop("corpora")
    settings = {k: v for k, v in block.items() if k not in ("gz1",)}
    jobs = []
    for arch in archs:
        for corpus in corpora:
            config = {**settings, "arch": arch, "corpus": corpus, "seed": profile.get("seed", 0)}
            if corpus == "galaxy":
                config["catalog"] = str(galaxy_catalog)
            elif corpus == "gz1":
                if gz1_folder is None:
                    continue
                config.update(catalog=str(gz1_folder), **block.get("gz1", {}))
            jobs.append(config)
    return jobs


def run_jobs(kind: str, configs: list[dict], root: str | Path, progress: bool = True) -> pd.DataFrame:
    """Run pre-training (``kind="pretrain"``) or fine-tuning jobs, skipping those already finished.

    Each job writes into its own folder under ``root/<kind>``; a job whose results exist is read back,
    so a study that was stopped resumes where it stopped, losing no finished run.
    """
    from tqdm.auto import tqdm

    from . import finetune, pretrain

    module = pretrain if kind == "pretrain" else finetune
    run = pretrain.run_pretrain if kind == "pretrain" else finetune.run_finetune
    tables = []
    bar = tqdm(configs, desc=kind, unit="run", disable=not progress)
    for config in bar:
        full = module.full_config(config)
        out_dir = _job_dir(Path(root) / kind, full, finetune.config_run_id(full))
        bar.set_postfix_str(out_dir.name)
        table = run(config, out_dir)
        tables.append(table.assign(run_dir=str(out_dir)))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def checkpoints_of(pretrain_results: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(arch, init) -> encoder checkpoint path, from the table :func:`run_jobs` returned for pre-training."""
    runs = pretrain_results.drop_duplicates("run_dir")
    checkpoints = {}
    for _, row in runs.iterrows():
        config = json.loads(row["config"])
        checkpoints[(row["arch"], config["pretrain_init"])] = str(Path(row["run_dir"]) / "encoder.pt")
    return checkpoints


def finetune_jobs(
    profile: dict, alerts_dir: str | Path, checkpoints: dict[tuple[str, str], str]
) -> tuple[list[dict], list[str]]:
    """The fine-tuning runs of a profile, and notes on the runs left out (with the reason).

    Each grid in the ``finetune.grids`` block is architecture x initialisation x training fraction x
    seed for one task. The classic baselines (``btsbot_cnn``, ``braai_vgg``) are trained from scratch
    only. ``imagenet``/``galaxyzoo`` runs are included only when their weights can be had (a local file,
    the cache, or ``--online``); our own pre-trainings only when :func:`run_jobs` produced a checkpoint.
    """
    from .models import CLASSIC_ARCHS
    from .weights import WeightsNotAvailable, resolve_weights

    block = dict(profile["finetune"])
    grids, seeds = block.pop("grids"), block.pop("seeds")
    jobs, notes = [], []
    for grid_name, grid in grids.items():
        for arch in grid["archs"]:
            for init in grid["inits"]:
                if arch in CLASSIC_ARCHS and init != "scratch":
                    continue
                extra = {}
                if init in HUB_INITS:
                    try:
                        resolve_weights(arch, init)
                    except WeightsNotAvailable as error:
                        notes.append(f"{grid_name}: {arch}/{init} left out: {error}")
                        continue
                elif init != "scratch":
                    if (arch, init) not in checkpoints:
                        notes.append(f"{grid_name}: {arch}/{init} left out: no pre-trained checkpoint in this profile")
                        continue
                    extra["checkpoint"] = checkpoints[(arch, init)]
                for fraction in grid.get("train_fractions", [1.0]):
                    for seed in seeds:
                        jobs.append(
                            {
                                **block,
                                "data": str(alerts_dir),
                                "task": grid["task"],
                                "arch": arch,
                                "init": init,
                                "train_fraction": fraction,
                                "seed": seed,
                                **extra,
                            }
                        )
    return jobs, notes


def notebook_paths(profile: dict) -> list[Path]:
    """The profile's notebooks, in order; each must exist."""
    paths = []
    for stem in profile["notebooks"]:
        path = NOTEBOOKS_DIR / f"{stem}.ipynb"
        if not path.is_file():
            raise FileNotFoundError(f"profile {profile['profile']!r} names notebook {stem}, but {path} does not exist")
        paths.append(path)
    return paths


def run_study(profile_name: str, profiles_file: str | None = None, runs_dir: Path | None = None) -> list[Path]:
    """Execute every notebook of the profile in order; return the executed copies."""
    import papermill as pm
    from tqdm.auto import tqdm

    from .io import atomic_path

    profile = load_profile(profile_name, profiles_file)
    runs_dir = Path(runs_dir or REPO_ROOT / "runs" / profile_name)
    runs_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"profile": profile_name}
    if profiles_file:
        parameters["profiles_file"] = str(Path(profiles_file).resolve())
    executed = []
    bar = tqdm(notebook_paths(profile), desc=f"study[{profile_name}]", unit="notebook")
    for path in bar:
        bar.set_postfix_str(path.stem)
        start = time.perf_counter()
        target = runs_dir / path.name
        with atomic_path(target) as tmp:
            pm.execute_notebook(
                str(path),
                str(tmp),
                parameters=parameters,
                kernel_name=KERNEL_NAME,
                cwd=str(NOTEBOOKS_DIR),
                progress_bar=False,
            )
        executed.append(target)
        tqdm.write(f"{path.stem}: done in {time.perf_counter() - start:.0f} s -> {target}")
    return executed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="default", help="profile name (ci, quick, default, paper, full, or yours)")
    parser.add_argument("--profiles-file", default=None, help="a YAML file with extra profiles")
    parser.add_argument("--runs-dir", default=None, help="where executed notebooks go (default runs/<profile>)")
    parser.add_argument("--list", action="store_true", help="list the profiles and exit")


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name, profile in load_profiles(args.profiles_file).items():
            print(f"{name:10s} {profile.get('description', '')}")
        return 0
    run_study(args.profile, args.profiles_file, Path(args.runs_dir) if args.runs_dir else None)
    return 0
