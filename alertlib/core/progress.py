"""Progress of long work, relayed from a notebook's kernel to the terminal that runs the study.

A study runs its notebooks in Jupyter kernels (papermill), whose output the terminal does not see.
The runner (:mod:`alertlib.study.runner`) names a file in ``$ALERTLIB_PROGRESS_FILE``; inside the
kernel, the grid of runs and the training loop append one JSON line per event to it (a job starts
or ends, an epoch ends), and the runner prints them as they come. Without the variable (a notebook
opened by hand, a test) nothing is written: the notebook's own progress bars show the same.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager

PROGRESS_ENV = "ALERTLIB_PROGRESS_FILE"
_current_job: dict = {}


def report(kind: str, **fields) -> None:
    """Append one event (``kind`` and its fields, with the time) to the progress file, if one is set."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    event = {"kind": kind, "time": time.time(), **_current_job, **fields}
    try:
        with open(path, "a", encoding="utf-8") as handle:  # one short write per line: appends do not interleave
            handle.write(json.dumps(event, default=str) + "\n")
    except OSError:
        pass  # progress is a courtesy: a full disk or a removed folder must not stop the work


@contextmanager
def job(stage: str, index: int, total: int, label: str, eta_s: float | None = None):
    """Mark job ``index`` (1-based) of ``total`` of a stage; events inside it carry the job."""
    _current_job.clear()
    _current_job.update(stage=stage, job=index, jobs=total, label=label)
    report("job_start", eta_s=eta_s)
    start = time.perf_counter()
    try:
        yield
    finally:
        report("job_end", seconds=time.perf_counter() - start)
        _current_job.clear()


def epoch(epoch_index: int, epochs: int, **losses: float) -> None:
    """One finished training epoch (0-based ``epoch_index`` of ``epochs``) with its losses."""
    report("epoch", epoch=epoch_index + 1, epochs=epochs, **losses)
