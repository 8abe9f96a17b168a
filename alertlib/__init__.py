"""alertlib: a reproducible study kit for pre-training vision models on survey alerts.

The package is offline by default: importing it sets ``HF_HUB_OFFLINE=1`` unless the user set the
variable already (or asked for ``--online`` on the command line), so that a request for weights that
are not on disk fails at once instead of hanging on a network that is not there.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"


def set_offline_default(online: bool = False) -> bool:
    """Decide Hugging Face hub offline mode before ``huggingface_hub`` is imported.

    Parameters
    ----------
    online:
        When true, network access to the hub is allowed (``HF_HUB_OFFLINE=0``).

    Returns
    -------
    bool
        True when offline mode is in force after the call.
    """
    if online:
        os.environ["HF_HUB_OFFLINE"] = "0"
    else:
        # A user who set the variable themselves keeps their choice.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return hub_offline()


def hub_offline() -> bool:
    """Whether the Hugging Face hub offline mode is on in this process."""
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in {"1", "true", "yes", "on"}


set_offline_default(online=False)
