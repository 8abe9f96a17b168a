"""Decode speed: packets to normalised triplets and candidate tables, per packet folder, on one core
against the inflate-only ceiling, and with 2 worker processes against 1.

Run: ``.venv/bin/python benchmarks/bench_decode.py [FOLDER ...] [--out CSV] [--min-alerts 1000]``

For each folder (default: every folder of real packets under the shared data), one row:

- ``fast_alerts_per_s`` and ``astropy_alerts_per_s``: :func:`alertlib.io.ingest.benchmark`, the fast
  decoder and the astropy reference on the same files in the same run (the file list repeated until a
  pass holds ``--min-alerts`` alerts; best of at least 3 passes), and their ``ratio``;
- ``gunzip_ceiling_alerts_per_s``: the alerts per second that gunzipping the stamps alone allows
  (ISA-L, the fast decoder's own inflate): no decoder that inflates the stamps can beat it, so it
  tells how far the rest of the decoder is from free. It is timed in turns with the fast decoder on
  the same alerts (``one_core_alerts_per_s``, best pass of each, so that a busy moment of a shared
  machine slows both alike); ``ceiling_fraction`` is the one over the other (the goal: 0.5 for ZTF Avro);
- ``ceiling_ratio``: that ceiling over the reference's rate, the largest ratio an inflating decoder
  can reach on this machine, and ``rest_us_for_10x``: the microseconds per alert left for everything
  but inflating (reading the packet, the Avro or Parquet, the FITS, normalising, the table) if the
  decoder is to be 10x the reference; negative where even a decoder that only inflated would fall
  short; ``normalise_us``: what normalising an alert's three decoded stamps alone costs, one of
  those steps (bit-identical to the reference, so numpy's BLAS norms);
- ``one_worker_alerts_per_s``, ``two_workers_alerts_per_s`` and ``workers_speedup`` (ZTF Avro
  folders, whose names start with ``ztf``): :func:`alertlib.io.packets.decode_packets` end to end with
  ``workers=1`` (in the process) and ``workers=2`` (a pool of two processes, started within the timed
  call), the file list repeated until a pass holds ``--workers-min-alerts`` alerts (2000), best of
  ``--rounds`` passes taken in turns; ``workers_alerts_per_pass``;
- the machine (CPU model, Python, numba, its 1-minute load at the end of the folder), the code version
  and the date.

The process is pinned to one CPU (``--no-pin`` to leave it free) and BLAS to one thread, so the
figures are one core's; the workers' passes run on every CPU the process was given. Rows are added
to ``--out`` (default ``data/benchmarks/decode/<cpu>.csv``).
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

from alertlib.core.paths import packet_folders
from alertlib.core.provenance import code_version, cpu_model, version_of
from alertlib.io import packets
from alertlib.io.ingest import benchmark

FOLDERS = (
    "ztf",
    "ztf-spark-snappy",
    "ztf-one-exposure-2018",
    "ztf-brokers",
    "fink-ztf-parquet",
    "atlas",
    "lsst",
    "fink-lsst-parquet",
)


def _gzipped_stamps(files: list[Path]) -> tuple[int, list[bytes]]:
    """The alerts read from ``files`` and their gzipped stamps."""
    alerts = [a for f in files for a in packets.read_packet_file(f)[0]]
    return len(alerts), [s for a in alerts for s in a.cutouts.values() if s is not None and s[:2] == b"\x1f\x8b"]


def one_core_against_ceiling(folder: Path, min_alerts: int, rounds: int = 5) -> dict:
    """The fast decoder's alerts per second and the inflate-only ceiling, timed in turns on the same alerts.

    A pass decodes the file list repeated until it holds ``min_alerts`` alerts
    (:func:`alertlib.io.packets.decode_packets`, the whole pipeline: files, records, stamps, triplets,
    the table), or gunzips the same alerts' stamps alone; the best of ``rounds`` passes of each counts.
    """
    from threadpoolctl import threadpool_limits

    files = packets.expand_paths(folder)
    n_alerts, stamps = _gzipped_stamps(files)
    if not n_alerts or not stamps:  # no gzipped stamps (ATLAS, Rubin): no such ceiling
        return {"one_core_alerts_per_s": float("nan"), "gunzip_ceiling_alerts_per_s": float("nan")}
    copies = -(-min_alerts // n_alerts)
    decoded = packets.decode_packets(files)  # untimed: file cache, compiled kernels
    alerts = sum(len(d.candidates) for d in decoded.datasets.values())
    best = {"decode": float("inf"), "gunzip": float("inf")}
    with threadpool_limits(limits=1):
        for _ in range(rounds):
            start = time.perf_counter()
            packets.decode_packets(files * copies)
            best["decode"] = min(best["decode"], time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(copies):
                for stamp in stamps:
                    packets._gunzip(stamp)
            best["gunzip"] = min(best["gunzip"], time.perf_counter() - start)
    one_core = alerts * copies / best["decode"]
    ceiling = n_alerts * copies / best["gunzip"]
    return {
        "one_core_alerts_per_s": round(one_core, 1),
        "gunzip_ceiling_alerts_per_s": round(ceiling, 1),
        "ceiling_fraction": round(one_core / ceiling, 3),
    }


def workers_speedup(folder: Path, min_alerts: int = 2000, rounds: int = 3) -> dict:
    """``decode_packets`` end to end with 2 worker processes against 1 (in the process), in turns."""
    files = packets.expand_paths(folder)
    decoded = packets.decode_packets(files)
    alerts = sum(len(d.candidates) for d in decoded.datasets.values())
    copies = -(-min_alerts // alerts)
    best = {1: float("inf"), 2: float("inf")}
    for _ in range(rounds):
        for count in best:
            start = time.perf_counter()
            packets.decode_packets(files * copies, workers=count)
            best[count] = min(best[count], time.perf_counter() - start)
    rates = {count: alerts * copies / seconds for count, seconds in best.items()}
    return {
        "workers_alerts_per_pass": alerts * copies,
        "one_worker_alerts_per_s": round(rates[1], 1),
        "two_workers_alerts_per_s": round(rates[2], 1),
        "workers_speedup": round(rates[2] / rates[1], 2),
    }


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


def _folders(given: list[str]) -> list[Path]:
    return packet_folders(given, FOLDERS)


def one_core_row(folder: Path, min_alerts: int) -> dict | None:
    """The one-core figures of a folder (the process pinned by the caller), or None when nothing decodes."""
    try:
        result = benchmark([folder], min_alerts=min_alerts)
    except ValueError as error:  # e.g. simulated Rubin packets whose cutouts are all null
        print(f"{folder.name}: not benchmarked: {error}", flush=True)
        return None
    ceiling = one_core_against_ceiling(folder, min_alerts)
    return {
        "folder": folder.name,
        **{k: v for k, v in result.items() if k not in ("passes", "cpu")},
        **ceiling,
        "ceiling_ratio": round(ceiling["gunzip_ceiling_alerts_per_s"] / result["astropy_alerts_per_s"], 2),
        "rest_us_for_10x": round(
            1e6 / (10 * result["astropy_alerts_per_s"]) - 1e6 / ceiling["gunzip_ceiling_alerts_per_s"], 1
        ),
        "normalise_us": round(normalise_us(folder), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="packet folders (default: the shared data's)")
    parser.add_argument("--out", help="CSV to append rows to (default data/benchmarks/decode/<cpu>.csv)")
    parser.add_argument("--min-alerts", type=int, default=1000)
    parser.add_argument("--workers-min-alerts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="passes of each worker count, in turns")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    args = parser.parse_args()
    all_cpus = os.sched_getaffinity(0)
    cpu = cpu_model()
    out = Path(args.out or f"data/benchmarks/decode/{re.sub(r'[^a-z0-9]+', '-', cpu.lower()).strip('-')}.csv")
    rows = []
    for folder in _folders(args.folders):
        if not args.no_pin:
            os.sched_setaffinity(0, {min(all_cpus)})
        row = one_core_row(folder, args.min_alerts)
        if row is None:
            continue
        cpus_used = len(os.sched_getaffinity(0))
        os.sched_setaffinity(0, all_cpus)  # the workers' passes use every CPU given
        if folder.name.startswith("ztf") and len(all_cpus) >= 2:
            row.update(workers_speedup(folder, args.workers_min_alerts, args.rounds))
        row.update(
            cpu=cpu,
            cpus_used=cpus_used,
            cpu_count=os.cpu_count(),
            python=platform.python_version(),
            numba=version_of("numba"),
            code_version=code_version(),
            date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            load_avg_1m=round(os.getloadavg()[0], 2),
        )
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
