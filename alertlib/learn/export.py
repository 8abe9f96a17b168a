"""A fine-tuned model as an ONNX file, and scoring with it under onnxruntime.

:func:`export_onnx` loads a fine-tuned model as ``alertlib score`` does
(:func:`alertlib.learn.inference.load_model`), exports it with a dynamic batch dimension, and writes
into the ONNX model's ``metadata_props`` everything a deployment needs to feed it and read it
(:func:`preprocessing_metadata`): the input layout (NCHW float32), the channel order (science,
reference, difference), the stamp size and centre crop, the normalisation (each channel of each
stamp divided by its L2 norm, as in the BTS release layout and ``alertlib ingest``), that the output
is logits and which activation turns them into scores (after dividing them by the model's calibrated
``temperature``), the class names, and the checkpoint's provenance. Bilinear resizing to the
encoder's input side (224 for MaxViT) is part of the graph.

:func:`load_onnx` reads such a file back into an :class:`OnnxModel` (onnxruntime,
``CPUExecutionProvider``) and :func:`score_onnx` scores triplets with it, preprocessed by the same
code as the torch path (:func:`alertlib.learn.inference.triplet_batches`,
:func:`alertlib.learn.inference.scores_from_logits`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from alertlib.core.errors import DataError, DataNotFound, SettingError, UserError
from alertlib.core.vocab import CHANNELS, STAMP_SIZE

# 17 brings LayerNormalization (ConvNeXt, MaxViT); 18 is supported by every current runtime.
DEFAULT_OPSET = 18
MIN_OPSET = 17
INPUT_NAME = "images"
FEATURES_NAME = "features"  # the second input of an image + metadata model
OUTPUT_NAME = "logits"
METADATA_FORMAT = "alertlib-onnx/1"
PINNED = "pip install onnx==1.23.2 onnxruntime==1.32.0 (the versions in requirements.lock)"


class MissingPackage(UserError, ImportError):
    """An optional package this step needs is not installed."""


def _require(package: str):
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise MissingPackage(
            f"ONNX export and scoring need the {package} package, which is not installed: {PINNED}"
        ) from error


@dataclass
class OnnxModel:
    """An exported model under onnxruntime, with what scoring needs to know (from its metadata)."""

    session: object
    path: Path
    metadata: dict
    arch: str = ""
    init: str = ""
    class_names: list | None = None
    config: dict = field(default_factory=dict)
    temperature: float = 1.0
    feature_names: tuple | None = None  # an image + metadata model's second input, in order


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def preprocessing_metadata(model, checkpoint: Path, opset: int) -> dict[str, str]:
    """The ONNX ``metadata_props`` of an exported model: its preprocessing, output and provenance (strings)."""
    from alertlib import __version__
    from alertlib.core.provenance import code_version, version_of

    config = model.config
    normalisation = config.get("normalisation", "l2")
    class_names = model.class_names
    facts = {
        "alertlib.format": METADATA_FORMAT,
        "input_name": INPUT_NAME,
        "input_layout": "NCHW",
        "input_dtype": "float32",
        "channels": json.dumps(list(CHANNELS)),
        "stamp_size": str(STAMP_SIZE),
        "crop": "" if config.get("crop") is None else str(int(config["crop"])),
        "encoder_input_size": str(model.input_size),
        "normalisation": normalisation,
        "preprocessing": (
            f"stamps (N, {STAMP_SIZE}, {STAMP_SIZE}, 3) with channels {', '.join(CHANNELS)}, each channel of each "
            "stamp divided by its L2 norm (NaN -> 0), as in the BTS release layout and alertlib ingest; "
            + (f"centre crop to {config['crop']}x{config['crop']} (not renormalised); " if config.get("crop") else "")
            + ("" if normalisation == "l2" else f"then the '{normalisation}' normalisation per channel; ")
            + "channels moved first (NCHW); the graph resizes bilinearly to the encoder's input side"
        ),
        "output_name": OUTPUT_NAME,
        "output": "logits",
        "output_activation": "softmax" if class_names else "sigmoid",
        "temperature": repr(float(getattr(model, "temperature", 1.0))),  # scores = activation(logits / temperature)
        "temperature_status": getattr(model, "temperature_status", "uncalibrated"),
        "class_names": json.dumps(list(class_names) if class_names else None),
        "arch": model.arch,
        "init": model.init,
        "weights_source": model.weights_source,
        "seed": json.dumps(config.get("seed")),
        "run_id": str(getattr(model, "run_id", "") or ""),
        "checkpoint": str(checkpoint.resolve()),
        "checkpoint_sha256": _sha256(checkpoint),
        "pretrain_provenance": json.dumps(getattr(model, "pretrain_provenance", {}) or {}, default=str),
        "config": json.dumps(config, default=str),
        "alertlib_version": __version__,
        "code_version": code_version(),
        "torch_version": version_of("torch"),
        "opset": str(opset),
    }
    feature_names = getattr(model, "feature_names", None)
    if feature_names:
        facts |= {
            "features_name": FEATURES_NAME,
            "feature_names": json.dumps(list(feature_names)),
            "features": (
                f"(N, {len(feature_names)}) float32, the candidate fields in the order of feature_names, raw: the "
                "graph standardises them with the training split's feature_mean and feature_std"
            ),
            "feature_mean": json.dumps(model.feature_mean.tolist()),
            "feature_std": json.dumps(model.feature_std.tolist()),
        }
    return facts


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Export the fine-tuned model at ``checkpoint`` (``model.pt``) to ``out`` (ONNX), batch dimension dynamic.

        The graph takes ``images`` (N, 3, H, W) float32, preprocessed as :func:`preprocessing_metadata`
        records, and gives ``logits`` (N, outputs); an image + metadata model takes ``features`` (N, F)
    too, raw (the graph standardises them; their names and statistics are in the metadata). Returns ``out``.

        Raises
        ------
        DataNotFound
            No checkpoint at ``checkpoint``.
        MissingPackage
            The ``onnx`` package is not installed.
        SettingError
            An opset below :data:`MIN_OPSET`.
    """
    import warnings

    import torch

    from alertlib.core.files import atomic_path
    from alertlib.learn.inference import load_model

    if opset < MIN_OPSET:
        raise SettingError(
            f"opset {opset} is too old for the study's architectures (LayerNorm); use {MIN_OPSET} or later"
        )
    onnx = _require("onnx")
    checkpoint, out = Path(checkpoint), Path(out)
    model = load_model(checkpoint)
    crop = model.config.get("crop") or STAMP_SIZE
    example = (torch.zeros((2, len(CHANNELS), crop, crop), dtype=torch.float32),)
    names = [INPUT_NAME]
    if getattr(model, "feature_names", None):
        example += (torch.zeros((2, len(model.feature_names)), dtype=torch.float32),)
        names.append(FEATURES_NAME)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        # The TorchScript exporter warns about shape tests it traces (the resize check) and about its age.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            example,
            str(tmp),
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_axes={**{name: {0: "batch"} for name in names}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
        graph = onnx.load(str(tmp))
        for key, value in preprocessing_metadata(model, checkpoint, opset).items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        graph.producer_name = "alertlib"
        onnx.save(graph, str(tmp))
    return out


def load_onnx(path: str | Path) -> OnnxModel:
    """An ONNX file written by :func:`export_onnx`, ready to score on CPU (``CPUExecutionProvider``)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFound(
            f"no ONNX model at {path}; write one with `alertlib export --checkpoint model.pt --out {path}`"
        )
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    if metadata.get("alertlib.format") != METADATA_FORMAT:
        raise DataError(
            f"{path} was not exported by alertlib (no '{METADATA_FORMAT}' metadata): its preprocessing is unknown; "
            "export it with `alertlib export`"
        )
    config = json.loads(metadata["config"])
    config["crop"] = int(metadata["crop"]) if metadata["crop"] else None
    config["normalisation"] = metadata["normalisation"]
    return OnnxModel(
        session=session,
        path=path,
        metadata=metadata,
        arch=metadata["arch"],
        init=metadata["init"],
        class_names=json.loads(metadata["class_names"]),
        config=config,
        temperature=float(metadata.get("temperature", "1.0")),
        feature_names=tuple(json.loads(metadata["feature_names"])) if "feature_names" in metadata else None,
    )


def score_onnx(model: OnnxModel, triplets, batch_size: int = 256, features=None):
    """Scores of triplets (N, H, W, 3) under an :class:`OnnxModel`, as :func:`~alertlib.learn.inference.score_triplets`
    gives them; an image + metadata model takes the alerts' ``features`` (N, F) too."""
    import numpy as np
    import torch

    from alertlib.learn.inference import check_features, model_inputs, scores_from_logits

    features = check_features(model.feature_names, features, len(triplets))
    outputs = [
        model.session.run([OUTPUT_NAME], dict(zip((INPUT_NAME, FEATURES_NAME), inputs, strict=False)))[0]
        for inputs in model_inputs(triplets, features, model.config, batch_size)
    ]
    width = max(len(model.class_names or []), 1)
    logits = np.concatenate(outputs) if outputs else np.zeros((0, width), dtype=np.float32)
    return scores_from_logits(torch.from_numpy(logits), model.class_names, model.temperature)
