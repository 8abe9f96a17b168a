"""``alertlib simulate``: Galaxy Zoo-like galaxies with votes, or ZTF-like alerts in the BTS layout.

See :mod:`alertlib.sky.simulate`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from alertlib.sky.simulate import DTYPES, cached_sky, simulate_alerts, simulate_galaxies, sources_for_alerts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    galaxies = sub.add_parser(
        "galaxies", help="Galaxy Zoo-like galaxies with volunteer votes (galaxy-datasets catalog)"
    )
    galaxies.add_argument("--n", type=int, required=True, help="number of galaxies")
    galaxies.add_argument("--seed", type=int, default=0)
    galaxies.add_argument("--out", default=None, help="output folder (default: the cache under data/sim/)")
    galaxies.add_argument("--image-size", type=int, default=64, help="pixels per side (default 64)")
    galaxies.add_argument("--volunteers", type=int, default=40, help="volunteers per galaxy (default 40)")
    galaxies.add_argument("--no-png", action="store_true", help="skip the per-galaxy PNG files (images.npy only)")
    alerts = sub.add_parser("alerts", help="ZTF-like alert triplets in the BTS release layout")
    size = alerts.add_mutually_exclusive_group(required=True)
    size.add_argument("--n-sources", type=int, help="number of sources (each gives several alerts)")
    size.add_argument(
        "--n-alerts",
        type=int,
        help="instead: the fewest whole batches of sources giving this many alerts or more "
        "(409000: the real BTS release's size; written in chunks, never whole in memory)",
    )
    alerts.add_argument("--seed", type=int, default=0)
    alerts.add_argument("--out", default=None, help="output folder (default: the cache under data/sim/)")
    alerts.add_argument("--max-alerts", type=int, default=8, help="alerts kept per source (default 8)")
    alerts.add_argument("--n-max", type=int, default=100, help="training cap on alerts per source (default 100)")
    alerts.add_argument(
        "--n-test-sources",
        type=int,
        default=None,
        help="a test split of this many more sources (the others split 90/10 into train and val)",
    )
    alerts.add_argument("--dtype", choices=DTYPES, default="float32", help="triplet files' type (default float32)")
    alerts.add_argument("--exposures", type=int, default=None, help="a sky of this many shared exposures")
    alerts.add_argument(
        "--class-mix",
        default="bts",
        help="source classes: the study's (bts, default), like the raw ZTF stream (ztf-stream), or "
        "another of alertlib.sky.sources.CLASS_MIXES",
    )
    for p in (galaxies, alerts):
        p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_alerts(args: argparse.Namespace, progress: bool) -> Path:
    from alertlib.core.errors import UserError
    from alertlib.sky.sources import CLASS_MIXES

    if args.class_mix not in CLASS_MIXES:
        raise UserError(f"--class-mix {args.class_mix!r} is not one of {sorted(CLASS_MIXES)}")
    n_sources = args.n_sources
    if n_sources is None:
        n_sources = sources_for_alerts(args.n_alerts, args.seed, args.max_alerts, args.class_mix)
    options = {
        "max_alerts": args.max_alerts,
        "n_max": args.n_max,
        "class_mix": args.class_mix,
        "n_test_sources": args.n_test_sources,
        "dtype": args.dtype,
        "exposures": args.exposures,
    }
    if args.out:
        return simulate_alerts(n_sources, args.seed, args.out, progress=progress, **options)
    return cached_sky("alerts", n_sources, args.seed, progress=progress, **options)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    progress = not args.quiet
    if args.what == "galaxies":
        options = {"image_size": args.image_size, "n_volunteers": args.volunteers}
        if args.out:
            path = simulate_galaxies(
                args.n, args.seed, args.out, write_png=not args.no_png, progress=progress, **options
            )
        else:
            path = cached_sky("galaxies", args.n, args.seed, progress=progress, **options)
    else:
        path = _run_alerts(args, progress)
    metadata = json.loads((Path(path) / "dataset.json").read_text())
    summary = {k: metadata[k] for k in ("kind", "simulator_version", "seed") if k in metadata}
    if "splits" in metadata:
        summary["splits"] = metadata["splits"]
    print(f"{path}  ({time.perf_counter() - start:.1f} s)\n{json.dumps(summary)}")
    return 0
