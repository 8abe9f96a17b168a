"""``alertlib pretrain``: pre-train an encoder on galaxies or the synthetic corpus (one job).

See :mod:`alertlib.learn.pretrain` for what the job does and writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alertlib.cli.jobs import add_config_flag, config_from_args

SUPPRESS = argparse.SUPPRESS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from alertlib.learn.pretrain import CORPORA

    parser.add_argument("--corpus", default=SUPPRESS, choices=CORPORA, help="synthetic (default), galaxy or gz1")
    parser.add_argument("--catalog", default=SUPPRESS, help="galaxy catalog file (galaxy) or GZ1 folder (gz1)")
    parser.add_argument(
        "--pretrain-init", default=SUPPRESS, help="init name the checkpoint stands for (default: by corpus)"
    )
    parser.add_argument("--arch", default=SUPPRESS, help="btsbot_cnn (default), braai_vgg, or any timm name")
    parser.add_argument("--epochs", type=int, default=SUPPRESS, help="at most this many epochs (default 25)")
    parser.add_argument("--batch-size", type=int, default=SUPPRESS, help="default 64")
    parser.add_argument("--lr", type=float, default=SUPPRESS, help="default: by initialisation")
    parser.add_argument("--seed", type=int, default=SUPPRESS, help="default 0")
    parser.add_argument("--image-size", type=int, default=SUPPRESS, help="galaxy image side in pixels (default 63)")
    parser.add_argument("--n-classes", type=int, default=SUPPRESS, help="synthetic corpus: number of fractal systems")
    parser.add_argument(
        "--n-per-class", type=int, default=SUPPRESS, help="synthetic corpus: images per system and epoch"
    )
    add_config_flag(parser)
    parser.add_argument("--out", required=True, help="output folder (encoder.pt, results.parquet, curves.csv)")


def run(args: argparse.Namespace) -> int:
    from alertlib.learn.pretrain import run_pretrain

    table = run_pretrain(config_from_args(args), args.out)
    print(table[["arch", "task", "metric", "value"]].to_string(index=False))
    print(f"encoder checkpoint: {Path(args.out) / 'encoder.pt'}")
    return 0
