"""Score alerts with a fine-tuned model: packets or a release-layout folder in, one row per alert out.

:func:`score_inputs` reads its inputs (alert packet files and folders; or folders in the BTS release
layout, every split), keeps the triplets of the model's stamp size (ZTF's 63x63), scores them, and
returns one row per alert with ``objectId``, ``candid``, the score (``score`` for a binary model,
``prob_<class>`` and ``predicted`` for a multi-class one, as in ``predictions_test.parquet``), the
model's arch, init, seed and run id, and, for a BTS model on alerts with ``magpsf``, the source-level
decisions of the BTS policies (:func:`alertlib.learn.metrics.source_policy_flags`, as each source's
alerts in time order allow). What cannot be scored (undecodable packets, other stamp sizes) is
returned as skip rows with the reason, as ``alertlib ingest`` lists them. The model is a checkpoint
(``model.pt``, scored with torch) or the same model exported to ONNX (:mod:`alertlib.learn.export`,
scored with onnxruntime on CPU): both give the same table.

Packets are scored as a stream: worker processes decode them batch after batch
(:func:`alertlib.io.packets.decoded_batches`) while this process scores the alerts already decoded,
:data:`CHUNK_ALERTS` at a time per dataset (:func:`score_chunk`, the one inference step), so that
decoding and inference overlap and memory holds a few batches, not the night. Chunks are cut from
each dataset's alerts in file order whatever the number of workers, so the table is the same for any
``workers``: the rows of the release folders first, then each dataset's (by name) in file order; the
decoder's skips in file order, then the alerts of other stamp sizes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.errors import DataError, DataNotFound, SettingError
from alertlib.core.vocab import STAMP_SIZE
from alertlib.io.packets import SKIPPED_COLUMNS

KEPT_COLUMNS = ("objectId", "candid", "jd", "magpsf", "survey", "file")
# Alerts per inference call, one batch of the model: enough for the CPU's matrix kernels to run at
# speed, few enough that the first scores come while the workers decode the rest.
CHUNK_ALERTS = 256


def _release_folders(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split inputs into release-layout folders and packet paths."""
    from alertlib.io.release import find_versions

    release, packets = [], []
    for path in paths:
        (release if path.is_dir() and find_versions(path) else packets).append(path)
    return release, packets


@dataclass
class Scorer:
    """A model ready to score chunks of alerts (:func:`load_scorer`), and what the score table says of it.

    ``model`` is the checkpoint's model or the :class:`~alertlib.learn.export.OnnxModel` (``arch``,
    ``init``, ``class_names``, ``config``); ``score`` maps triplets (N, H, W, 3) to scores.
    """

    model: object
    score: Callable[[np.ndarray], np.ndarray]
    source: str
    skipped: list = field(default_factory=list)  # rows an image + metadata model could not score (SKIPPED_COLUMNS)


def load_scorer(
    checkpoint: str | Path | None = None, onnx: str | Path | None = None, n_alerts: int | None = None
) -> Scorer:
    """The model at ``checkpoint`` (torch) or ``onnx`` (onnxruntime), one of them, ready for :func:`score_chunk`.

    A checkpoint is prepared once in the fastest format and variant measured here for ``n_alerts``
    alerts (:func:`alertlib.learn.inference.prepare_scoring`).
    """
    if (checkpoint is None) == (onnx is None):
        raise SettingError(
            "score with either a checkpoint (--checkpoint model.pt) or an ONNX model (--onnx), one of them"
        )
    if onnx is not None:
        from alertlib.learn.export import load_onnx, score_onnx

        model = load_onnx(onnx)
        return Scorer(model, functools.partial(score_onnx, model, batch_size=CHUNK_ALERTS), str(onnx))
    from alertlib.learn.inference import load_model, prepare_scoring, score_prepared

    model = load_model(checkpoint)
    prepared = prepare_scoring(model, batch_size=CHUNK_ALERTS, n_alerts=n_alerts)
    return Scorer(model, functools.partial(score_prepared, prepared), str(checkpoint))


def score_chunk(scorer: Scorer, triplets: np.ndarray, candidates: pd.DataFrame) -> np.ndarray:
    """Scores of one chunk of alerts: their triplets (N, 63, 63, 3) and their candidate rows (N rows, same order).

    The inference step of :func:`score_inputs`, called once per chunk of at most
    :data:`CHUNK_ALERTS` alerts. An image-only model reads the triplets alone. An image + metadata
    model reads the candidate features of the rows too (:func:`alertlib.io.features.packet_features`:
    the table's own columns; for packets, the light-curve features from the object's alerts in this
    chunk, and ZTF's ``jdstarthist`` for the age). A row that lacks one (a packet of 2018 has no
    ``drb``) gets a NaN score and a skip row in ``scorer.skipped`` naming the features it lacks;
    :func:`score_inputs` lists it with the other skips.
    """
    names = getattr(scorer.model, "feature_names", None)
    if not names:
        return scorer.score(triplets)
    from alertlib.io.features import complete_rows, packet_features

    features, complete, lacking = complete_rows(packet_features(candidates), names)
    width = max(len(scorer.model.class_names or []), 1)
    scores = np.full((len(triplets), width) if scorer.model.class_names else len(triplets), np.nan, dtype=np.float32)
    if complete.any():
        scores[complete] = scorer.score(triplets[complete], features=features[complete])
    for (_, row), missing in zip(candidates[~complete].iterrows(), lacking, strict=True):
        detail = (
            f"lacks {missing}; an image + metadata model needs all of its features: score it with an image-only model"
        )
        scorer.skipped.append(
            {"file": row.get("file"), "alert": row.get("alert_index"), "reason": "missing metadata", "detail": detail}
        )
    return scores


def _read_release(folders: list[Path]) -> list[tuple[np.ndarray, pd.DataFrame]]:
    """(triplets as float32, candidates with ``file``) of every split of every release-layout folder."""
    from alertlib.core.vocab import SPLITS
    from alertlib.io.release import read_split

    parts = []
    for folder in folders:
        for split in SPLITS:
            if not list(folder.glob(f"{split}_triplets_*.npy")):
                continue
            data = read_split(folder, split, mmap=False)
            parts.append((np.asarray(data.triplets, dtype=np.float32), data.candidates.assign(file=str(data.path))))
    return parts


class _ChunkedScores:
    """Scores gathered as alerts come: per dataset, triplets wait until a whole chunk is there.

    Only the datasets of the model's stamp size are scored; the rows of the others are kept to be
    listed as skipped.
    """

    def __init__(self, scorer: Scorer):
        self.scorer, self.chunk = scorer, CHUNK_ALERTS
        self.waiting: dict[str, list[np.ndarray]] = {}
        self.rows: dict[str, list[dict]] = {}
        self.scores: dict[str, list[np.ndarray]] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.skipped: list[dict] = []

    def add(self, batch) -> None:
        """Take a :class:`~alertlib.io.packets.DecodedBatch`; score each whole chunk it completes."""
        self.skipped.extend(batch.skipped)
        for name, (triplets, rows) in batch.datasets.items():
            self.shapes.setdefault(name, triplets.shape[1:])
            self.rows.setdefault(name, []).extend(rows)
            self.scores.setdefault(name, [])
            if triplets.shape[1:3] == (STAMP_SIZE, STAMP_SIZE):
                self.waiting.setdefault(name, []).append(triplets)
                self._score_waiting(name, final=False)

    def _score_waiting(self, name: str, final: bool) -> None:
        waiting = self.waiting.get(name)
        if not waiting:
            return
        triplets = np.concatenate(waiting) if len(waiting) > 1 else waiting[0]
        scored = sum(len(s) for s in self.scores[name])
        whole = len(triplets) if final else len(triplets) // self.chunk * self.chunk
        for start in range(0, whole, self.chunk):
            rows = pd.DataFrame(self.rows[name][scored + start : scored + start + self.chunk])
            self.scores[name].append(score_chunk(self.scorer, triplets[start : start + self.chunk], rows))
        self.waiting[name] = [triplets[whole:]] if whole < len(triplets) else []

    def finish(self) -> tuple[list[np.ndarray], list[pd.DataFrame], list[pd.DataFrame]]:
        """(scores, candidate tables, skip tables) of the packets, datasets by name; the last chunks scored."""
        scores, candidates = [], []
        skipped = [pd.DataFrame(self.skipped, columns=list(SKIPPED_COLUMNS))]
        for name in sorted(self.rows):
            table = pd.DataFrame(self.rows[name])
            shape = self.shapes[name]
            if shape[:2] != (STAMP_SIZE, STAMP_SIZE):
                detail = f"stamps of {shape[0]}x{shape[1]} (the model takes {STAMP_SIZE}x{STAMP_SIZE})"
                skipped.append(
                    pd.DataFrame(
                        {
                            "file": table["file"],
                            "alert": table.get("alert_index"),
                            "reason": "other stamp size",
                            "detail": detail,
                        }
                    )
                )
                continue
            self._score_waiting(name, final=True)
            scores.append(np.concatenate(self.scores[name]))
            candidates.append(table)
        return scores, candidates, skipped


def _score_all(
    scorer: Scorer, release: list[tuple[np.ndarray, pd.DataFrame]], packets: list[Path], workers: int, progress: bool
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """(scores, candidates, skipped) of the release folders' splits, then of the packets as they are decoded."""
    from alertlib.io.packets import decoded_batches

    scores, candidates, skipped = [], [], []
    for triplets, table in release:
        chunks = range(0, len(triplets), CHUNK_ALERTS)
        scores.extend(
            score_chunk(scorer, triplets[s : s + CHUNK_ALERTS], table.iloc[s : s + CHUNK_ALERTS]) for s in chunks
        )
        candidates.append(table)
    if packets:
        gathered = _ChunkedScores(scorer)
        for batch in decoded_batches(packets, workers=workers, progress=progress):
            gathered.add(batch)
        packet_scores, packet_candidates, skipped = gathered.finish()
        scores.extend(packet_scores)
        candidates.extend(packet_candidates)
    skips = pd.concat(skipped, ignore_index=True) if skipped else pd.DataFrame(columns=list(SKIPPED_COLUMNS))
    return (np.concatenate(scores) if scores else None), candidates, skips


def score_inputs(
    paths,
    checkpoint: str | Path | None = None,
    workers: int = 1,
    progress: bool = False,
    onnx: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of every alert under ``paths`` with the model saved at ``checkpoint`` (``model.pt``) or ``onnx``.

    ``workers`` processes decode the packets (1: this process, between inference calls) while this
    process scores them; ``progress`` shows a bar over the packet files.
    Returns (scores, skipped); see the module docstring for the columns and the order.
    """
    from alertlib.io.packets import expand_paths
    from alertlib.learn.metrics import POLICIES, source_policy_flags

    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise DataNotFound(f"no such file or folder: {', '.join(missing)}")
    release_folders, packet_paths = _release_folders(paths)
    release, packets = _read_release(release_folders), expand_paths(packet_paths)
    # Alerts expected, to weigh a compiled variant's first call: one per packet file, as ZTF sends them.
    scorer = load_scorer(checkpoint, onnx, n_alerts=len(packets) + sum(len(t) for t, _ in release))
    scores, candidates, skipped = _score_all(scorer, release, packets, workers, progress)
    if not candidates:
        raise DataError(f"nothing to score in {', '.join(map(str, paths))}: no {STAMP_SIZE}x{STAMP_SIZE} alerts")
    candidates = pd.concat(candidates, ignore_index=True)
    if scorer.skipped:  # rows an image + metadata model could not score (score_chunk)
        kept = np.isfinite(scores).reshape(len(scores), -1).all(axis=1)
        scores, candidates = scores[kept], candidates[kept].reset_index(drop=True)
        skipped = pd.concat([skipped, pd.DataFrame(scorer.skipped, columns=list(SKIPPED_COLUMNS))], ignore_index=True)
    model = scorer.model
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
    return table.assign(arch=model.arch, init=model.init, seed=config.get("seed"), checkpoint=scorer.source), skipped
