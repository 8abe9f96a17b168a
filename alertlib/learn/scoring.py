"""Score alerts with a fine-tuned model: packets or a release-layout folder in, one row per alert out.

:func:`score_inputs` reads its inputs (alert packet files and folders, decoded by
:func:`alertlib.io.packets.decode_packets`; or folders in the BTS release layout, every split),
keeps the triplets of the model's stamp size (ZTF's 63x63), scores them
(:func:`alertlib.learn.inference.score_triplets`), and returns one row per alert with ``objectId``,
``candid``, the score (``score`` for a binary model, ``prob_<class>`` and ``predicted`` for a
multi-class one, as in ``predictions_test.parquet``), the model's arch, init, seed and run id, and,
for a BTS model on alerts with ``magpsf``, the source-level decisions of the BTS policies
(:func:`alertlib.learn.metrics.source_policy_flags`, as each source's alerts in time order allow).
What cannot be scored (undecodable packets, other stamp sizes) is returned as skip rows with the
reason, as ``alertlib ingest`` lists them. The model is a checkpoint (``model.pt``, scored with torch)
or the same model exported to ONNX (:mod:`alertlib.learn.export`, scored with onnxruntime on CPU):
both give the same table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.errors import DataError, DataNotFound, SettingError
from alertlib.core.vocab import STAMP_SIZE

KEPT_COLUMNS = ("objectId", "candid", "jd", "magpsf", "survey", "file")


def _release_folders(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split inputs into release-layout folders and packet paths."""
    from alertlib.io.release import find_versions

    release, packets = [], []
    for path in paths:
        (release if path.is_dir() and find_versions(path) else packets).append(path)
    return release, packets


def _read_inputs(paths: list[Path], workers: int, progress: bool) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    from alertlib.core.vocab import SPLITS
    from alertlib.io.packets import decode_packets
    from alertlib.io.release import read_split

    release, packets = _release_folders(paths)
    triplets, rows, skipped = [], [], []
    for folder in release:
        for split in SPLITS:
            if not list(folder.glob(f"{split}_triplets_*.npy")):
                continue
            data = read_split(folder, split, mmap=False)
            triplets.append(np.asarray(data.triplets, dtype=np.float32))
            rows.append(data.candidates.assign(file=str(data.path)))
    if packets:
        decoded = decode_packets(packets, workers=workers, progress=progress)
        skipped.append(decoded.skipped)
        for dataset in decoded.datasets.values():
            if dataset.triplets.shape[1:3] != (STAMP_SIZE, STAMP_SIZE):
                reason = f"stamps of {dataset.triplets.shape[1]}x{dataset.triplets.shape[2]} (the model takes {STAMP_SIZE}x{STAMP_SIZE})"
                files = dataset.candidates["file"]
                skipped.append(
                    pd.DataFrame(
                        {
                            "file": files,
                            "alert": dataset.candidates.get("alert_index"),
                            "reason": "other stamp size",
                            "detail": reason,
                        }
                    )
                )
                continue
            triplets.append(np.asarray(dataset.triplets, dtype=np.float32))
            rows.append(dataset.candidates)
    if not rows:
        raise DataError(f"nothing to score in {', '.join(map(str, paths))}: no {STAMP_SIZE}x{STAMP_SIZE} alerts")
    skips = (
        pd.concat(skipped, ignore_index=True)
        if skipped
        else pd.DataFrame(columns=["file", "alert", "reason", "detail"])
    )
    return np.concatenate(triplets), pd.concat(rows, ignore_index=True), skips


def _load_scorer(checkpoint, onnx):
    """(model, score function) for a checkpoint (torch) or an exported ONNX model (onnxruntime)."""
    if (checkpoint is None) == (onnx is None):
        raise SettingError(
            "score with either a checkpoint (--checkpoint model.pt) or an ONNX model (--onnx), one of them"
        )
    if onnx is not None:
        from alertlib.learn.export import load_onnx, score_onnx

        return load_onnx(onnx), score_onnx
    from alertlib.learn.inference import load_model, score_triplets

    return load_model(checkpoint), score_triplets


def score_inputs(
    paths,
    checkpoint: str | Path | None = None,
    workers: int = 1,
    progress: bool = False,
    onnx: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of every alert under ``paths`` with the model saved at ``checkpoint`` (``model.pt``) or ``onnx``.

    Returns (scores, skipped); see the module docstring for the columns.
    """
    from alertlib.learn.metrics import POLICIES, source_policy_flags

    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise DataNotFound(f"no such file or folder: {', '.join(missing)}")
    model, score = _load_scorer(checkpoint, onnx)
    triplets, candidates, skipped = _read_inputs(paths, workers, progress)
    scores = score(model, triplets)
    table = candidates[[c for c in KEPT_COLUMNS if c in candidates.columns]].copy()
    if table["candid"].dtype == object:  # surveys mix integer (ZTF) and text (ATLAS, Rubin) alert ids
        table["candid"] = table["candid"].astype(str)
    if model.class_names:
        for index, name in enumerate(model.class_names):
            table[f"prob_{name}"] = scores[:, index]
        table["predicted"] = np.asarray(model.class_names)[scores.argmax(axis=1)]
    else:
        table["score"] = scores
        if {"objectId", "magpsf"} <= set(table.columns):
            policies = source_policy_flags(table.assign(label=0, peakmag=np.nan), scores).set_index("objectId")
            for policy in POLICIES:
                table[policy] = table["objectId"].map(policies[policy]).astype(bool)
    config = model.config
    source = str(checkpoint if onnx is None else onnx)
    return table.assign(arch=model.arch, init=model.init, seed=config.get("seed"), checkpoint=source), skipped
