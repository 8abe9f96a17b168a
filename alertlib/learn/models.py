"""Every model of the study, built by one factory, with its initialisation recorded.

``create_model(arch, init, ...)`` returns a torch module with the same interface for every
architecture:

- ``encoder``: images (N, 3, H, W) -> features (N, ``num_features``);
- ``head``: features -> ``num_outputs`` logits;
- ``input_size``: the side the encoder sees (inputs of another size are resized bilinearly inside
  ``forward``, e.g. 63 -> 224 for MaxViT);
- ``arch``, ``init`` and ``weights_source`` (where the initial weights came from), recorded with
  every result.

Architectures
-------------
Any timm name (``convnext_pico``, ``resnet18``, ``maxvit_tiny_rw_224`` ...) gets the authors' head:
global pool (timm's, which for ConvNeXt includes the LayerNorm), Linear 256, GELU, Linear 8, GELU,
Dropout 0.7, Linear to the outputs. Two classic baselines are named:

``btsbot_cnn``
    The BTSbot image branch (Rehemtulla et al. 2024), see :class:`BtsbotCNN`.
``braai_vgg``
    The braai VGG-like real/bogus network (Duev et al. 2019), see :class:`BraaiVGG`.

Initialisations (``init``)
--------------------------
``scratch``
    Random initialisation.
``imagenet``
    timm's ImageNet weights (local file, Hugging Face cache, or the hub with ``--online``).
``galaxyzoo``
    Zoobot's public encoders ``hf_hub:mwalmsley/zoobot-encoder-<arch>`` (same sources).
any other name (``synthetic``, ``galaxy_sim``, ``galaxy_gz1``, ``checkpoint``)
    An encoder checkpoint written by our own pre-training (:func:`save_encoder_checkpoint`), given
    as ``checkpoint=PATH``. The checkpoint records what it was pre-trained on; asking for
    ``init="synthetic"`` with a checkpoint pre-trained on galaxies is an error, so that a result can
    never be labelled with the wrong pre-training.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from alertlib.core.files import atomic_path
from alertlib.core.vocab import CLASSIC_ARCHS, HUB_INITS, STAMP_SIZE, base_arch, multimodal_mode

# The architectures of the study, with the input side each sees (MaxViT's windows need 224).
STUDY_ARCHS: dict[str, int] = {
    "btsbot_cnn": 63,
    "braai_vgg": 63,
    "convnext_pico": 63,
    "convnext_nano": 63,
    "resnet18": 63,
    "resnet50": 63,
    "efficientnet_b0": 63,
    "mobilenetv3_small_100": 63,
    "maxvit_tiny_rw_224": 224,
}

CHECKPOINT_KIND = "alertlib-encoder"

# The BTSbot image branch in its production configuration. The convolutional part is fixed by the
# paper (STUDY_NOTES.md); the dense head sizes are not stated there, so these are our choice and are
# reported with every parameter count.
BTSBOT_CNN_CONFIG = {
    "conv1_channels": 32,
    "conv2_channels": 64,
    "conv_kernel": 5,
    "conv_dropout1": 0.5,
    "conv_dropout2": 0.55,
    "fc1_neurons": 128,
    "fc2_neurons": 8,
    "dropout": 0.5,
}


def relu_initialise(module: nn.Module) -> nn.Module:
    """Initialise the classic CNNs for ReLU networks on L2-normalised stamps: He (Kaiming) normal
    weights scaled to each layer's fan-in, and zero biases.

    PyTorch's default draws biases of the order of ``1 / sqrt(fan_in)``, about the size of the
    activations that L2-normalised stamps (pixels of order 1/63) give the dense layers, and weights
    that shrink the signal layer by layer: units start silent for every input and do not recover (a
    dead head, the output then the sigmoid of the last bias). He weights keep the activations' scale
    through the ReLU layers and zero biases keep every unit alive at the start. Chosen on the
    validation loss of the ``ci`` sky among PyTorch's default, Glorot-uniform (Keras, as BTSbot and
    braai were first trained) and He initialisations (``tests/test_checks.py`` trains a baseline
    and checks that its head is alive).
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


class CheckpointError(ValueError):
    """An encoder checkpoint is missing, of another architecture, or from another pre-training."""


class AuthorsHead(nn.Sequential):
    """The authors' classification head on pooled features.

    Linear(``in_features``, 256) - GELU - Linear(256, 8) - GELU - Dropout(``dropout``) -
    Linear(8, ``num_outputs``).
    """

    def __init__(self, in_features: int, num_outputs: int = 1, hidden: tuple[int, int] = (256, 8), dropout=0.7):
        super().__init__(
            nn.Linear(in_features, hidden[0]),
            nn.GELU(),
            nn.Linear(hidden[0], hidden[1]),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden[1], num_outputs),
        )


class AlertClassifier(nn.Module):
    """An encoder, a head, and the input side the encoder expects.

    Parameters
    ----------
    encoder:
        Module mapping (N, 3, H, W) to (N, ``num_features``).
    head:
        Module mapping features to logits.
    input_size:
        Side of the square input the encoder sees; other sizes are resized bilinearly in ``forward``.
    arch:
        The architecture's name, recorded in checkpoints.
    num_features:
        Width of the encoder's output.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, input_size: int, arch: str, num_features: int):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.input_size = int(input_size)
        self.arch = arch
        self.num_features = int(num_features)
        self.init = "scratch"
        self.weights_source = "none"
        self.pretrain_provenance: dict = {}

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """Bilinearly resize to ``input_size`` when the images have another size."""
        if images.shape[-1] == self.input_size and images.shape[-2] == self.input_size:
            return images
        return F.interpolate(images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Encoder features (N, ``num_features``), e.g. for zero-shot embeddings."""
        return self.encoder(self.resize(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))

    def replace_head(self, num_outputs: int) -> None:
        """Give the model a fresh head with ``num_outputs`` outputs (same form as the current one)."""
        self.head = _new_head(self.arch, self.num_features, num_outputs)


class BtsbotCNN(AlertClassifier):
    """The BTSbot image branch (custom CNN baseline, trained from scratch in the paper).

    Conv5x5(32)-ReLU, Conv5x5(32)-ReLU, MaxPool 2, Dropout2d 0.5, Conv5x5(64)-ReLU, Conv5x5(64)-ReLU,
    MaxPool 4, Dropout2d 0.55, Flatten (64 x 7 x 7 = 3136 at 63x63), all with 'same' padding; then a
    dense head Linear(fc1)-ReLU-Linear(fc2)-ReLU-Dropout-Linear(outputs). Sizes come from ``config``
    (keys of :data:`BTSBOT_CNN_CONFIG`).
    """

    def __init__(self, num_outputs: int = 1, image_size: int = STAMP_SIZE, config: dict | None = None):
        config = {**BTSBOT_CNN_CONFIG, **(config or {})}
        c1, c2, kernel = config["conv1_channels"], config["conv2_channels"], config["conv_kernel"]
        encoder = nn.Sequential(
            nn.Conv2d(3, c1, kernel, padding="same"),
            nn.ReLU(),
            nn.Conv2d(c1, c1, kernel, padding="same"),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout2d(config["conv_dropout1"]),
            nn.Conv2d(c1, c2, kernel, padding="same"),
            nn.ReLU(),
            nn.Conv2d(c2, c2, kernel, padding="same"),
            nn.ReLU(),
            nn.MaxPool2d(4),
            nn.Dropout2d(config["conv_dropout2"]),
            nn.Flatten(),
        )
        num_features = c2 * ((image_size // 2) // 4) ** 2
        self.config = config
        super().__init__(encoder, self._head(num_features, num_outputs, config), image_size, "btsbot_cnn", num_features)
        relu_initialise(self)

    @staticmethod
    def _head(num_features: int, num_outputs: int, config: dict) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(num_features, config["fc1_neurons"]),
            nn.ReLU(),
            nn.Linear(config["fc1_neurons"], config["fc2_neurons"]),
            nn.ReLU(),
            nn.Dropout(config["dropout"]),
            nn.Linear(config["fc2_neurons"], num_outputs),
        )


class BraaiVGG(AlertClassifier):
    """The braai real/bogus network (Duev et al. 2019): a small VGG on 63x63 triplets.

    Two VGG blocks, each two 3x3 convolutions with ReLU ('same' padding), then max pooling and
    Dropout 0.25: 16 filters pooled by 2, then 32 filters pooled by 4. Flatten (32 x 7 x 7 = 1568), then
    Linear 256 - ReLU - Dropout 0.5 - Linear to the outputs.
    """

    def __init__(self, num_outputs: int = 1, image_size: int = STAMP_SIZE):
        encoder = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding="same"),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding="same"),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Conv2d(16, 32, 3, padding="same"),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding="same"),
            nn.ReLU(),
            nn.MaxPool2d(4),
            nn.Dropout(0.25),
            nn.Flatten(),
        )
        num_features = 32 * ((image_size // 2) // 4) ** 2
        super().__init__(encoder, self._head(num_features, num_outputs), image_size, "braai_vgg", num_features)
        relu_initialise(self)

    @staticmethod
    def _head(num_features: int, num_outputs: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(num_features, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, num_outputs))


def _new_head(arch: str, num_features: int, num_outputs: int) -> nn.Module:
    if arch == "btsbot_cnn":
        return relu_initialise(BtsbotCNN._head(num_features, num_outputs, BTSBOT_CNN_CONFIG))
    if arch == "braai_vgg":
        return relu_initialise(BraaiVGG._head(num_features, num_outputs))
    return AuthorsHead(num_features, num_outputs)


def default_input_size(arch: str) -> int:
    """The input side for ``arch``: 63 (the stamp) unless timm says the model needs a fixed size."""
    arch = base_arch(arch)
    if arch in CLASSIC_ARCHS:
        return STAMP_SIZE
    if arch.split(".")[0] in STUDY_ARCHS:
        return STUDY_ARCHS[arch.split(".")[0]]
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(arch)
    except Exception:  # timm raises different errors for unknown names across versions
        cfg = None
    if cfg is not None and getattr(cfg, "fixed_input_size", False):
        return int(cfg.input_size[-1])
    return STAMP_SIZE


def _timm_encoder(arch: str, init: str, weights_file: str | Path | None) -> tuple[nn.Module, str]:
    """A timm encoder without classifier (pooled features), and where its weights came from."""
    import timm

    if init not in HUB_INITS:
        return timm.create_model(arch, pretrained=False, num_classes=0), "none"
    from alertlib.learn.weights import resolve_weights

    resolved = resolve_weights(arch, init, weights_file)
    if resolved.file is None:
        # From the Hugging Face cache (offline) or the hub (--online); timm drops the classifier.
        return timm.create_model(resolved.model_name, num_classes=0, **resolved.timm_kwargs()), resolved.origin
    encoder = timm.create_model(arch.split(".")[0] if init == "galaxyzoo" else arch, pretrained=False, num_classes=0)
    _load_encoder_file(encoder, resolved.file, arch)
    return encoder, resolved.origin


def _read_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "encoder_state"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    return state


def _load_encoder_file(encoder: nn.Module, path: Path, arch: str) -> None:
    """Load a local weight file into a classifier-less timm encoder; extra classifier keys are dropped."""
    state = _read_state_dict(Path(path))
    expected = encoder.state_dict()
    state = {key.removeprefix("encoder."): value for key, value in state.items()}
    unused = sorted(set(state) - set(expected))
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(
            f"weight file {path} does not fit {arch}: {len(missing)} encoder tensors missing "
            f"(first: {missing[:3]}); is it a file for another architecture?"
        )
    # Keys beyond the encoder are the original classifier (e.g. ImageNet's 1000-way 'fc'): not used.
    encoder.load_state_dict({k: v for k, v in state.items() if k not in unused}, strict=True)


def _classic_model(arch: str, num_outputs: int, input_size: int) -> AlertClassifier:
    if arch == "btsbot_cnn":
        return BtsbotCNN(num_outputs, input_size)
    return BraaiVGG(num_outputs, input_size)


def create_model(
    arch: str,
    init: str = "scratch",
    num_outputs: int = 1,
    input_size: int | None = None,
    weights_file: str | Path | None = None,
    checkpoint: str | Path | None = None,
    channels_last: bool = False,
    feature_names=None,
) -> AlertClassifier:
    """Build any model of the study with the requested initialisation.

    Parameters
    ----------
    arch:
        ``btsbot_cnn``, ``braai_vgg``, or any timm architecture name; with ``+meta`` (or
        ``+meta-frozen``) the image + metadata model around it (:mod:`alertlib.learn.multimodal`).
    init:
        ``scratch``, ``imagenet``, ``galaxyzoo``, or the name of one of our pre-trainings
        (``synthetic``, ``galaxy_sim``, ``galaxy_gz1``, or plain ``checkpoint``) with ``checkpoint``.
    num_outputs:
        1 for the binary task (one logit), the number of classes otherwise.
    input_size:
        Side of the input the encoder sees; None for the architecture's default (:func:`default_input_size`).
    weights_file:
        A local file of ImageNet or Zoobot weights (``imagenet``/``galaxyzoo`` only).
    checkpoint:
        An encoder checkpoint written by :func:`save_encoder_checkpoint`.
    channels_last:
        Convert the parameters to the channels-last memory format (faster convolutions on CPU and GPU).
    feature_names:
        The candidate features an image + metadata model reads (default: BTSbot's 25).

    Returns
    -------
    AlertClassifier
        With ``.weights_source``, ``.init``, ``.input_size`` and ``.pretrain_provenance`` set.

    Raises
    ------
    alertlib.learn.weights.WeightsNotAvailable
        ImageNet or Zoobot weights asked for but not available offline (fails at once, with instructions).
    CheckpointError
        A checkpoint that is missing, of another architecture, or from another pre-training than ``init``.
    """
    if multimodal_mode(arch) is not None:
        from alertlib.learn.multimodal import create_multimodal

        model = create_multimodal(arch, init, num_outputs, input_size, weights_file, checkpoint, feature_names)
        return model.to(memory_format=torch.channels_last) if channels_last else model
    input_size = int(input_size or default_input_size(arch))
    if init in HUB_INITS and checkpoint is not None:
        raise ValueError(f"init={init!r} loads published weights; do not also pass checkpoint={checkpoint}")
    if init not in ("scratch", *HUB_INITS) and checkpoint is None:
        raise CheckpointError(
            f"init={init!r} needs checkpoint=PATH: an encoder checkpoint from our own pre-training "
            f"(run `alertlib pretrain ...` first; it writes encoder.pt)"
        )
    if arch in CLASSIC_ARCHS:
        if init in HUB_INITS:
            raise ValueError(
                f"{arch} is a custom network: there are no {init} weights for it; use scratch or a checkpoint"
            )
        model = _classic_model(arch, num_outputs, input_size)
        source = "none"
    else:
        encoder, source = _timm_encoder(arch, init, weights_file)
        # Pooled-feature width: some timm models (MobileNetV3) add a conv head after num_features.
        width = getattr(encoder, "head_hidden_size", None) or encoder.num_features
        model = AlertClassifier(encoder, AuthorsHead(width, num_outputs), input_size, arch, width)
    model.init = init
    model.weights_source = source
    if checkpoint is not None:
        provenance = load_encoder_checkpoint(model, checkpoint, expected_init=None if init == "checkpoint" else init)
        model.weights_source = f"checkpoint:{Path(checkpoint).resolve()}"
        model.pretrain_provenance = provenance
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def save_encoder_checkpoint(model: AlertClassifier, path: str | Path, provenance: dict) -> Path:
    """Write the encoder's weights with their provenance (atomically).

    ``provenance`` must hold ``pretrain_init``: the init name this checkpoint stands for
    (``synthetic``, ``galaxy_sim``, ``galaxy_gz1`` ...); add whatever else describes the pre-training
    (data version, run id, epochs, code version).
    """
    if "pretrain_init" not in provenance:
        raise ValueError("provenance must name the pre-training as 'pretrain_init' (e.g. 'synthetic')")
    record = {
        "kind": CHECKPOINT_KIND,
        "arch": model.arch,
        "input_size": model.input_size,
        "num_features": model.num_features,
        "provenance": dict(provenance),
        "encoder_state": {k: v.detach().cpu().contiguous() for k, v in model.encoder.state_dict().items()},
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(record, tmp)
    return path


def read_checkpoint_provenance(path: str | Path) -> dict:
    """The architecture and provenance recorded in an encoder checkpoint."""
    record = _read_checkpoint(Path(path))
    return {"arch": record["arch"], "input_size": record["input_size"], **record["provenance"]}


def _read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"encoder checkpoint {path} does not exist; run `alertlib pretrain` to make one")
    record = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(record, dict) or record.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path} is not an alertlib encoder checkpoint (written by save_encoder_checkpoint)")
    return record


def load_encoder_checkpoint(model: AlertClassifier, path: str | Path, expected_init: str | None = None) -> dict:
    """Load an encoder checkpoint into ``model`` and return its provenance.

    Raises
    ------
    CheckpointError
        When the checkpoint is of another architecture, or its ``pretrain_init`` differs from
        ``expected_init``.
    """
    path = Path(path)
    record = _read_checkpoint(path)
    if record["arch"].split(".")[0] != model.arch.split(".")[0]:
        raise CheckpointError(f"checkpoint {path} holds a {record['arch']} encoder, not {model.arch}")
    provenance = record["provenance"]
    if expected_init is not None and provenance.get("pretrain_init") != expected_init:
        raise CheckpointError(
            f"checkpoint {path} was pre-trained as {provenance.get('pretrain_init')!r}, "
            f"but init={expected_init!r} was asked for; use init={provenance.get('pretrain_init')!r}"
        )
    model.encoder.load_state_dict(record["encoder_state"], strict=True)
    return dict(provenance)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


@lru_cache(maxsize=64)
def model_cost(arch: str, input_size: int | None = None) -> dict:
    """Parameters and multiply-adds per alert (one 63x63 triplet, resized to ``input_size`` if needed).

    Multiply-adds are counted by ``torch.utils.flop_counter`` on one forward pass in eval mode
    (FLOPs / 2); the bilinear resize is not a matrix multiply and is not counted.

    Returns
    -------
    dict
        ``{"arch", "input_size", "params", "macs"}``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = create_model(arch, "scratch", num_outputs=1, input_size=input_size).eval()
    images = torch.zeros(1, 3, STAMP_SIZE, STAMP_SIZE)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(images)
    return {
        "arch": arch,
        "input_size": model.input_size,
        "params": count_parameters(model),
        "macs": int(counter.get_total_flops() // 2),
    }
