"""``alertlib labels``: build the real weak-labelled alert set from packets and BTS samples.

Decodes every packet under PATHS, adds the BTS release-layout samples and BTSbot's example given
with ``--bts``, removes duplicates (same ``candid``), labels each alert from its cross-matches,
curated sample or machine scores (:mod:`alertlib.io.weaklabels`) and writes the set in the BTS
release layout (split ``test``) with ``label_summary.csv`` (alerts and objects per class and label
source) and ``skipped.csv``.
"""

from __future__ import annotations

import argparse

from alertlib.core.errors import DataNotFound


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="packet files or folders (searched recursively)")
    parser.add_argument(
        "--bts", nargs="*", default=[], help="folders of real BTS samples (release layout, BTSbot example)"
    )
    parser.add_argument("--out", required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from alertlib.io.realset import build_real_set, write_real_set

    missing = [p for p in [*args.paths, *args.bts] if not Path(p).exists()]
    if missing:
        raise DataNotFound(f"no such file or folder: {', '.join(missing)}")
    real = build_real_set(args.paths, args.bts, progress=True)
    out = write_real_set(real, args.out)
    print(f"{len(real.candidates)} alerts of {real.candidates['objectId'].nunique()} objects written to {out}")
    print(f"({real.duplicates} duplicate alerts dropped, {len(real.skipped)} packets skipped: {out / 'skipped.csv'})")
    print(real.summary().to_string(index=False))
    return 0
