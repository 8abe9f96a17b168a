"""Shared fixtures and marker handling for the alertlib tests."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import pytest

from alertlib.core.paths import real_data_path, shared_data_dir


def pytest_collection_modifyitems(config, items):
    import torch

    skip_gpu = pytest.mark.skip(reason="needs CUDA; no GPU on this machine")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def shared_data():
    """The real sample data folder; skips the test when it is absent."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("real sample data not found: set ALERTLIB_SHARED_DATA or place it at ../shared/data")
    return root


@pytest.fixture(scope="session")
def real_folder():
    """Look up one known real-data folder by name, skipping when it is absent."""

    def lookup(name: str):
        path = real_data_path(name)
        if path is None:
            pytest.skip(f"real data folder {name!r} not found under the shared data (../shared/data)")
        return path

    return lookup


@pytest.fixture(autouse=True)
def _few_threads():
    """Keep tests to the machine's cores (2 here) and deterministic."""
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
