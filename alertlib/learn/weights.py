"""Pre-trained weights: where they come from, and a fast, clear failure when they are not there.

Sources of weights (recorded as ``weights_source`` with every result):

``imagenet``
    timm's ImageNet weights for the architecture: a local file, the Hugging Face cache, or the hub
    with ``--online``.
``galaxyzoo``
    Zoobot's public encoders ``hf_hub:mwalmsley/zoobot-encoder-<arch>``: a local file, the cache, or
    the hub with ``--online``.

Local files are looked up as ``<weights_dir>/<source>/<arch>.{safetensors,pth,pt,bin}``
(``weights_dir`` is ``data/weights`` unless ``$ALERTLIB_WEIGHTS`` says otherwise), or given
explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alertlib import hub_offline
from alertlib.core.errors import UserError
from alertlib.core.paths import weights_dir

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
ZOOBOT_ENCODER_REPO = "mwalmsley/zoobot-encoder-{arch}"


class WeightsNotAvailable(UserError, RuntimeError):
    """Raised when pre-trained weights are asked for but cannot be had without a network."""


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a model's pre-trained weights will come from.

    Attributes
    ----------
    source:
        ``imagenet`` or ``galaxyzoo``.
    model_name:
        The name to pass to ``timm.create_model`` (``hf_hub:...`` for Zoobot encoders).
    file:
        A local weight file, or None when timm should load from the hub or its cache.
    origin:
        Human-readable provenance: ``file:<path>``, ``hf-cache:<repo>`` or ``hf-hub:<repo>``.
    """

    source: str
    model_name: str
    file: Path | None
    origin: str

    def timm_kwargs(self) -> dict:
        """Keyword arguments for ``timm.create_model`` that load these weights."""
        kwargs: dict = {"pretrained": True}
        if self.file is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": str(self.file)}
        return kwargs


def local_weight_files(root: Path | None = None) -> list[Path]:
    """Every weight file under the local weights folder."""
    root = Path(root) if root is not None else weights_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def find_local_file(arch: str, source: str, root: Path | None = None) -> Path | None:
    """The conventional local file ``<root>/<source>/<arch><suffix>``, if it exists."""
    root = Path(root) if root is not None else weights_dir()
    base = arch.split(".")[0]
    for stem in dict.fromkeys([arch, base]):
        for suffix in WEIGHT_SUFFIXES:
            candidate = root / source / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _hub_repo_for(arch: str, source: str) -> str | None:
    """The Hugging Face repository that holds the weights, or None if timm knows of none."""
    if source == "galaxyzoo":
        return ZOOBOT_ENCODER_REPO.format(arch=arch.split(".")[0])
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(arch)
    except Exception:  # timm raises different errors for unknown names across versions
        cfg = None
    if cfg is None:
        return None
    return getattr(cfg, "hf_hub_id", None) or None


def _in_hub_cache(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for filename in HUB_WEIGHT_FILES:
        hit = try_to_load_from_cache(repo, filename)
        if isinstance(hit, str):
            return True
    return False


def resolve_weights(arch: str, source: str, file: str | Path | None = None) -> ResolvedWeights:
    """Find pre-trained weights for ``arch`` from ``source``, or fail at once with instructions.

    Parameters
    ----------
    arch:
        A timm architecture name, e.g. ``convnext_pico.d1_in1k`` or ``resnet18``.
    source:
        ``imagenet`` or ``galaxyzoo``.
    file:
        An explicit local weight file; it must exist.

    Raises
    ------
    WeightsNotAvailable
        When no local file, no cached copy, and (offline) no network is available. The message
        names the weights and the two ways to get them.
    """
    if source not in {"imagenet", "galaxyzoo"}:
        raise ValueError(f"unknown weights source {source!r}; expected 'imagenet' or 'galaxyzoo'")
    hub_name = f"hf_hub:{ZOOBOT_ENCODER_REPO.format(arch=arch.split('.')[0])}" if source == "galaxyzoo" else arch
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise WeightsNotAvailable(f"weight file {path} for {arch} ({source}) does not exist; check the path")
        return ResolvedWeights(source, hub_name, path.resolve(), f"file:{path.resolve()}")
    local = find_local_file(arch, source)
    if local is not None:
        return ResolvedWeights(source, hub_name, local, f"file:{local}")
    repo = _hub_repo_for(arch, source)
    if repo is None:
        raise WeightsNotAvailable(
            f"timm has no {source} weights for architecture {arch!r}; pick a name with a pretrained tag "
            f"(e.g. 'convnext_pico.d1_in1k') or give a local weight file"
        )
    if _in_hub_cache(repo):
        return ResolvedWeights(source, hub_name, None, f"hf-cache:{repo}")
    if hub_offline():
        expected = weights_dir() / source / f"{arch.split('.')[0]}.safetensors"
        raise WeightsNotAvailable(
            f"{source} weights for {arch} (Hugging Face repo {repo}) are not available offline. "
            f"Either put a weight file at {expected} (or pass its path), "
            f"or allow downloads with --online (HF_HUB_OFFLINE=0) on a machine with internet access."
        )
    return ResolvedWeights(source, hub_name, None, f"hf-hub:{repo}")
