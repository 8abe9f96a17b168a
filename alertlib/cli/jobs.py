"""Shared by the commands that run one job (``finetune``, ``pretrain``): a config from a JSON file
and the flags given on the command line.

Flags have no argparse defaults (``argparse.SUPPRESS``): a flag the user did not give is absent,
so a value in ``--config FILE`` is kept, and what neither sets comes from the job's own defaults
(:data:`alertlib.learn.finetune.FINETUNE_DEFAULTS`, :data:`alertlib.learn.pretrain.PRETRAIN_DEFAULTS`,
:data:`alertlib.learn.training.TRAINING_DEFAULTS`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alertlib.core.errors import DataNotFound, SettingError

# Flags that are not config keys.
NOT_CONFIG = ("config", "out", "command", "online", "debug", "_module")


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, help="a JSON file of config keys (flags given on the command line win)"
    )


def config_from_args(args: argparse.Namespace) -> dict:
    """The job config: the ``--config`` file's keys, updated with the flags that were given."""
    config: dict = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise DataNotFound(f"config file {path} does not exist")
        try:
            config = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise SettingError(f"config file {path} is not valid JSON: {error}") from error
    given = {key: value for key, value in vars(args).items() if key not in NOT_CONFIG}
    return {**config, **given}
