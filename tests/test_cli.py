"""The command line speaks to people: user errors exit 2 with one line, and a --config file's values
are kept unless a flag overrides them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from alertlib.cli import build_parser, main
from alertlib.cli.jobs import config_from_args


def test_config_file_values_are_not_overwritten_by_flag_defaults(tmp_path):
    config = tmp_path / "job.json"
    config.write_text(json.dumps({"data": "/somewhere", "epochs": 2, "lr": 0.005, "crop": 33}))
    args = build_parser().parse_args(["finetune", "--config", str(config), "--out", str(tmp_path / "o"), "--seed", "4"])
    merged = config_from_args(args)
    assert merged == {"data": "/somewhere", "epochs": 2, "lr": 0.005, "crop": 33, "seed": 4}
    args = build_parser().parse_args(["pretrain", "--config", str(config), "--epochs", "7", "--out", "x"])
    assert config_from_args(args)["epochs"] == 7  # a flag given on the command line wins


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["finetune", "--data", "/nonexistent", "--out", "OUT"], "is not a folder"),
        (["finetune", "--out", "OUT"], "give the data"),
        (["pretrain", "--corpus", "galaxy", "--catalog", "/nonexistent.parquet", "--out", "OUT"], "does not exist"),
        (["study", "--profile", "no-such-profile"], "unknown profile"),
        (["ingest", "/nonexistent"], "no such file or folder"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "alertlib", "--debug", "finetune", "--data", "/nonexistent", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "Traceback" in result.stderr and "LayoutError" in result.stderr
