"""Image + metadata models: any image model of the study, fused with an MLP over candidate features.

As in BTSbot's multimodal models (Rehemtulla et al. 2024), the image branch's features (the
encoder's output: flattened convolutions for the custom CNN, pooled features for a timm model) are
concatenated with the output of a metadata branch, and a fused head maps them to the logits:

- metadata branch: standardisation with the training split's mean and standard deviation (kept as
  buffers, so a checkpoint and an ONNX export carry them), BatchNorm1d, Linear ``meta_fc1``,
  activation, Dropout ``meta_dropout``, Linear ``meta_fc2``, activation;
- fused head: Linear ``comb_fc1``, activation, Linear ``comb_fc2``, activation, Dropout
  ``comb_dropout``, Linear to the outputs.

The activation is ReLU for the custom CNNs and GELU for timm models (as BTSbot's multimodal CNN and
ConvNeXt). The layer widths are ours (:data:`MULTIMODAL_CONFIG`); the btsbot package reads its own
from a training config. ``frozen=True`` (an architecture named ``<arch>+meta-frozen``) keeps the image
encoder's weights fixed: only the metadata branch and the fused head train (the paper's frozen-encoder
variant, meant for a pre-trained encoder).

The model takes ``(images, features)``: images (N, 3, H, W) prepared as for the image-only model and
raw features (N, F) in the order of ``feature_names`` (:data:`alertlib.core.vocab.METADATA_FEATURES`).
"""

from __future__ import annotations

import torch
from torch import nn

from alertlib.core.vocab import CLASSIC_ARCHS, METADATA_FEATURES, base_arch, multimodal_mode

MULTIMODAL_CONFIG = {
    "meta_fc1_neurons": 128,
    "meta_fc2_neurons": 32,
    "meta_dropout": 0.2,
    "comb_fc1_neurons": 128,
    "comb_fc2_neurons": 16,
    "comb_dropout": 0.5,
}


class MultimodalClassifier(nn.Module):
    """An image model's encoder fused with a metadata branch (see the module docstring).

    Parameters
    ----------
    image_model:
        An :class:`alertlib.learn.models.AlertClassifier` (its encoder and resize are used; its head is not).
    num_outputs:
        Logits out (1 for the BTS task).
    feature_names:
        The candidate features read, in order.
    frozen:
        Keep the image encoder's weights fixed.
    """

    def __init__(
        self,
        image_model: nn.Module,
        num_outputs: int = 1,
        feature_names=METADATA_FEATURES,
        frozen: bool = False,
        config: dict | None = None,
    ):
        super().__init__()
        config = {**MULTIMODAL_CONFIG, **(config or {})}
        self.image_model = image_model
        self.image_model.head = nn.Identity()  # the fused head replaces it
        self.feature_names = tuple(feature_names)
        self.frozen = bool(frozen)
        self.arch = f"{image_model.arch}+meta{'-frozen' if frozen else ''}"
        self.input_size = image_model.input_size
        self.num_features = image_model.num_features
        self.init, self.weights_source = image_model.init, image_model.weights_source
        self.pretrain_provenance = image_model.pretrain_provenance
        n = len(self.feature_names)
        self.register_buffer("feature_mean", torch.zeros(n))
        self.register_buffer("feature_std", torch.ones(n))
        activation = nn.ReLU if image_model.arch in CLASSIC_ARCHS else nn.GELU
        self.metadata_branch = nn.Sequential(
            nn.BatchNorm1d(n),
            nn.Linear(n, config["meta_fc1_neurons"]),
            activation(),
            nn.Dropout(config["meta_dropout"]),
            nn.Linear(config["meta_fc1_neurons"], config["meta_fc2_neurons"]),
            activation(),
        )
        self.head = nn.Sequential(
            nn.Linear(self.num_features + config["meta_fc2_neurons"], config["comb_fc1_neurons"]),
            activation(),
            nn.Linear(config["comb_fc1_neurons"], config["comb_fc2_neurons"]),
            activation(),
            nn.Dropout(config["comb_dropout"]),
            nn.Linear(config["comb_fc2_neurons"], num_outputs),
        )
        if self.frozen:
            self.image_model.requires_grad_(False)

    @property
    def encoder(self) -> nn.Module:
        return self.image_model.encoder

    def set_feature_normalisation(self, mean, std) -> None:
        """Standardise features with these statistics (from the training split only)."""
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The image branch's features (N, ``num_features``).

        A frozen encoder runs in eval mode (it keeps its batch-norm statistics and drops no units)
        and without gradients. It is set here, at each call, because Lightning restores every
        submodule's mode by attribute around validation, which a ``train()`` override would not see.
        """
        if not self.frozen:
            return self.image_model.embed(images)
        if self.image_model.training:
            self.image_model.eval()
        with torch.no_grad():
            return self.image_model.embed(images)

    def forward(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        standardised = (features.to(self.feature_mean.dtype) - self.feature_mean) / self.feature_std
        fused = torch.cat([self.embed(images), self.metadata_branch(standardised.to(images.dtype))], dim=1)
        return self.head(fused)


def create_multimodal(
    arch: str, init: str, num_outputs: int, input_size, weights_file, checkpoint, feature_names=None
) -> MultimodalClassifier:
    """The image + metadata model ``<image arch>+meta[-frozen]`` (:func:`alertlib.learn.models.create_model`
    builds the image model with ``init``; the metadata branch and fused head start fresh, He-initialised
    for a custom CNN as its image layers are)."""
    from alertlib.learn.models import create_model, relu_initialise

    image_model = create_model(base_arch(arch), init, num_outputs, input_size, weights_file, checkpoint)
    frozen = multimodal_mode(arch) == "meta-frozen"
    model = MultimodalClassifier(image_model, num_outputs, feature_names or METADATA_FEATURES, frozen)
    if image_model.arch in CLASSIC_ARCHS:
        relu_initialise(model.metadata_branch)
        relu_initialise(model.head)
    return model


def is_multimodal(model) -> bool:
    """Whether a model reads candidate features beside the triplet."""
    return isinstance(model, MultimodalClassifier)
