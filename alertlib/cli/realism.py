"""``alertlib realism``: can a classifier tell simulated triplets from real ZTF ones?

See :mod:`alertlib.sky.realism`.
"""

from __future__ import annotations

import argparse
import json

from alertlib.sky.realism import GROUP_BY, PACKET_SETS, realism_by_set, sky_against_packets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sim_dir", nargs="?", help="simulated alerts in the BTS release layout (alertlib simulate alerts)"
    )
    parser.add_argument("real_packets", nargs="*", help="real ZTF packet files or folders (Avro, Fink Parquet)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10, help="CNN epochs per fold")
    parser.add_argument(
        "--by-set",
        action="store_true",
        help="instead: the statistics critic against each real set of the shared data, each with the sky "
        f"of its class mix ({', '.join(PACKET_SETS)})",
    )
    parser.add_argument("--sets", nargs="+", choices=list(PACKET_SETS), help="with --by-set: these sets only")
    parser.add_argument("--n-sources", type=int, default=600, help="with --by-set: sources of each simulated sky")
    parser.add_argument(
        "--group-by", choices=GROUP_BY, default="exposure", help="with --by-set: real alerts kept whole by"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _run_by_set(args: argparse.Namespace) -> int:
    sets = {name: PACKET_SETS[name] for name in (args.sets or PACKET_SETS)}
    table = realism_by_set(sets, n_sources=args.n_sources, seed=args.seed, group_by=args.group_by, folds=args.folds)
    if args.json:
        print(table.to_json(orient="records"))
        return 0
    columns = ["set", "development", "class_mix", "auc", "auc_low", "auc_high", "n_sim", "n_real", "n_real_groups"]
    print(table[columns].to_string(index=False, float_format="%.3f"))
    print("statistics critic, two-sample ROC AUC: 0.5 = indistinguishable; development = calibrated on")
    return 0


def run(args: argparse.Namespace) -> int:
    from alertlib.core.errors import UserError

    if args.by_set:
        return _run_by_set(args)
    if args.sim_dir is None or not args.real_packets:
        raise UserError("give a simulated folder and real packet files or folders, or --by-set")
    result = sky_against_packets(args.sim_dir, args.real_packets, seed=args.seed, folds=args.folds, epochs=args.epochs)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"two-sample AUC {result['auc']:.3f} [{result['auc_low']:.3f}, {result['auc_high']:.3f}] "
        f"(critic: {result['critic']}; CNN {result['auc_cnn']:.3f}, statistics {result['auc_features']:.3f}); "
        f"{result['n_sim']} simulated vs {result['n_real']} real triplets ({result['n_real_skipped']} real alerts skipped). "
        f"0.5 = indistinguishable."
    )
    return 0
