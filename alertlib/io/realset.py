"""The real weak-labelled alert set: real ZTF packets and BTS samples, de-duplicated, with weak labels.

:func:`build_real_set` decodes every packet under the given folders (:mod:`alertlib.io.packets`),
keeps the ZTF alerts (63x63 triplets), adds the real BTS samples in the release layout (and
BTSbot's example triplets with its production scores), removes alerts seen in several files (same
``candid``; the first file in sorted order is kept, the others counted), and labels every alert
(:mod:`alertlib.io.weaklabels`). The result is written in the BTS release layout (split ``test``)
with ``objectId``, ``alert_class``, ``label_source``, ``label_evidence``, ``survey`` and ``origin``
(the folder it came from), so every loader and model of the project reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.io.weaklabels import label_summary, weak_labels

VERSION = "weak"
SPLIT = "test"
BTS_EXAMPLE_TRIPLETS = "btsbot-example_usage_triplets.npy"
BTS_EXAMPLE_CANDIDATES = "btsbot-example_usage_candidates.csv"


@dataclass
class RealSet:
    """Triplets (N, 63, 63, 3), their candidate rows with weak labels, and what was left out."""

    triplets: np.ndarray
    candidates: pd.DataFrame
    skipped: pd.DataFrame  # packets that could not be used (ingest's reasons)
    duplicates: int  # alerts dropped because their candid was already read from another file

    def summary(self) -> pd.DataFrame:
        return label_summary(self.candidates)


def _origin(files: pd.Series, roots: list[Path]) -> pd.Series:
    """The folder of each file relative to the root it was found under (e.g. ``fink-ztf-crossmatched``)."""

    def one(file: str) -> str:
        path = Path(file)
        for root in roots:
            if path.is_relative_to(root):
                relative = path.relative_to(root)
                return str(relative.parent) if relative.parent != Path(".") else root.name
        return path.parent.name

    return files.map(one)


def _bts_samples(folders: list[Path]) -> tuple[list[np.ndarray], list[pd.DataFrame]]:
    """The BTS release-layout samples (every split) and BTSbot's example, as triplets and rows."""
    from alertlib.core.vocab import SPLITS
    from alertlib.io.release import find_versions, read_split

    triplets, rows = [], []
    for folder in folders:
        if find_versions(folder):
            for split in SPLITS:
                data = read_split(folder, split, mmap=False)
                triplets.append(np.asarray(data.triplets, dtype=np.float32))
                rows.append(data.candidates.assign(file=str(data.path), origin=f"{folder.name}/{split}"))
        example = folder / BTS_EXAMPLE_TRIPLETS
        if example.is_file():
            candidates = pd.read_csv(folder / BTS_EXAMPLE_CANDIDATES)
            # BTSbot's example: one bright SN (label 1, a BTS true) and one source that is not.
            candidates["source_set"] = np.where(candidates["label"] == 1, "trues", "")
            triplets.append(np.load(example).astype(np.float32))
            rows.append(candidates.assign(file=str(example), origin="btsbot-example"))
    return triplets, rows


def build_real_set(packet_folders, bts_folders=(), workers: int = 1, progress: bool = False) -> RealSet:
    """Decode, merge, de-duplicate and label real ZTF alerts (see the module docstring)."""
    from alertlib.io.packets import decode_packets

    roots = [Path(p) for p in packet_folders]
    decoded = decode_packets(roots, "fast", workers=workers, progress=progress)
    triplets, rows = [], []
    if "ztf" in decoded.datasets:
        ztf = decoded.datasets["ztf"]
        triplets.append(np.asarray(ztf.triplets, dtype=np.float32))
        rows.append(ztf.candidates.assign(origin=_origin(ztf.candidates["file"], roots)))
    bts_triplets, bts_rows = _bts_samples([Path(f) for f in bts_folders])
    triplets += bts_triplets
    rows += bts_rows
    candidates = pd.concat(rows, ignore_index=True)
    candidates["survey"] = candidates.get("survey", pd.Series("ztf", index=candidates.index)).fillna("ztf")
    all_triplets = np.concatenate(triplets)
    order = np.argsort(candidates["file"].to_numpy(), kind="stable")
    keep = np.sort(order[~candidates["candid"].iloc[order].duplicated().to_numpy()])
    duplicates = len(candidates) - len(keep)
    candidates = candidates.iloc[keep].reset_index(drop=True)
    labels = weak_labels(candidates.drop(columns=["label"], errors="ignore"))
    candidates = pd.concat([candidates.drop(columns=["label"], errors="ignore"), labels], axis=1)
    return RealSet(all_triplets[keep], candidates, decoded.skipped, duplicates)


def write_real_set(real: RealSet, out: str | Path) -> Path:
    """Write a :class:`RealSet` in the BTS release layout (split ``test``), with its summary and skips."""
    from alertlib.core.files import write_table
    from alertlib.core.provenance import code_version
    from alertlib.io.release import write_metadata, write_split
    from alertlib.io.weaklabels import WEAK_LABELS_TABLE

    out = Path(out)
    write_split(out, SPLIT, VERSION, real.triplets, real.candidates)
    write_table(out / "label_summary.csv", real.summary())
    write_table(out / "skipped.csv", real.skipped)
    write_metadata(
        out,
        {
            "kind": "real weak-labelled alerts",
            "alerts": len(real.candidates),
            "objects": int(real.candidates["objectId"].nunique()),
            "duplicates_dropped": real.duplicates,
            "packets_skipped": len(real.skipped),
            "labels": "weak: cross-matches, curated samples and machine scores (alertlib.io.weaklabels)",
            "mapping_table": WEAK_LABELS_TABLE.name,
            "code_version": code_version(),
        },
    )
    return out
