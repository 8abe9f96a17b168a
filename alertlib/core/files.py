"""Atomic file writes: a killed job never leaves a half-written result behind."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary file keeps the final suffix so that writers which look at the extension
    (``np.save``, ``DataFrame.to_parquet``) behave as for the real name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | os.PathLike, obj, **kwargs) -> None:
    """Write ``obj`` as JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str, **kwargs) + "\n")


def write_table(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame to ``.parquet`` or ``.csv`` (by suffix), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            raise ValueError(f"write_table: unsupported suffix {path.suffix!r} for {path}; use .parquet or .csv")


def save_npy(path: str | os.PathLike, array) -> None:
    """``np.save`` atomically."""
    import numpy as np

    with atomic_path(path) as tmp:
        np.save(tmp, array)
