"""``alertlib study``: run the numbered notebooks in order with papermill, for one profile."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from alertlib.study.executors import EXECUTORS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default="default", help="profile name (ci, workshop, default, full, paper, or yours)"
    )
    parser.add_argument("--profiles-file", default=None, help="a YAML file with extra profiles")
    parser.add_argument("--runs-dir", default=None, help="where executed notebooks go (default runs/<profile>)")
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="where the training jobs run: local (in the notebook, one after the other), submitit-local "
        "(a process each on this machine), slurm (a SLURM job array with the profile's executor: block); "
        "default $ALERTLIB_EXECUTOR, else the profile's executor: name, else local",
    )
    parser.add_argument("--list", action="store_true", help="list the profiles and exit")


def run(args: argparse.Namespace) -> int:
    from alertlib.study.executors import EXECUTOR_ENV, export_settings, settings_from_profile
    from alertlib.study.profiles import load_profile, load_profiles
    from alertlib.study.runner import run_study

    if args.list:
        for name, profile in load_profiles(args.profiles_file).items():
            print(f"{name:10s} {profile.get('description', '')}")
        return 0
    profile = load_profile(args.profile, args.profiles_file)
    # The notebooks' kernels inherit the choice: papermill passes them only the profile's name.
    export_settings(settings_from_profile(profile, args.executor or os.environ.get(EXECUTOR_ENV)))
    run_study(args.profile, args.profiles_file, Path(args.runs_dir) if args.runs_dir else None)
    return 0
