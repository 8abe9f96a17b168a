"""Where the grid's jobs run: in this process, in local worker processes, or on a SLURM cluster.

:func:`alertlib.study.grid.run_jobs` runs its jobs through one of three executors:

``local`` (the default)
    One after the other, in the calling process (the notebook's kernel).
``submitit-local``
    Each unfinished job in a Python process of its own on this machine (``submitit.LocalExecutor``),
    all at once or ``array_parallelism`` at a time: a workstation with several GPUs or many cores.
``slurm``
    Each unfinished job a task of one SLURM job array (``submitit.AutoExecutor``), with the
    partition, time limit and GPUs per job of the profile's ``executor:`` block.

The bookkeeping is the grid's, whichever executor runs the jobs: a job writes into its own folder
(:func:`alertlib.study.grid.job_dir`), its ``results.parquet`` written atomically last; a job whose
results are there with its run id is finished and is not submitted again; after the array ends,
every job's results are read back from its folder, in the grid's order. A study stopped while its
array ran resumes where it stopped, as the local one does.

The executor is chosen, in this order, by the ``executor`` argument of ``run_jobs``, by
``$ALERTLIB_EXECUTOR`` (a name; ``alertlib study --executor NAME`` sets it for the notebooks it
runs, since papermill passes them only the profile's name), or by the ``name`` of the profile's
``executor:`` block, which ``alertlib study`` passes to the notebooks as JSON in
``$ALERTLIB_EXECUTOR_SETTINGS``. The block's keys:

=========================  ===================================================================
``name``                   ``local``, ``submitit-local`` or ``slurm``
``partition``              SLURM partition
``timeout_min``            time limit of one job, in minutes (default 240)
``gpus_per_node``          GPUs per job (default 0)
``cpus_per_task``          CPU cores per job; also the job's torch threads
``mem_gb``                 memory per job
``array_parallelism``      at most this many jobs at once (SLURM's ``%N``; waves locally)
``folder``                 submitit's logs and pickles (default ``<results>/submitit/<kind>``)
``poll_s``                 seconds between looks at the jobs' state (default 10)
``slurm_<option>``         any other submitit SLURM parameter (``slurm_account``, ``slurm_qos``,
                           ``slurm_setup``: shell lines run before the job, ...), passed as is
=========================  ===================================================================
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from alertlib.core import progress
from alertlib.core.errors import SettingError, UserError

EXECUTORS = ("local", "submitit-local", "slurm")
EXECUTOR_ENV = "ALERTLIB_EXECUTOR"
EXECUTOR_SETTINGS_ENV = "ALERTLIB_EXECUTOR_SETTINGS"


class JobFailed(UserError, RuntimeError):
    """A submitted job of the grid ended with an error; the message names its folder and log."""


@dataclass(frozen=True)
class ExecutorSettings:
    """How and where the grid's jobs run (see the module docstring for each field)."""

    name: str = "local"
    partition: str | None = None
    timeout_min: int = 240
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    array_parallelism: int | None = None
    folder: str | None = None
    poll_s: float = 10.0
    slurm: dict = field(default_factory=dict)  # the block's slurm_<option> keys, without the prefix

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise SettingError(f"executor {self.name!r} is not one of {', '.join(EXECUTORS)}")

    @classmethod
    def from_block(cls, block: dict | None, name: str | None = None) -> ExecutorSettings:
        """Settings from a profile's ``executor:`` block; ``name`` (e.g. ``--executor``) wins over its own."""
        block = dict(block or {})
        slurm = {key.removeprefix("slurm_"): block.pop(key) for key in list(block) if key.startswith("slurm_")}
        known = {f.name for f in dataclasses.fields(cls)} - {"slurm"}
        unknown = sorted(set(block) - known)
        if unknown:
            raise SettingError(
                f"unknown executor setting(s) {unknown}; known: {sorted(known)} and slurm_<option> "
                "(see alertlib.study.executors)"
            )
        if name is not None:
            block["name"] = name
        return cls(**block, slurm=slurm)

    def to_block(self) -> dict:
        """The settings as a profile's ``executor:`` block (what :meth:`from_block` reads)."""
        block = {k: v for k, v in dataclasses.asdict(self).items() if k != "slurm"}
        return block | {f"slurm_{key}": value for key, value in self.slurm.items()}


def settings_from_profile(profile: dict, name: str | None = None) -> ExecutorSettings:
    """The executor of a profile (its ``executor:`` block), ``name`` overriding the block's choice."""
    return ExecutorSettings.from_block(profile.get("executor"), name)


def export_settings(settings: ExecutorSettings) -> dict[str, str]:
    """The environment variables that hand ``settings`` to the notebooks' kernels (and set them)."""
    variables = {EXECUTOR_ENV: settings.name, EXECUTOR_SETTINGS_ENV: json.dumps(settings.to_block())}
    os.environ.update(variables)
    return variables


def resolve_executor(executor: str | ExecutorSettings | None = None) -> ExecutorSettings:
    """The executor to use: the one given, else ``$ALERTLIB_EXECUTOR`` with ``$ALERTLIB_EXECUTOR_SETTINGS``
    (or the block's own name), else ``local``."""
    if isinstance(executor, ExecutorSettings):
        return executor
    block = json.loads(os.environ.get(EXECUTOR_SETTINGS_ENV) or "{}")
    name = executor or os.environ.get(EXECUTOR_ENV) or None
    return ExecutorSettings.from_block(block, name)


# --- on the worker ------------------------------------------------------------------------------------


def run_job(kind: str, config: dict, out_dir: str, index: int, total: int, label: str, threads: int | None = None):
    """Run one job of the grid where the executor put it (a worker process or a cluster node).

    Returns nothing: the job's folder holds its results, which the submitting process reads back.
    """
    from alertlib.learn import finetune, pretrain

    if threads:
        import torch

        torch.set_num_threads(int(threads))
    run = pretrain.run_pretrain if kind == "pretrain" else finetune.run_finetune
    with progress.job(kind, index, total, label):
        run(config, Path(out_dir))


# --- on the submitting side -----------------------------------------------------------------------------


def _submitit_executor(settings: ExecutorSettings, kind: str, root: Path):
    import submitit

    folder = Path(settings.folder) if settings.folder else Path(root) / "submitit" / kind
    cluster = "local" if settings.name == "submitit-local" else "slurm"
    if cluster == "slurm" and shutil.which("srun") is None:
        raise SettingError(
            "the slurm executor submits with SLURM's sbatch and srun, which are not on this machine's PATH: "
            "run the study on the cluster's login node, or choose --executor local or submitit-local"
        )
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    parameters = {
        "name": f"alertlib-{kind}",
        "timeout_min": int(settings.timeout_min),
        "gpus_per_node": int(settings.gpus_per_node),
        "cpus_per_task": settings.cpus_per_task,
        "mem_gb": settings.mem_gb,
    }
    if cluster == "slurm":
        parameters["slurm_partition"] = settings.partition
        parameters["slurm_array_parallelism"] = settings.array_parallelism
        parameters |= {f"slurm_{key}": value for key, value in settings.slurm.items()}
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    return executor


def _failure(job, kind: str, label: str, out_dir: Path) -> str:
    error = job.exception()
    # submitit's message is the worker's traceback between two rules of dashes, then the log paths.
    traceback = str(error).split("-" * 20)[1] if str(error).count("-" * 20) >= 2 else str(error)
    lines = [line.strip() for line in traceback.splitlines() if line.strip().strip("-")]
    last_line = lines[-1] if lines else type(error).__name__
    return (
        f"{kind} job {label} failed: {last_line}; its folder: {out_dir}; "
        f"submitit's log: {job.paths.stderr} (and {job.paths.stdout})"
    )


def _wait(submitted: list[tuple], poll_s: float, on_done) -> None:
    """Wait for the ``(job, item)`` pairs, calling ``on_done(job, item)`` as each job ends
    (finished, failed or cancelled)."""
    waiting = list(submitted)
    while waiting:
        ended = [pair for pair in waiting if pair[0].done()]
        for pair in ended:
            waiting.remove(pair)
            on_done(*pair)
        if waiting and not ended:
            time.sleep(poll_s)


def submit_jobs(
    settings: ExecutorSettings, kind: str, root: Path, pending: list[tuple[dict, Path, str]], bar=None
) -> None:
    """Run ``pending`` jobs (config, folder, label) as job arrays of ``settings``' executor; wait for them.

    Locally, with ``array_parallelism``, the array is submitted in waves of that many jobs. Raises :class:`JobFailed` naming every
    failed job's folder and log, after the others have ended.
    """
    executor = _submitit_executor(settings, kind, root)
    wave = len(pending) if settings.name == "slurm" else settings.array_parallelism or len(pending)
    failures = []

    def ended(job, item) -> None:
        _, out_dir, label = item
        if job.exception() is not None:
            failures.append(_failure(job, kind, label, out_dir))
        if bar is not None:
            bar.update(1)

    for start in range(0, len(pending), wave):
        chunk = pending[start : start + wave]
        jobs = executor.map_array(
            run_job,
            [kind] * len(chunk),
            [config for config, _, _ in chunk],
            [str(out_dir) for _, out_dir, _ in chunk],
            range(start + 1, start + len(chunk) + 1),
            [len(pending)] * len(chunk),
            [label for _, _, label in chunk],
            [settings.cpus_per_task] * len(chunk),
        )
        _wait(list(zip(jobs, chunk, strict=True)), settings.poll_s, ended)
    if failures:
        raise JobFailed(f"{len(failures)} of {len(pending)} {kind} job(s) failed:\n" + "\n".join(failures))


def run_submitted(
    settings: ExecutorSettings, kind: str, jobs: list[tuple[dict, Path, str]], root: Path, complete, progress_bar=True
):
    """The grid's jobs (config, folder, label) through a submitit executor: submit the unfinished ones
    as one job array, wait for it, then read every job's results back from its folder, in order.

    ``complete`` is the jobs' module's ``full_config``. Returns the jobs' results with their ``run_dir``,
    as :func:`alertlib.study.grid.run_jobs` does.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from alertlib.learn.results import begin_run

    pending, queued = [], set()
    for config, out_dir, label in jobs:
        if begin_run(config, out_dir, complete)[3] is None and out_dir not in queued:
            queued.add(out_dir)  # the same job twice in a grid runs once
            pending.append((config, out_dir, label))
    if pending:
        with tqdm(total=len(pending), desc=f"{kind} ({settings.name})", unit="run", disable=not progress_bar) as bar:
            submit_jobs(settings, kind, root, pending, bar=bar)
    tables = []
    for config, out_dir, label in jobs:
        table = begin_run(config, out_dir, complete)[3]
        if table is None:
            raise JobFailed(f"{kind} job {label} ended without results in {out_dir}")
        tables.append(table.assign(run_dir=str(out_dir)))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
