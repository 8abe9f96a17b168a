"""Provenance: the code version, the machine, and seeding, recorded with every result."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from functools import lru_cache

from alertlib import __version__
from alertlib.core.paths import REPO_ROOT

# What a study run itself rewrites in the tracked tree (figures, the README headline, benchmark
# tables): changes there are outputs, not code, and do not make the code version "dirty".
GENERATED_PATHS = ("figures", "README.md", "data")


@lru_cache(maxsize=1)
def code_version() -> str:
    """``alertlib <version>+<git commit>[-dirty]``, or the package version outside a git checkout.

    ``-dirty`` means tracked files other than the study's own outputs (:data:`GENERATED_PATHS`)
    differ from the commit. ``$ALERTLIB_CODE_VERSION`` overrides it, for a copy of a checkout made
    without its git history (e.g. a working tree sent to a GPU machine: set it to the commit the
    copy was made from).
    """
    if os.environ.get("ALERTLIB_CODE_VERSION"):
        return f"{__version__}+{os.environ['ALERTLIB_CODE_VERSION']}"
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        excluded = [f":(exclude){path}" for path in GENERATED_PATHS]
        changed = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
        return f"{__version__}+{commit}{'-dirty' if changed else ''}"
    except (OSError, subprocess.SubprocessError):
        return __version__


def _git(*arguments: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *arguments], capture_output=True, text=True, timeout=5, check=True
    )
    return out.stdout.strip()


def cpu_model() -> str:
    """The CPU model name as the kernel reports it (falls back to ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version_of(package: str) -> str:
    """An installed distribution's version, or "" when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def machine_stamp() -> dict:
    """Facts about the machine that a timing or a result depends on."""
    import torch

    stamp = {
        "cpu_model": cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda or "",
        "gpu_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
        "cudnn_version": (torch.backends.cudnn.version() or "") if torch.cuda.is_available() else "",
        "timm_version": version_of("timm"),
        "python_version": platform.python_version(),
        "hostname": platform.node(),
    }
    return stamp


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so that a run can be repeated exactly."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy global generator that libraries still use
    torch.manual_seed(seed)
