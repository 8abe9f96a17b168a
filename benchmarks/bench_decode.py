"""Decode speed, one core: packets to normalised triplets and candidate tables, per packet folder.

Run: ``.venv/bin/python benchmarks/bench_decode.py [FOLDER ...] [--out CSV] [--min-alerts 1000]``

For each folder (default: every folder of real packets under the shared data), one row:

- ``fast_alerts_per_s`` and ``astropy_alerts_per_s``: :func:`alertlib.io.ingest.benchmark`, the fast
  decoder and the astropy reference on the same files in the same run (the file list repeated until a
  pass holds ``--min-alerts`` alerts; best of at least 3 passes), and their ``ratio``;
- ``gunzip_ceiling_alerts_per_s``: the alerts per second that gunzipping the stamps alone allows
  (ISA-L, the fast decoder's own inflate), timed the same way: no decoder that inflates the stamps can
  beat it, so it tells how far the rest of the decoder is from free;
- ``ceiling_ratio``: that ceiling over the reference's rate, the largest ratio an inflating decoder
  can reach on this machine, and ``rest_us_for_10x``: the microseconds per alert left for everything
  but inflating (reading the packet, the Avro or Parquet, the FITS, normalising, the table) if the
  decoder is to be 10x the reference; negative where even a decoder that only inflated would fall
  short; ``normalise_us``: what normalising an alert's three decoded stamps alone costs, one of
  those steps (bit-identical to the reference, so numpy's BLAS norms);
- the machine (CPU model, Python, numba), the code version and the date.

The process is pinned to one CPU (``--no-pin`` to leave it free) and BLAS to one thread, so the
figures are one core's. Rows are added to ``--out`` (default
``data/benchmarks/decode/<cpu>.csv``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import time
from pathlib import Path

import pandas as pd

from alertlib.core.paths import shared_data_dir
from alertlib.core.provenance import code_version, cpu_model, version_of
from alertlib.io import packets
from alertlib.io.ingest import benchmark

FOLDERS = ("ztf", "ztf-spark-snappy", "fink-ztf-parquet", "atlas", "lsst", "fink-lsst-parquet")


def gunzip_ceiling(folder: Path, min_alerts: int, repeats: int = 3) -> float:
    """Alerts per second when each alert costs only the gunzip of its gzipped stamps."""
    alerts = [a for f in packets.expand_paths(folder) for a in packets.read_packet_file(f)[0]]
    stamps = [s for a in alerts for s in a.cutouts.values() if s is not None and s[:2] == b"\x1f\x8b"]
    if not alerts or not stamps:  # no gzipped stamps (ATLAS, Rubin): no such ceiling
        return float("nan")
    copies = -(-min_alerts // len(alerts))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(copies):
            for stamp in stamps:
                packets._gunzip(stamp)
        best = min(best, time.perf_counter() - start)
    return len(alerts) * copies / best if best > 0 else float("inf")


def normalise_us(folder: Path, repeats: int = 3) -> float:
    """Microseconds per alert for normalising its decoded stamps alone (the fast decoder's step)."""
    import numpy as np

    stamps = []
    for alert in (a for f in packets.expand_paths(folder) for a in packets.read_packet_file(f)[0]):
        try:
            triplet, _ = packets.alert_to_triplet(alert)
        except packets.PacketError:
            continue
        images = {c: packets.STAMP_DECODERS["fast"](s) for c, s in alert.cutouts.items() if s is not None}
        stamps.append((triplet.shape, images))
    if not stamps:
        return float("nan")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for shape, images in stamps:
            packets._normalise_channels(np.zeros(shape, dtype=np.float32), images)
        best = min(best, time.perf_counter() - start)
    return best / len(stamps) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="packet folders (default: the shared data's)")
    parser.add_argument("--out", help="CSV to append rows to (default data/benchmarks/decode/<cpu>.csv)")
    parser.add_argument("--min-alerts", type=int, default=1000)
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
    cpu = cpu_model()
    out = Path(args.out or f"data/benchmarks/decode/{re.sub(r'[^a-z0-9]+', '-', cpu.lower()).strip('-')}.csv")
    rows = []
    for folder in folders:
        try:
            result = benchmark([folder], min_alerts=args.min_alerts)
        except ValueError as error:  # e.g. simulated Rubin packets whose cutouts are all null
            print(f"{folder.name}: not benchmarked: {error}", flush=True)
            continue
        ceiling = gunzip_ceiling(folder, args.min_alerts)
        row = {
            "folder": folder.name,
            **{k: v for k, v in result.items() if k not in ("passes", "cpu")},
            "gunzip_ceiling_alerts_per_s": round(ceiling, 1),
            "ceiling_ratio": round(ceiling / result["astropy_alerts_per_s"], 2),
            "rest_us_for_10x": round(1e6 / (10 * result["astropy_alerts_per_s"]) - 1e6 / ceiling, 1),
            "normalise_us": round(normalise_us(folder), 1),
            "cpu": cpu,
            "cpus_used": len(os.sched_getaffinity(0)),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numba": version_of("numba"),
            "code_version": code_version(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    if out.exists():  # earlier rows may lack newer columns: rewrite the whole table
        table = pd.concat([pd.read_csv(out), table], ignore_index=True)
    table.to_csv(out, index=False)
    print(f"added {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
