"""The grid of a study: which pre-training and fine-tuning runs a profile asks for, and running them.

Each run is a job (a plain config dict for :func:`alertlib.learn.pretrain.run_pretrain` or
:func:`alertlib.learn.finetune.run_finetune`) that writes into its own folder. A job whose results
exist there (same run id, a hash of its config and data) is read back instead of run again, so a
study that was stopped resumes where it stopped, losing no finished run.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from alertlib.core import progress
from alertlib.core.vocab import CLASSIC_ARCHS, HUB_INITS, base_arch, multimodal_mode

PRETRAIN_CORPORA = ("galaxy", "gz1", "synthetic")


def job_dir(root: Path, config: dict, run_id: str) -> Path:
    """A readable, unique folder for one run: ``<task>_<arch>_<init>_f<fraction>_s<seed>_<run id>``."""
    label = config.get("task") or config.get("corpus")
    init = config.get("pretrain_init") or config.get("init")
    fraction = float(config.get("train_fraction", 1.0))
    return root / f"{label}_{config['arch']}_{init}_f{fraction:g}_s{config['seed']}_{run_id[:8]}"


def job_label(config: dict) -> str:
    """A short description of a job for progress lines: ``resnet18/galaxy_sim bts f1 s0``."""
    if "corpus" in config:
        return f"{config['arch']}/{config['corpus']} pre-training"
    fraction = float(config.get("train_fraction", 1.0))
    return f"{config['arch']}/{config['init']} {config.get('task', 'bts')} f{fraction:g} s{config['seed']}"


def pretrain_jobs(profile: dict, galaxy_catalog: str | Path | None, gz1_folder: str | Path | None = None) -> list[dict]:
    """The pre-training runs of a profile: every architecture x corpus in its ``pretrain`` block.

    The block's settings apply to every run; a sub-block named after a corpus (``galaxy:``, ``gz1:``,
    ``synthetic:``) overrides them for that corpus. ``galaxy`` needs the Galaxy Zoo-like vote
    catalog; ``gz1`` needs the real Galaxy Zoo 1 folder and is left out when it is absent.
    """
    block = dict(profile["pretrain"])
    archs, corpora = block.pop("archs"), block.pop("corpora")
    overrides = {corpus: block.pop(corpus, None) or {} for corpus in PRETRAIN_CORPORA}
    jobs = []
    for arch in archs:
        for corpus in corpora:
            config = {**block, **overrides[corpus], "arch": arch, "corpus": corpus, "seed": profile.get("seed", 0)}
            if corpus == "galaxy":
                config["catalog"] = str(galaxy_catalog)
            elif corpus == "gz1":
                if gz1_folder is None:
                    continue
                config["catalog"] = str(gz1_folder)
            jobs.append(config)
    return jobs


def _init_weights(grid_name: str, arch: str, init: str, checkpoints: dict) -> tuple[dict | None, str | None]:
    """The extra config a (arch, init) run needs, or None and the reason it is left out."""
    from alertlib.learn.weights import WeightsNotAvailable, resolve_weights

    if multimodal_mode(arch) == "meta-frozen" and init == "scratch":
        return None, f"{grid_name}: {arch}/{init} left out: a frozen image encoder needs a pre-trained one"
    arch = base_arch(arch)  # an image + metadata model starts from its image model's weights
    if init == "scratch":
        return {}, None
    if init in HUB_INITS:
        try:
            resolve_weights(arch, init)
        except WeightsNotAvailable as error:
            return None, f"{grid_name}: {arch}/{init} left out: {error}"
        return {}, None
    if (arch, init) not in checkpoints:
        return None, f"{grid_name}: {arch}/{init} left out: no pre-trained checkpoint in this profile"
    return {"checkpoint": checkpoints[(arch, init)]}, None


def finetune_jobs(profile: dict, alerts_for, checkpoints: dict[tuple[str, str], str]) -> tuple[list[dict], list[str]]:
    """The fine-tuning runs of a profile, and notes on the runs left out (with the reason).

    Each grid in the ``finetune.grids`` block is architecture x initialisation x training fraction x
    seed for one task (a grid may set its own ``seeds``); ``alerts_for(seed)`` gives the alert folder
    of each seed (a replicate's own sky, or one folder for all). Any other key of a grid (e.g.
    ``label_column``) is a fine-tuning setting for its runs, overriding the block's. The classic
    baselines (:data:`alertlib.core.vocab.CLASSIC_ARCHS`) are trained from scratch only. Published
    weights (``imagenet``, ``galaxyzoo``) are used only when they can be had (a local file, the
    cache, or ``--online``); our own pre-trainings only when ``checkpoints`` has them.
    """
    block = dict(profile["finetune"])
    grids, seeds = block.pop("grids"), block.pop("seeds")
    block.pop("lr_sweep", None)  # the sweep's settings, not a run's (sweep_jobs reads them)
    jobs, notes = [], []
    grid_keys = ("task", "archs", "inits", "train_fractions", "seeds")
    for grid_name, grid in grids.items():
        if grid is None:  # a profile switches off an inherited grid with `name: null`
            continue
        settings = {**block, **{k: v for k, v in grid.items() if k not in grid_keys}}
        for arch in grid["archs"]:
            for init in grid["inits"]:
                if base_arch(arch) in CLASSIC_ARCHS and init != "scratch":
                    continue
                extra, note = _init_weights(grid_name, arch, init, checkpoints)
                if extra is None:
                    notes.append(note)
                    continue
                for fraction in grid.get("train_fractions", [1.0]):
                    for seed in grid.get("seeds", seeds):
                        jobs.append(
                            {
                                **settings,
                                "data": str(alerts_for(seed)),
                                "task": grid["task"],
                                "arch": arch,
                                "init": init,
                                "train_fraction": fraction,
                                "seed": seed,
                                **extra,
                            }
                        )
    return jobs, notes


def _rates_for(init: str, rates: dict) -> list[float]:
    return list(rates["scratch"] if init == "scratch" else rates["pretrained"])


def sweep_jobs(profile: dict, jobs: list[dict]) -> list[dict]:
    """The learning-rate sweep of a profile (its ``finetune.lr_sweep`` block), or none.

    For each (architecture, initialisation) of the sweep's grid task and training fraction 1, the
    first seed's run is repeated at every candidate rate (``scratch:`` rates for models trained from
    scratch, ``pretrained:`` rates for the others). Runs that set ``lr`` themselves are not swept.
    :func:`choose_rates` then picks each pair's rate on the validation split.
    """
    sweep = profile["finetune"].get("lr_sweep")
    if not sweep:
        return []
    task = sweep.get("task", "bts")
    candidates = [j for j in jobs if j["task"] == task and float(j["train_fraction"]) == 1.0 and j.get("lr") is None]
    if not candidates:
        return []
    first_seed = min(j["seed"] for j in candidates)
    swept, seen = [], set()
    for job in candidates:
        key = (job["arch"], job["init"])
        if job["seed"] != first_seed or key in seen:
            continue
        seen.add(key)
        swept += [{**job, "lr": float(rate)} for rate in _rates_for(job["init"], sweep)]
    return swept


def choose_rates(sweep_results: pd.DataFrame) -> pd.DataFrame:
    """The learning rate of each (arch, init): the lowest best validation loss among the sweep's runs
    that passed the validation gate (among all of them when none did). One row per swept rate, with
    ``chosen`` marking the pick; the choice never looks at the test split."""
    wide = sweep_results.pivot_table(
        index=["arch", "init", "run_id"], columns="metric", values="value", aggfunc="first"
    ).reset_index()
    wide["passed"] = wide.get("gate_passed", pd.Series(1.0, index=wide.index)).fillna(0) > 0
    rows = []
    for (_, _), group in wide.groupby(["arch", "init"], sort=False):
        pool = group[group["passed"]] if group["passed"].any() else group
        best = pool["best_val_loss"].idxmin()
        rows.append(group.assign(chosen=group.index == best))
    columns = ["arch", "init", "learning_rate", "best_val_loss", "passed", "chosen", "run_id"]
    return pd.concat(rows)[columns].sort_values(["arch", "init", "learning_rate"]).reset_index(drop=True)


def apply_rates(jobs: list[dict], choice: pd.DataFrame) -> list[dict]:
    """Jobs with the chosen learning rate of their (arch, init) (those that set no ``lr`` themselves)."""
    chosen = choice[choice["chosen"]].set_index(["arch", "init"])["learning_rate"].to_dict()
    return [
        {**job, "lr": float(chosen[(job["arch"], job["init"])])}
        if job.get("lr") is None and (job["arch"], job["init"]) in chosen
        else job
        for job in jobs
    ]


def run_jobs(
    kind: str, configs: list[dict], root: str | Path, progress_bar: bool = True, executor=None
) -> pd.DataFrame:
    """Run pre-training (``kind="pretrain"``) or fine-tuning (``"finetune"``) jobs, skipping finished ones.

    Each job writes into its own folder under ``root/<kind>``; the returned table is every job's
    results with its ``run_dir``, in the order of ``configs``. Progress (job k of n, each epoch, the
    time left estimated from the jobs run so far) goes to the notebook's bar and to the study
    runner's terminal (:mod:`alertlib.core.progress`).

    ``executor`` (a name or :class:`alertlib.study.executors.ExecutorSettings`; default
    ``$ALERTLIB_EXECUTOR``, else ``local``) says where the jobs run: ``local`` runs them here, one
    after the other; ``submitit-local`` and ``slurm`` submit the unfinished ones as one job array,
    wait for it, then read every job's results back from its folder (:mod:`alertlib.study.executors`).
    """
    from tqdm.auto import tqdm

    from alertlib.learn import finetune, pretrain
    from alertlib.learn.results import config_run_id
    from alertlib.study.executors import resolve_executor, run_submitted

    module = pretrain if kind == "pretrain" else finetune
    run = pretrain.run_pretrain if kind == "pretrain" else finetune.run_finetune
    settings = resolve_executor(executor)
    if settings.name != "local":
        jobs = []
        for config in configs:
            full = module.full_config(config)
            jobs.append((config, job_dir(Path(root) / kind, full, config_run_id(full)), job_label(full)))
        return run_submitted(settings, kind, jobs, Path(root), module.full_config, progress_bar)
    tables, trained_seconds, trained = [], 0.0, 0
    bar = tqdm(configs, desc=kind, unit="run", disable=not progress_bar)
    for index, config in enumerate(bar, start=1):
        full = module.full_config(config)
        out_dir = job_dir(Path(root) / kind, full, config_run_id(full))
        label = job_label(full)
        bar.set_postfix_str(label)
        left = len(configs) - index + 1
        eta = trained_seconds / trained * left if trained else None
        start = time.perf_counter()
        with progress.job(kind, index, len(configs), label, eta_s=eta):
            table = run(config, out_dir)
        seconds = time.perf_counter() - start
        if seconds > 1.0:  # a run read back takes milliseconds: it says nothing about the time left
            trained_seconds, trained = trained_seconds + seconds, trained + 1
        tables.append(table.assign(run_dir=str(out_dir)))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def checkpoints_of(pretrain_results: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(arch, init) -> encoder checkpoint path, from the pre-training results of :func:`run_jobs`."""
    import json

    runs = pretrain_results.drop_duplicates("run_dir")
    checkpoints = {}
    for _, row in runs.iterrows():
        config = json.loads(row["config"])
        checkpoints[(row["arch"], config["pretrain_init"])] = str(Path(row["run_dir"]) / "encoder.pt")
    return checkpoints
