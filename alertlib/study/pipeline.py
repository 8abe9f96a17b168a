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

import numpy as np
import pandas as pd
import yaml

from alertlib.core.paths import REPO_ROOT

PROFILES_FILE = Path(__file__).resolve().parent / "profiles.yaml"
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


def study_dir(profile: dict) -> Path:
    """Where a profile's results, checkpoints and predictions go: ``data/study/<profile>``."""
    from alertlib.core.paths import data_dir

    return data_dir() / "study" / profile["profile"]


def _job_dir(root: Path, config: dict, run_id: str) -> Path:
    """A readable, unique folder for one run: ``<task>_<arch>_<init>_f<fraction>_s<seed>_<run id>``."""
    label = config.get("task") or config.get("corpus")
    init = config.get("pretrain_init") or config.get("init")
    fraction = float(config.get("train_fraction", 1.0))
    return root / f"{label}_{config['arch']}_{init}_f{fraction:g}_s{config['seed']}_{run_id[:8]}"


def pretrain_jobs(profile: dict, galaxy_catalog: str | Path | None, gz1_folder: str | Path | None = None) -> list[dict]:
    """The pre-training runs of a profile: every architecture x corpus in its ``pretrain`` block.

    The block's settings apply to every run; a sub-block named after a corpus (``galaxy:``, ``gz1:``,
    ``synthetic:``) overrides them for that corpus. ``galaxy`` needs the simulated Galaxy Zoo catalog;
    ``gz1`` needs the real Galaxy Zoo 1 folder and is left out when it is absent.
    """
    block = dict(profile["pretrain"])
    archs, corpora = block.pop("archs"), block.pop("corpora")
    overrides = {corpus: block.pop(corpus, None) or {} for corpus in ("galaxy", "gz1", "synthetic")}
    settings = block
    jobs = []
    for arch in archs:
        for corpus in corpora:
            config = {**settings, **overrides[corpus], "arch": arch, "corpus": corpus, "seed": profile.get("seed", 0)}
            if corpus == "galaxy":
                config["catalog"] = str(galaxy_catalog)
            elif corpus == "gz1":
                if gz1_folder is None:
                    continue
                config["catalog"] = str(gz1_folder)
            jobs.append(config)
    return jobs


def run_jobs(kind: str, configs: list[dict], root: str | Path, progress: bool = True) -> pd.DataFrame:
    """Run pre-training (``kind="pretrain"``) or fine-tuning jobs, skipping those already finished.

    Each job writes into its own folder under ``root/<kind>``; a job whose results exist is read back,
    so a study that was stopped resumes where it stopped, losing no finished run.
    """
    from tqdm.auto import tqdm

    from alertlib.learn import finetune, pretrain

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
    seed for one task (a grid may set its own ``seeds``); any other key of a grid (e.g. ``label_column``) is a fine-tuning setting for
    its runs, overriding the block's. The classic baselines (``btsbot_cnn``, ``braai_vgg``) are trained from scratch
    only. ``imagenet``/``galaxyzoo`` runs are included only when their weights can be had (a local file,
    the cache, or ``--online``); our own pre-trainings only when :func:`run_jobs` produced a checkpoint.
    """
    from alertlib.core.vocab import CLASSIC_ARCHS, HUB_INITS
    from alertlib.learn.weights import WeightsNotAvailable, resolve_weights

    block = dict(profile["finetune"])
    grids, seeds = block.pop("grids"), block.pop("seeds")
    jobs, notes = [], []
    grid_keys = ("task", "archs", "inits", "train_fractions", "seeds")
    for grid_name, grid in grids.items():
        settings = {**block, **{k: v for k, v in grid.items() if k not in grid_keys}}
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
                    for seed in grid.get("seeds", seeds):
                        jobs.append(
                            {
                                **settings,
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


def study_data(profile: dict, progress: bool = True) -> dict[str, Path]:
    """The data a profile studies: ``{"galaxy_catalog": ..., "alerts": ...}``.

    A profile's ``data:`` block may name a real galaxy-datasets catalog (``galaxy_catalog``) and a
    folder in the BTS release layout (``alerts``), relative to the repository or absolute; what it
    does not name comes from the embedded simulated sky (:func:`alertlib.sky.simulate.sky_from_profile`).
    """
    real = profile.get("data") or {}
    resolved = {}
    for key in ("galaxy_catalog", "alerts"):
        if real.get(key):
            path = Path(os.path.expandvars(str(real[key])))
            path = path if path.is_absolute() else REPO_ROOT / path
            if not path.exists():
                raise FileNotFoundError(
                    f"profile {profile['profile']!r} studies real data at {path} ({key}), which does not exist. "
                    f"Put the files there (alerts: the BTS release layout from Zenodo 10.5281/zenodo.10839690; "
                    f"galaxy_catalog: a galaxy-datasets catalog of vote counts) or edit the profile's data: block."
                )
            resolved[key] = path
    if len(resolved) < 2:
        from alertlib.sky.simulate import sky_from_profile

        sky = sky_from_profile(profile, progress=progress)
        resolved.setdefault("galaxy_catalog", Path(sky["galaxies"]) / "catalog.parquet")
        resolved.setdefault("alerts", Path(sky["alerts"]))
    return resolved


def pretrain_stage(profile: dict, sky: dict[str, Path], progress: bool = True) -> pd.DataFrame:
    """Every pre-training run of the profile (finished ones are read back): the 01 notebook's work.

    ``sky`` is :func:`study_data`'s result. Real Galaxy Zoo 1 pre-training is added when the
    profile's corpora include ``gz1`` and the real sample is present.
    """
    from alertlib.core.paths import real_data_path

    gz1 = real_data_path("galaxy_zoo_1_sample") if "gz1" in profile["pretrain"]["corpora"] else None
    jobs = pretrain_jobs(profile, sky["galaxy_catalog"], gz1)
    return run_jobs("pretrain", jobs, study_dir(profile), progress=progress)


def finetune_stage(profile: dict, sky: dict[str, Path], progress: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """Every fine-tuning run of the profile, with notes on the runs left out: the 02 notebook's work.

    Pre-training runs it needs are read back from :func:`pretrain_stage` (and run if missing).
    """
    checkpoints = checkpoints_of(pretrain_stage(profile, sky, progress=progress))
    jobs, notes = finetune_jobs(profile, sky["alerts"], checkpoints)
    return run_jobs("finetune", jobs, study_dir(profile), progress=progress), notes


def pretrain_summary(pretrain_results: pd.DataFrame) -> pd.DataFrame:
    """One row per pre-training run: architecture, corpus, the init it stands for, and its metrics."""
    table = pretrain_results.copy()
    table["corpus"] = table["config"].map(lambda c: json.loads(c)["corpus"])
    table["pretrain_init"] = table["config"].map(lambda c: json.loads(c)["pretrain_init"])
    return table.pivot_table(
        index=["arch", "corpus", "pretrain_init", "data_version"], columns="metric", values="value"
    )


def zero_shot_embeddings(
    profile: dict, sky: dict[str, Path], checkpoints: dict[tuple[str, str], str], arch: str, n_alerts: int = 1000
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Encoder features of test alerts before any fine-tuning, one array per initialisation of ``arch``.

    Returns the features by init (``scratch`` and every pre-training of ``arch`` in ``checkpoints``)
    and the candidate rows of the alerts embedded (the first ``n_alerts`` of the test split).
    """
    import torch

    from alertlib.core.provenance import seed_everything
    from alertlib.io.release import read_split
    from alertlib.learn.datasets import TripletDataset
    from alertlib.learn.models import create_model

    test = read_split(sky["alerts"], "test")
    count = min(n_alerts, len(test))
    crop = profile["finetune"].get("crop")
    dataset = TripletDataset(test.triplets[:count], crop=crop)
    images = torch.stack([dataset[i][0] for i in range(count)])
    inits = {"scratch": None} | {init: path for (a, init), path in checkpoints.items() if a == arch}
    embeddings = {}
    for init, checkpoint in inits.items():
        seed_everything(profile.get("seed", 0))
        model = create_model(arch, init, input_size=crop, checkpoint=checkpoint).eval()
        with torch.no_grad():
            embeddings[init] = torch.cat([model.embed(batch) for batch in images.split(256)]).numpy()
    return embeddings, test.candidates.iloc[:count].reset_index(drop=True)


def figures_out(profile: dict) -> Path:
    """Where a profile's figures go: ``figures/<profile>`` (the README shows ``figures/default``)."""
    from alertlib.core.paths import figures_dir

    return figures_dir() / profile["profile"]


def of_runs(table: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """The rows of a per-run table (predictions, curves) that belong to the runs in ``results``.

    A profile's folder can hold runs of earlier settings of the same profile; figures and statistics
    use only the runs of the current grid.
    """
    return table[table["run_id"].isin(set(results["run_id"]))]


def _real_datasets(release: Path, example: Path | None) -> list[tuple[str, np.ndarray, pd.DataFrame]]:
    """The real labelled triplets to score: every split of a release-layout folder, and BTSbot's example."""
    from alertlib.core.vocab import SPLITS
    from alertlib.io.release import read_split

    sets = []
    for split in SPLITS:
        data = read_split(release, split)
        sets.append((f"{release.name}/{split}", np.asarray(data.triplets), data.candidates))
    triplets_file = example / "btsbot-example_usage_triplets.npy" if example else None
    if triplets_file is not None and triplets_file.is_file():
        candidates = pd.read_csv(example / "btsbot-example_usage_candidates.csv")
        sets.append(("btsbot-example", np.load(triplets_file), candidates))
    return sets


def score_real_alerts(results: pd.DataFrame, release: str | Path, example: str | Path | None = None) -> pd.DataFrame:
    """Score real labelled BTS triplets with the fine-tuned BTS models in ``results`` (all sources, first seed).

    ``results`` is :func:`finetune_stage`'s table. Returns one row per (alert, model): dataset,
    objectId, candid, label, arch, init, score, ``inference`` (device/format/variant used,
    :func:`alertlib.learn.finetune.score_triplets`), and ``btsbot_score`` (the authors' production model)
    where the data carry it.
    """
    from alertlib.learn.inference import load_model, score_triplets

    runs = results.drop_duplicates("run_id")
    runs = runs[(runs["task"] == "bts") & (runs["train_fraction"] == 1.0)]
    runs = runs[runs["seed"] == runs["seed"].min()]
    datasets = _real_datasets(Path(release), Path(example) if example else None)
    rows = []
    for _, run in runs.iterrows():
        model = load_model(Path(run["run_dir"]) / "model.pt")
        for name, triplets, candidates in datasets:
            frame = candidates[["objectId", "candid", "label"]].copy()
            frame["btsbot_score"] = candidates["expected_scores"] if "expected_scores" in candidates else np.nan
            scores, choice = score_triplets(model, triplets, return_choice=True)
            rows.append(
                frame.assign(
                    dataset=name,
                    arch=run["arch"],
                    init=run["init"],
                    score=scores,
                    inference=f"{choice['device']}/{choice['dtype']}/{choice['variant']}",
                )
            )
    return pd.concat(rows, ignore_index=True)


def real_score_summary(scored: pd.DataFrame) -> pd.DataFrame:
    """Per model: alerts scored, mean score of real BTS trues and of the rest, ROC AUC, and agreement
    (Spearman) with the authors' production scores where present."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    rows = []
    for (arch, init), group in scored.groupby(["arch", "init"], sort=False):
        with_btsbot = group.dropna(subset=["btsbot_score"])
        rows.append(
            {
                "arch": arch,
                "init": init,
                "n_alerts": len(group),
                "mean_score_label1": group.loc[group["label"] == 1, "score"].mean(),
                "mean_score_label0": group.loc[group["label"] == 0, "score"].mean(),
                "roc_auc": roc_auc_score(group["label"], group["score"]) if group["label"].nunique() == 2 else np.nan,
                "spearman_vs_btsbot": spearmanr(with_btsbot["score"], with_btsbot["btsbot_score"]).statistic
                if len(with_btsbot) > 2
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def real_examples_for_figure(release: str | Path, scored: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The release sample's triplets, labels, and each alert's mean score over the models that scored it."""
    sets = _real_datasets(Path(release), None)
    triplets = np.concatenate([t for _, t, _ in sets])
    candidates = pd.concat([c for _, _, c in sets], ignore_index=True)
    mean_scores = scored.groupby("candid")["score"].mean()
    return triplets, candidates["label"].to_numpy(), candidates["candid"].map(mean_scores).to_numpy()


def readme_headline(profile: dict, headline: pd.DataFrame, figures_folder: Path) -> str:
    """The README's headline section: the generated verdicts, the headline table and the main figure."""
    from alertlib.core.provenance import code_version
    from alertlib.report.claims import HEADLINE_SUMMARY_COLUMNS, verdicts

    table = headline[list(HEADLINE_SUMMARY_COLUMNS)].round(4)
    figure = Path(figures_folder) / "metric_by_arch_init.png"
    relative = figure.relative_to(REPO_ROOT) if figure.is_relative_to(REPO_ROOT) else figure
    lines = [
        f"Latest `{profile['profile']}` run (code {code_version()}); generated by `notebooks/04_figures.ipynb`.",
        "",
        f"![metric by architecture and initialisation]({relative.as_posix()})",
        "",
        *[f"- {sentence}" for sentence in verdicts(headline)],
        "",
        markdown_table(table),
    ]
    return "\n".join(lines)


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table of ``frame`` (no index), for Markdown files."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = [
        "| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


README_START = "<!-- headline:start (written by notebooks/04_figures.ipynb; do not edit by hand) -->"
README_END = "<!-- headline:end -->"


def update_readme(section: str, readme: Path | None = None) -> bool:
    """Replace the generated headline section of the README (between its two markers).

    Returns False, changing nothing, when the README has no markers.
    """
    from alertlib.core.files import atomic_path

    readme = Path(readme or REPO_ROOT / "README.md")
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    before, rest = text.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    with atomic_path(readme) as tmp:
        tmp.write_text(f"{before}{README_START}\n{section.strip()}\n{README_END}{after}")
    return True


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

    from alertlib.core.files import atomic_path

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
