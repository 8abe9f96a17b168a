"""Study profiles: the one place where the size of a study run is set.

``alertlib/study/profiles.yaml`` holds the package's profiles (``ci``, ``workshop``, ``default``,
``full``, ``paper``); a user's YAML file of the same shape (``--profiles-file`` or
``$ALERTLIB_PROFILES``) adds or overrides profiles. A profile may say ``inherit: <other>`` and
override only what differs. In code, ``profile`` is always the resolved settings (a dict) and
``profile_name`` its name.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from alertlib.core.errors import DataNotFound, ProfileNotFound, SettingError

PROFILES_FILE = Path(__file__).resolve().parent / "profiles.yaml"


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
            raise DataNotFound(f"profiles file {path} does not exist (from --profiles-file or $ALERTLIB_PROFILES)")
        profiles.update(yaml.safe_load(path.read_text()) or {})
    return profiles


def load_profile(profile_name: str, extra_file: str | os.PathLike | None = None) -> dict:
    """One profile with its ``inherit`` chain resolved; its name is recorded under ``profile``."""
    profiles = load_profiles(extra_file)
    if profile_name not in profiles:
        raise ProfileNotFound(
            f"unknown profile {profile_name!r}; known: {', '.join(sorted(profiles))} "
            "(add your own in a YAML file and pass it with --profiles-file)"
        )
    chain, current = [], profile_name
    while current is not None:
        if current in chain:
            raise SettingError(f"profile inheritance loops: {' -> '.join([*chain, current])}")
        chain.append(current)
        current = profiles[current].get("inherit")
    resolved: dict = {}
    for link in reversed(chain):
        resolved = _merge(resolved, {k: v for k, v in profiles[link].items() if k != "inherit"})
    resolved["profile"] = profile_name
    return resolved
