"""Run the study: execute the numbered notebooks in order with papermill, for one profile.

Profiles (``alertlib/profiles.yaml``, plus any user file) set the size of everything. The runner
passes the profile's name to each notebook's ``parameters`` cell; the notebooks read the rest of the
profile themselves, so the settings have one source. Executed copies are written atomically to
``runs/<profile>/``. A study that is stopped and restarted loses no finished work: each notebook skips
the runs whose results already exist.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import yaml

from .paths import PACKAGE_DIR, REPO_ROOT

PROFILES_FILE = PACKAGE_DIR / "profiles.yaml"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "alertlib"


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_profiles(extra_file: str | os.PathLike | None = None) -> dict[str, dict]:
    """All profiles: the package's, then those of ``extra_file`` or ``$ALERTLIB_PROFILES`` (which win)."""
    profiles = yaml.safe_load(PROFILES_FILE.read_text())
    extra = extra_file or os.environ.get("ALERTLIB_PROFILES")
    if extra:
        path = Path(extra)
        if not path.is_file():
            raise FileNotFoundError(f"profiles file {path} does not exist (from --profiles-file or $ALERTLIB_PROFILES)")
        profiles.update(yaml.safe_load(path.read_text()) or {})
    return profiles


def load_profile(name: str, extra_file: str | os.PathLike | None = None) -> dict:
    """One profile with its ``inherit`` chain resolved; ``name`` is recorded under ``profile``."""
    profiles = load_profiles(extra_file)
    if name not in profiles:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(sorted(profiles))}")
    chain, current = [], name
    while current is not None:
        if current in chain:
            raise ValueError(f"profile inheritance loops: {' -> '.join([*chain, current])}")
        chain.append(current)
        current = profiles[current].get("inherit")
    resolved: dict = {}
    for link in reversed(chain):
        resolved = _merge(resolved, {k: v for k, v in profiles[link].items() if k != "inherit"})
    resolved["profile"] = name
    return resolved


def notebook_paths(profile: dict) -> list[Path]:
    """The profile's notebooks, in order; each must exist."""
    paths = []
    for stem in profile["notebooks"]:
        path = NOTEBOOKS_DIR / f"{stem}.ipynb"
        if not path.is_file():
            raise FileNotFoundError(f"profile {profile['profile']!r} names notebook {stem}, but {path} does not exist")
        paths.append(path)
    return paths


def run_study(profile_name: str, profiles_file: str | None = None, runs_dir: Path | None = None) -> list[Path]:
    """Execute every notebook of the profile in order; return the executed copies."""
    import papermill as pm
    from tqdm.auto import tqdm

    from .io import atomic_path

    profile = load_profile(profile_name, profiles_file)
    runs_dir = Path(runs_dir or REPO_ROOT / "runs" / profile_name)
    runs_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"profile": profile_name}
    if profiles_file:
        parameters["profiles_file"] = str(Path(profiles_file).resolve())
    executed = []
    bar = tqdm(notebook_paths(profile), desc=f"study[{profile_name}]", unit="notebook")
    for path in bar:
        bar.set_postfix_str(path.stem)
        start = time.perf_counter()
        target = runs_dir / path.name
        with atomic_path(target) as tmp:
            pm.execute_notebook(
                str(path),
                str(tmp),
                parameters=parameters,
                kernel_name=KERNEL_NAME,
                cwd=str(NOTEBOOKS_DIR),
                progress_bar=False,
            )
        executed.append(target)
        tqdm.write(f"{path.stem}: done in {time.perf_counter() - start:.0f} s -> {target}")
    return executed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="default", help="profile name (ci, quick, default, paper, full, or yours)")
    parser.add_argument("--profiles-file", default=None, help="a YAML file with extra profiles")
    parser.add_argument("--runs-dir", default=None, help="where executed notebooks go (default runs/<profile>)")
    parser.add_argument("--list", action="store_true", help="list the profiles and exit")


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name, profile in load_profiles(args.profiles_file).items():
            print(f"{name:10s} {profile.get('description', '')}")
        return 0
    run_study(args.profile, args.profiles_file, Path(args.runs_dir) if args.runs_dir else None)
    return 0
