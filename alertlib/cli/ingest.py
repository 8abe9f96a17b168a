"""``alertlib ingest``: alert packets to datasets in the BTS release layout, and the decoder benchmark.

See :mod:`alertlib.io.ingest`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from alertlib.core.errors import DataNotFound, SettingError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from alertlib.io.ingest import VERSION

    parser.add_argument("paths", nargs="+", help="packet files or folders (searched recursively)")
    parser.add_argument("--out", help="output folder: one dataset per survey and cutout size, plus skipped.csv")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="decoding processes (default: one per core)"
    )
    parser.add_argument("--version-tag", default=VERSION, help=f"dataset version in the file names (default {VERSION})")
    parser.add_argument(
        "--benchmark",
        action="store_true",
        help="time the fast decoder against the astropy reference on PATHS; print JSON; write nothing",
    )


def run(args: argparse.Namespace) -> int:
    from alertlib.io.ingest import benchmark, write_datasets
    from alertlib.io.packets import decode_packets, expand_paths

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise DataNotFound(f"no such file or folder: {', '.join(missing)}")
    if args.benchmark:
        print(json.dumps(benchmark(args.paths)))
        return 0
    if not args.out:
        raise SettingError("--out DIR is required (or use --benchmark)")
    if not expand_paths(args.paths):
        raise DataNotFound(f"no files under {', '.join(args.paths)}")
    decoded = decode_packets(args.paths, workers=args.workers, progress=not args.json)
    write_datasets(decoded, args.out, args.version_tag)
    summary = decoded.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"read {summary['read']} alerts from {summary['files']} files into {args.out}")
    for name, count in summary["written"].items():
        print(f"  written  {name:<14} {count}")
    for reason, count in summary["skipped"].items():
        print(f"  skipped  {reason:<14} {count}")
    print(f"skipped alerts, with file and reason: {Path(args.out) / 'skipped.csv'}")
    return 0
