"""Run the study: execute the numbered notebooks in order with papermill, for one profile.

The runner passes the profile's name to each notebook's ``parameters`` cell; the notebooks read the
rest of the profile themselves, so the settings have one source. Executed copies are written
atomically to ``runs/<profile>/``. A study that is stopped and restarted loses no finished work:
each notebook reads back the artefacts and runs that are already current
(:mod:`alertlib.study.artefacts`).

While a notebook runs, its kernel appends progress events to a file
(:mod:`alertlib.core.progress`) that the runner prints: job k of n, each epoch's losses, the time
spent and an estimate of the time left. Kernels talk to the runner over IPC sockets (local files),
not TCP.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

from alertlib.core import progress
from alertlib.core.errors import DataNotFound, UserError
from alertlib.core.paths import REPO_ROOT
from alertlib.study.profiles import load_profile

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "alertlib"


def notebook_paths(profile: dict) -> list[Path]:
    """The profile's notebooks, in order; each must exist."""
    paths = []
    for stem in profile["notebooks"]:
        path = NOTEBOOKS_DIR / f"{stem}.ipynb"
        if not path.is_file():
            raise DataNotFound(f"profile {profile['profile']!r} names notebook {stem}, but {path} does not exist")
        paths.append(path)
    return paths


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def format_event(event: dict, notebook: str, started: float) -> str | None:
    """One progress event as a terminal line (None for events not worth a line)."""
    elapsed = _duration(event.get("time", time.time()) - started)
    where = f"  {notebook} {event.get('stage', '')} job {event.get('job')}/{event.get('jobs')} {event.get('label', '')}"
    if event["kind"] == "job_start":
        return f"{where}: started (notebook {elapsed}, about {_duration(event.get('eta_s'))} left)"
    if event["kind"] == "epoch":
        losses = " ".join(f"{k} {event[k]:.4f}" for k in ("train_loss", "val_loss") if k in event)
        return f"{where}: epoch {event['epoch']}/{event['epochs']} {losses} (notebook {elapsed})"
    return None


class ProgressRelay:
    """Print the events a kernel appends to a progress file, while the notebook runs (a thread)."""

    def __init__(self, path: Path, notebook: str, write=print):
        self.path, self.notebook, self.write = path, notebook, write
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> ProgressRelay:
        self.path.write_text("")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _follow(self) -> None:
        with open(self.path, encoding="utf-8") as handle:
            while True:
                line = handle.readline()
                if line.endswith("\n"):
                    self._print(line)
                elif self._stop.is_set():
                    break
                else:
                    time.sleep(0.2)

    def _print(self, line: str) -> None:
        try:
            text = format_event(json.loads(line), self.notebook, self.started)
        except (ValueError, KeyError):
            return
        if text:
            self.write(text, flush=True)


def _kernel_manager_class(socket_dir: Path):
    """A Jupyter kernel manager that talks over IPC sockets in ``socket_dir`` instead of TCP."""
    from jupyter_client.manager import KernelManager

    class IPCKernelManager(KernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", str(socket_dir / "kernel"))
            super().__init__(**kwargs)

    return IPCKernelManager


class NotebookFailed(UserError):
    """A notebook of the study stopped with an error; its executed copy shows where."""


def _execute(pm, path: Path, target: Path, parameters: dict, manager) -> None:
    """Execute one notebook into ``target`` (atomically); a failure keeps the executed copy beside
    it (``<name>.failed.ipynb``) and raises :class:`NotebookFailed` naming the cell and the error."""
    from alertlib.core.files import atomic_path

    with atomic_path(target) as tmp:
        try:
            pm.execute_notebook(
                str(path),
                str(tmp),
                parameters=parameters,
                kernel_name=KERNEL_NAME,
                kernel_manager_class=manager,
                cwd=str(NOTEBOOKS_DIR),
                progress_bar=False,
            )
        except pm.PapermillExecutionError as error:
            failed = target.with_suffix(".failed.ipynb")
            tmp.replace(failed)
            raise NotebookFailed(
                f"{path.name} stopped in cell {error.exec_count}: {error.ename}: {error.evalue}; "
                f"the executed notebook is {failed}"
            ) from error


def run_study(profile_name: str, profiles_file: str | None = None, runs_dir: Path | None = None) -> list[Path]:
    """Execute every notebook of the profile in order; return the executed copies."""
    import papermill as pm

    profile = load_profile(profile_name, profiles_file)
    runs_dir = Path(runs_dir or REPO_ROOT / "runs" / profile_name)
    runs_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"profile_name": profile_name}
    if profiles_file:
        parameters["profiles_file"] = str(Path(profiles_file).resolve())
    paths = notebook_paths(profile)
    executed, study_start = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alertlib-study-") as scratch:
        scratch = Path(scratch)
        manager = _kernel_manager_class(scratch)
        events = scratch / "progress.jsonl"
        previous = os.environ.get(progress.PROGRESS_ENV)
        os.environ[progress.PROGRESS_ENV] = str(events)  # the kernels inherit it
        try:
            for index, path in enumerate(paths, start=1):
                print(f"[{index}/{len(paths)}] {path.stem} (profile {profile_name}) ...", flush=True)
                start = time.perf_counter()
                target = runs_dir / path.name
                with ProgressRelay(events, path.stem):
                    _execute(pm, path, target, parameters, manager)
                executed.append(target)
                print(
                    f"[{index}/{len(paths)}] {path.stem}: done in {_duration(time.perf_counter() - start)} -> {target}"
                )
        finally:
            if previous is None:
                os.environ.pop(progress.PROGRESS_ENV, None)
            else:
                os.environ[progress.PROGRESS_ENV] = previous
    print(f"study {profile_name!r}: {len(executed)} notebooks in {_duration(time.perf_counter() - study_start)}")
    return executed
