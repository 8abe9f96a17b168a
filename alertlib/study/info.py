"""Show what alertlib sees: library versions, the compute device, the Hugging Face hub, real data and weights."""

from __future__ import annotations

import socket

HUB_HOST = "huggingface.co"


def hub_status(timeout_s: float = 1.5) -> str:
    """``offline`` when offline mode is on, else ``reachable`` or ``unreachable`` (a quick TCP probe)."""
    from alertlib import hub_offline

    if hub_offline():
        return "offline (HF_HUB_OFFLINE=1; pass --online to allow downloads)"
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return "reachable"
    except OSError as error:
        return f"unreachable ({error.__class__.__name__})"


def collect() -> dict:
    """Gather the facts ``alertlib info`` prints."""
    import importlib.metadata as md

    import torch

    from alertlib import __version__
    from alertlib.core.paths import (
        REAL_DATA_FOLDERS,
        data_dir,
        figures_dir,
        real_data_path,
        shared_data_dir,
        weights_dir,
    )
    from alertlib.core.provenance import code_version, cpu_model
    from alertlib.learn.weights import local_weight_files

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "not installed"

    device = {
        "cpu_model": cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "torch_cuda_build": torch.version.cuda or "",
    }
    shared = shared_data_dir()
    return {
        "alertlib": __version__,
        "code_version": code_version(),
        "versions": {
            name: version(name) for name in ("torch", "torchvision", "timm", "lightning", "numpy", "papermill")
        },
        "device": device,
        "huggingface_hub": hub_status(),
        "paths": {
            "data": str(data_dir()),
            "figures": str(figures_dir()),
            "weights": str(weights_dir()),
            "shared_data": str(shared) if shared else None,
        },
        "real_data": {name: (str(p) if (p := real_data_path(name)) else None) for name in REAL_DATA_FOLDERS},
        "weight_files": [str(p) for p in local_weight_files()],
    }
