"""Does the Avro walker pay? Decode speed of ZTF Avro packets with and without it, one core, one run.

Run: ``.venv/bin/python benchmarks/bench_avro_walker.py [FOLDER ...] [--out CSV] [--min-alerts 1000]``

:mod:`alertlib.io.avrofast` (a numba-compiled schema walker, several hundred lines) is kept only if
it makes decoding faster than what it replaces. For each folder of ZTF Avro packets (default: those
of the shared data), three paths decode the same files into normalised triplets and candidate tables
(:func:`alertlib.io.packets.decode_packets`):

- ``walker``: the fast decoder as shipped: the walker finds the fields, then the fast FITS path;
- ``fastavro``: the same fast decoder with the walker switched off (``avro_walker=False``):
  fastavro decodes each record with a projected reader schema that skips the histories, then the
  same fast FITS path;
- ``astropy``: the reference decoder (``fastavro.reader``, ``gzip``, ``astropy.io.fits``).

The file list is repeated until a pass holds ``--min-alerts`` alerts. The three paths run once untimed
(imports, compiled kernels, file cache), then in ``--rounds`` rounds of one pass each, interleaved, so
that a busy moment of a shared machine slows all three alike; each path's best pass gives its
``*_alerts_per_s``, and the ratios of best passes and of median passes are both kept. The three must
give identical triplets and the two fast paths identical candidate tables, or the run stops. The
process is pinned to one CPU (``--no-pin`` to leave it free) and BLAS to one thread. Rows are added to
``--out`` (default ``data/benchmarks/decode/avro-walker_<cpu>.csv``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.paths import shared_data_dir
from alertlib.core.provenance import code_version, cpu_model, version_of
from alertlib.io.packets import decode_packets, expand_paths

FOLDERS = ("ztf", "ztf-spark-snappy", "ztf-one-exposure-2018", "ztf-brokers")
# Path name -> decode_packets' keyword arguments.
PATHS = {
    "walker": {"decoder": "fast", "avro_walker": True},
    "fastavro": {"decoder": "fast", "avro_walker": False},
    "astropy": {"decoder": "astropy"},
}


def check_paths_agree(files: list[Path]) -> int:
    """Decode ``files`` once by each path (untimed); the alerts that became triplets.

    Raises AssertionError when the paths disagree on a triplet, or the two fast paths on a candidate table.
    """
    decoded = {name: decode_packets(files, **options) for name, options in PATHS.items()}
    walker = decoded["walker"].datasets
    for name, other in decoded.items():
        if sorted(other.datasets) != sorted(walker):
            raise AssertionError(f"{name} finds datasets {sorted(other.datasets)}, the walker {sorted(walker)}")
        for dataset, found in other.datasets.items():
            if not np.array_equal(found.triplets, walker[dataset].triplets):
                raise AssertionError(f"{name} and the walker disagree on the triplets of {dataset}")
    for dataset, found in decoded["fastavro"].datasets.items():
        pd.testing.assert_frame_equal(found.candidates, walker[dataset].candidates)
    return sum(len(d.candidates) for d in walker.values())


def interleaved_passes(files: list[Path], rounds: int) -> dict[str, list[float]]:
    """Seconds of each pass of each path over ``files``, the paths taking turns within each round."""
    seconds: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(rounds):
        for name, options in PATHS.items():
            start = time.perf_counter()
            decode_packets(files, **options)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def measure_folder(folder: Path, min_alerts: int, rounds: int) -> dict | None:
    """One row: alerts per second of each path on ``folder``, and their ratios; None without alerts."""
    from threadpoolctl import threadpool_limits

    files = expand_paths(folder)
    with threadpool_limits(limits=1):
        alerts = check_paths_agree(files)
        if alerts == 0:
            return None
        copies = math.ceil(min_alerts / alerts)
        seconds = interleaved_passes(files * copies, rounds)
    per_pass = alerts * copies
    best = {name: per_pass / min(times) for name, times in seconds.items()}
    median = {name: per_pass / statistics.median(times) for name, times in seconds.items()}
    return {
        "folder": folder.name,
        "alerts": alerts,
        "files": len(files),
        "copies": copies,
        "alerts_per_pass": per_pass,
        "rounds": rounds,
        **{f"{name}_alerts_per_s": round(rate, 1) for name, rate in best.items()},
        "walker_over_fastavro": round(best["walker"] / best["fastavro"], 3),
        "walker_over_fastavro_median": round(median["walker"] / median["fastavro"], 3),
        "walker_over_astropy": round(best["walker"] / best["astropy"], 2),
        "fastavro_over_astropy": round(best["fastavro"] / best["astropy"], 2),
    }


def machine_columns() -> dict:
    """Where and with what the row was measured."""
    return {
        "cpu": cpu_model(),
        "cpus_used": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "numba": version_of("numba"),
        "fastavro": version_of("fastavro"),
        "code_version": code_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="ZTF Avro packet folders (default: the shared data's)")
    parser.add_argument("--out", help="CSV to add rows to (default data/benchmarks/decode/avro-walker_<cpu>.csv)")
    parser.add_argument("--min-alerts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="timed passes of each path (interleaved)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    args = parser.parse_args()
    if not args.no_pin:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    folders = [Path(f) for f in args.folders]
    if not folders:
        root = shared_data_dir()
        if root is None:
            raise SystemExit("no folders given and no shared data found (set ALERTLIB_SHARED_DATA)")
        folders = [root / "alert-packets" / name for name in FOLDERS if (root / "alert-packets" / name).is_dir()]
    slug = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")
    out = Path(args.out or f"data/benchmarks/decode/avro-walker_{slug}.csv")
    rows = []
    for folder in folders:
        row = measure_folder(folder, args.min_alerts, args.rounds)
        if row is None:
            print(f"{folder.name}: no alert decodes to a triplet; not benchmarked", flush=True)
            continue
        rows.append({**row, **machine_columns()})
        print(json.dumps(rows[-1]), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    if out.exists():
        table = pd.concat([pd.read_csv(out), table], ignore_index=True)
    table.to_csv(out, index=False)
    print(f"added {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
