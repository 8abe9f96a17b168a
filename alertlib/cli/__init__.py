"""The ``alertlib`` command line.

Each subcommand is a module of this package with ``add_arguments(parser)`` and ``run(args) -> int``;
it parses the command line and calls the library. Modules keep heavy imports inside ``run`` so that
``alertlib --help`` stays fast. Offline mode is decided here, before any module is imported. A user
error (:class:`alertlib.core.errors.UserError`, or a missing file) prints one line and exits with
status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from alertlib import __version__, set_offline_default
from alertlib.core.errors import UserError

# name -> (module, one-line help). Add a line here when a module gains a subcommand.
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("alertlib.cli.info", "versions, device, offline mode, real data and weight files found"),
    "study": ("alertlib.cli.study", "run the numbered notebooks in order with papermill, for one profile"),
    "simulate": (
        "alertlib.cli.simulate",
        "simulate Galaxy Zoo-like galaxies with votes, or ZTF-like alerts (BTS layout)",
    ),
    "realism": (
        "alertlib.cli.realism",
        "can a classifier tell simulated triplets from real ZTF ones? (two-sample AUC)",
    ),
    "ingest": ("alertlib.cli.ingest", "alert packets (ZTF, ATLAS, Rubin) to triplet datasets; --benchmark the decoder"),
    "labels": (
        "alertlib.cli.labels",
        "the real weak-labelled alert set: packets and BTS samples with cross-match labels",
    ),
    "score": ("alertlib.cli.score", "score alert packets or a release-layout folder with a fine-tuned model"),
    "export": ("alertlib.cli.export", "a fine-tuned model as an ONNX file, with its preprocessing in the metadata"),
    "models": ("alertlib.cli.models", "parameters and multiply-adds per alert of every study architecture"),
    "benchmark": (
        "alertlib.cli.benchmark",
        "inference speed and memory per model, beside btsbot's, against the device limit",
    ),
    "pretrain": ("alertlib.cli.pretrain", "pre-train an encoder on galaxies or the synthetic corpus"),
    "finetune": ("alertlib.cli.finetune", "fine-tune one model on alert triplets and evaluate it"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertlib",
        description="Pre-training vision models for survey alert classification: a reproducible study kit.",
    )
    parser.add_argument("--version", action="version", version=f"alertlib {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    parser.add_argument(
        "--online",
        action="store_true",
        help="allow downloads from the Hugging Face hub (default: offline, HF_HUB_OFFLINE=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user error prints one line and returns 2 (``--debug``: the traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Decide offline mode before any subcommand module (and so huggingface_hub) is imported.
    set_offline_default(online="--online" in argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args._module.run(args) or 0)
    except (UserError, FileNotFoundError) as error:
        if args.debug:
            raise
        print(f"alertlib {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"alertlib {args.command}: interrupted; finished work is kept (files are written atomically)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
