"""``alertlib finetune``: fine-tune one model on alert triplets and evaluate it (one job).

See :mod:`alertlib.learn.finetune` for what the job does and writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alertlib.cli.jobs import add_config_flag, config_from_args

SUPPRESS = argparse.SUPPRESS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from alertlib.learn.finetune import TASKS

    parser.add_argument("--data", default=SUPPRESS, help="folder in the BTS release layout")
    parser.add_argument("--version", default=SUPPRESS, help="dataset version (default: the only one)")
    parser.add_argument("--arch", default=SUPPRESS, help="btsbot_cnn (default), braai_vgg, or any timm name")
    parser.add_argument(
        "--init",
        default=SUPPRESS,
        help="scratch (default) | imagenet | galaxyzoo | synthetic | galaxy_sim | ... (with --checkpoint)",
    )
    parser.add_argument("--checkpoint", default=SUPPRESS, help="encoder checkpoint from `alertlib pretrain`")
    parser.add_argument("--weights-file", default=SUPPRESS, help="local ImageNet/Zoobot weight file")
    parser.add_argument("--task", default=SUPPRESS, choices=TASKS, help="bts (default) or multiclass")
    parser.add_argument("--label-column", default=SUPPRESS, help="class column for --task multiclass")
    parser.add_argument("--epochs", type=int, default=SUPPRESS, help="at most this many epochs (default 25)")
    parser.add_argument("--batch-size", type=int, default=SUPPRESS, help="default 64")
    parser.add_argument(
        "--lr", type=float, default=SUPPRESS, help="default: by initialisation (alertlib.learn.training)"
    )
    parser.add_argument("--seed", type=int, default=SUPPRESS, help="default 0")
    parser.add_argument(
        "--train-fraction", type=float, default=SUPPRESS, help="fraction of training sources (default 1)"
    )
    parser.add_argument(
        "--n-max", type=int, default=SUPPRESS, help="at most this many alerts per training source (default 100)"
    )
    parser.add_argument("--crop", type=int, default=SUPPRESS, help="side of a centred crop of the stamps")
    parser.add_argument("--input-size", type=int, default=SUPPRESS)
    parser.add_argument("--channels-last", action="store_true", default=SUPPRESS)
    parser.add_argument("--compile", action="store_true", default=SUPPRESS, help="torch.compile the model")
    add_config_flag(parser)
    parser.add_argument("--out", required=True, help="output folder (results.parquet, model.pt, ...)")


def run(args: argparse.Namespace) -> int:
    from alertlib.core.errors import SettingError
    from alertlib.learn.finetune import run_finetune

    config = config_from_args(args)
    if not config.get("data"):
        raise SettingError("give the data: --data FOLDER (the BTS release layout) or a 'data' key in --config")
    table = run_finetune(config, args.out)
    shown = ["roc_auc", "source_roc_auc", "balanced_accuracy", "f1", "macro_f1", "epochs_trained", "gate_passed"]
    print(table[table["metric"].isin(shown)][["arch", "init", "metric", "value"]].to_string(index=False))
    print(f"results: {Path(args.out) / 'results.parquet'}")
    return 0
