"""``alertlib models``: every architecture of the study with its parameters and multiply-adds per alert.

Kept apart from :mod:`alertlib.learn.models` so that ``alertlib --help`` does not import torch.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="extra timm architecture names to list beside the study's")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--input-size", type=int, default=None, help="one input side for every model")


def model_table(names: list[str] | None = None, input_size: int | None = None) -> list[dict]:
    """``model_cost`` of every study architecture, then of each extra name."""
    from alertlib.learn.models import STUDY_ARCHS, model_cost

    names = list(dict.fromkeys([*STUDY_ARCHS, *(names or [])]))
    return [model_cost(name, input_size) for name in names]


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    rows = model_table(args.names, args.input_size)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'arch':28s} {'input':>5s} {'params':>12s} {'MMAC/alert':>11s}")
    for row in rows:
        print(f"{row['arch']:28s} {row['input_size']:5d} {row['params']:12,d} {row['macs'] / 1e6:11.1f}")
    return 0
