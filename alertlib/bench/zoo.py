"""The benchmark's models: ours (:func:`alertlib.learn.models.create_model`) and btsbot's classes for the same architecture.

The btsbot package cannot be imported whole without its heavy dependencies; only its
``architectures.py`` file is loaded (:func:`load_btsbot_architectures`), which needs torch and timm.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from alertlib.core.vocab import STAMP_SIZE

IMPLS = ("alertlib", "btsbot")

# Our architecture name -> the btsbot class that builds the same network.
BTSBOT_CLASSES = {
    "btsbot_cnn": "um_cnn",
    "convnext_pico": "ConvNeXt",
    "convnext_nano": "ConvNeXt",
    "maxvit_tiny_rw_224": "MaxViT",
}
# The authors' head sizes (STUDY_NOTES.md), in btsbot's config keys.
BTSBOT_HEAD_CONFIG = {"fc1_neurons": 256, "fc2_neurons": 8, "dropout": 0.7}
# Models too slow to benchmark on a laptop CPU (MaxViT sees 224x224 inputs): GPU only by default.
GPU_ONLY_MODELS = ("maxvit_tiny_rw_224",)


def btsbot_architectures_file() -> Path:
    """Where btsbot's ``architectures.py`` is: ``$ALERTLIB_BTSBOT_ARCHITECTURES``, else the installed package.

    Raises
    ------
    FileNotFoundError
        When btsbot is not installed; says how to install it.
    """
    env = os.environ.get("ALERTLIB_BTSBOT_ARCHITECTURES")
    if env:
        path = Path(env)
        if not path.is_file():
            raise FileNotFoundError(f"$ALERTLIB_BTSBOT_ARCHITECTURES points to {path}, which does not exist")
        return path
    # find_spec on a top-level package locates it without running its __init__ (which needs `datasets`).
    spec = importlib.util.find_spec("btsbot")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "architectures.py"
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        "the btsbot package is not installed, so its models cannot be benchmarked side by side: "
        "run `.venv/bin/pip install --no-deps btsbot==2.0.7` (make setup does), or set "
        "$ALERTLIB_BTSBOT_ARCHITECTURES to a copy of btsbot/architectures.py, or pass --impls alertlib"
    )


def load_btsbot_architectures():
    """btsbot's ``architectures`` module, loaded from its file alone (the package import needs ``datasets``)."""
    module = sys.modules.get("_btsbot_architectures")
    if module is not None:
        return module
    path = btsbot_architectures_file()
    spec = importlib.util.spec_from_file_location("_btsbot_architectures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["_btsbot_architectures"] = module
    return module


def btsbot_config(arch: str) -> dict:
    """The config btsbot's class needs to build ``arch`` from scratch, with the same sizes as ours."""
    from alertlib.learn.models import BTSBOT_CNN_CONFIG

    if arch not in BTSBOT_CLASSES:
        raise KeyError(f"btsbot has no class for {arch!r}; it has: {', '.join(BTSBOT_CLASSES)}")
    if arch == "btsbot_cnn":
        return {**BTSBOT_CNN_CONFIG, "image_size": STAMP_SIZE}
    return {"model_kind": arch, "pretrained": False, **BTSBOT_HEAD_CONFIG}


def build_model(arch: str, impl: str = "alertlib"):
    """A freshly initialised model: ours (:func:`alertlib.learn.models.create_model`) or btsbot's class for ``arch``."""
    if impl == "alertlib":
        from alertlib.learn.models import create_model

        return create_model(arch, "scratch", num_outputs=1)
    if impl == "btsbot":
        architectures = load_btsbot_architectures()
        return getattr(architectures, BTSBOT_CLASSES[arch])(btsbot_config(arch))
    raise ValueError(f"unknown implementation {impl!r}; use one of {IMPLS}")


def count_macs(model, images) -> int:
    """Multiply-adds of one forward pass of ``images`` (FLOPs / 2, ``torch.utils.flop_counter``)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(images)
    return int(counter.get_total_flops() // 2)


def model_params_and_macs(arch: str, impl: str = "alertlib") -> tuple[int, int]:
    """Parameters and multiply-adds per 63x63 alert: :func:`alertlib.learn.models.model_cost` for ours, counted for btsbot's."""
    import torch

    from alertlib.learn.models import count_parameters, model_cost

    if impl == "alertlib":
        cost = model_cost(arch)
        return int(cost["params"]), int(cost["macs"])
    model = build_model(arch, impl).eval()
    return count_parameters(model), count_macs(model, torch.zeros(1, 3, STAMP_SIZE, STAMP_SIZE))
