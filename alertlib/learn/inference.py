"""Scoring alerts with a fine-tuned model, in the fastest format and variant measured on this machine.

:func:`load_model` rebuilds a model saved by :func:`alertlib.learn.finetune.run_finetune`;
:func:`score_triplets` scores triplets with it. The format (``float32``, ``bfloat16``) and the
inference variant (:data:`VARIANTS`) are chosen from the efficiency benchmark's tables committed in
``data/benchmarks/`` (:func:`choose_inference`; the tables come from :mod:`alertlib.bench`), preferring
rows measured on this very machine, and weighing a variant's first call (compilation) against the
number of alerts to score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alertlib.core.paths import data_dir

# eager: the module as built; channels_last: NHWC memory format for weights and inputs;
# compile: torch.compile (inductor, weights frozen as constants); compile_channels_last: both.
VARIANTS = ("eager", "channels_last", "compile", "compile_channels_last")
DTYPES = ("float32", "bfloat16")
TABLES_DIR_NAME = "benchmarks"


# ----------------------------------------------------------------------------------------------
# Formats and variants
# ----------------------------------------------------------------------------------------------


def torch_dtype(dtype: str):
    """``"float32"`` / ``"bfloat16"`` -> the torch dtype."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {DTYPES}")
    return getattr(torch, dtype)


def uses_channels_last(variant: str) -> bool:
    """Whether the variant keeps weights and inputs in channels-last (NHWC) memory format."""
    return variant in ("channels_last", "compile_channels_last")


def prepare_for_inference(model, variant: str = "eager", device: str = "cpu", dtype: str = "float32"):
    """Put ``model`` in eval mode on ``device`` in ``dtype``, in the memory format and form of ``variant``.

    ``compile`` variants use ``torch.compile`` with the weights frozen as constants (inductor's
    ``freezing``), which lets it fold batch norms and pre-pack weights; call the result under
    ``torch.inference_mode()``.
    """
    import torch

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {VARIANTS}")
    model = model.eval().to(device=device, dtype=torch_dtype(dtype))
    if uses_channels_last(variant):
        model = model.to(memory_format=torch.channels_last)
    if variant.startswith("compile"):
        model = torch.compile(model, options={"freezing": True})
    return model


# ----------------------------------------------------------------------------------------------
# The committed benchmark tables
# ----------------------------------------------------------------------------------------------


def benchmark_tables_dir() -> Path:
    """Folder of committed benchmark tables (``data/benchmarks``)."""
    return data_dir() / TABLES_DIR_NAME


def load_benchmark_tables(paths=None):
    """Concatenate benchmark tables (default: every ``.csv`` in ``data/benchmarks/``); None when there are none."""
    import pandas as pd

    if paths is None:
        folder = benchmark_tables_dir()
        paths = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    frames = []
    for path in paths:
        path = Path(path)
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        missing = {"model", "device", "dtype", "variant", "batch_size", "status"} - set(frame.columns)
        if missing:
            raise ValueError(
                f"{path} is not an efficiency benchmark table (no column {', '.join(sorted(missing))}): "
                "keep other tables out of data/benchmarks/ itself (decode tables live in data/benchmarks/decode/)"
            )
        frames.append(frame.assign(table=path.name))
    return pd.concat(frames, ignore_index=True) if frames else None


def _this_machine(device: str) -> tuple[str, str]:
    """The stamp column that names the device (``gpu_name`` or ``cpu_model``), and its value here."""
    from alertlib.core.provenance import cpu_model

    if device.startswith("cuda"):
        import torch

        return "gpu_name", torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return "cpu_model", cpu_model()


def _machine_rows(rows, device: str):
    """The rows measured on this very machine (same CPU model, or same GPU), when there are any; else all."""
    column, here = _this_machine(device)
    if column not in rows.columns:
        return rows
    same = rows[rows[column] == here]
    return same if len(same) else rows


def _measured_here(rows, device: str) -> bool:
    """Whether ``rows`` come from this very machine (see :func:`_machine_rows`)."""
    column, here = _this_machine(device)
    return column in rows.columns and not rows.empty and bool((rows[column] == here).all())


def _inference_rows(arch: str, device: str, dtypes, table, allow_compile: bool):
    table = load_benchmark_tables() if table is None else table
    if table is None or len(table) == 0:
        return None
    rows = table[
        (table["model"] == arch)
        & (table["impl"] == "alertlib")
        & (table["device"] == device.split(":")[0])
        & (table["dtype"].isin(list(dtypes)))
        & (table["status"] == "ok")
    ]
    if not allow_compile:
        rows = rows[~rows["variant"].str.startswith("compile")]
    return _machine_rows(rows, device) if len(rows) else None


# ----------------------------------------------------------------------------------------------
# Choosing the format and variant
# ----------------------------------------------------------------------------------------------


def choose_inference(
    arch: str,
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int | None = None,
    n_alerts: int | None = None,
    table=None,
    allow_compile: bool = True,
) -> tuple[str, str]:
    """The fastest measured (format, variant) for scoring ``n_alerts`` alerts with ``arch`` here.

    Parameters
    ----------
    arch:
        The architecture's name.
    device:
        ``cpu`` or ``cuda`` (``cuda:1`` counts as ``cuda``).
    dtype:
        ``float32`` or ``bfloat16`` to fix the format; ``auto`` to let the measurements choose
        between them.
    batch_size:
        Compare at the measured batch size nearest to this one; None for the largest measured.
    n_alerts:
        How many alerts will be scored. The choice minimises the expected time, first call
        (compilation, for ``compile``) plus ``n_alerts`` / alerts per second; None ignores the
        first call (a long-running scorer).
    table:
        A benchmark table; None reads every table in ``data/benchmarks/``. Rows measured on this
        very machine (same CPU model or GPU) are preferred over rows of other machines; with
        ``dtype="auto"``, bfloat16 is chosen only from this machine's own rows.
    allow_compile:
        False leaves out the ``compile`` variants.

    Returns
    -------
    (dtype, variant)
        ``(dtype, "eager")`` (``float32`` for ``auto``) when ``arch`` was never measured here.
    """
    dtypes = DTYPES if dtype == "auto" else (dtype,)
    fallback = ("float32" if dtype == "auto" else dtype, "eager")
    rows = _inference_rows(arch, device, dtypes, table, allow_compile)
    if rows is None or rows.empty:
        return fallback
    if dtype == "auto" and not _measured_here(rows, device):
        # bfloat16 is fast only where the hardware has it (AMX, AVX-512-BF16, tensor cores): take
        # another machine's word for the variant, not for the format.
        rows = rows[rows["dtype"] == "float32"]
        if rows.empty:
            return fallback
    sizes = sorted(rows["batch_size"].unique())
    nearest = sizes[-1] if batch_size is None else min(sizes, key=lambda size: (abs(size - batch_size), -size))
    at_size = rows[rows["batch_size"] == nearest]
    expected = 1.0 / at_size["alerts_per_s"]  # the rate decides for a long-running scorer
    if n_alerts is not None:
        first = at_size["first_call_s"].fillna(0.0) if "first_call_s" in at_size.columns else 0.0
        expected = first + n_alerts / at_size["alerts_per_s"]
    best = at_size.loc[expected.idxmin()]
    return str(best["dtype"]), str(best["variant"])


def best_inference_variant(
    arch: str,
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int | None = None,
    table=None,
    allow_compile: bool = True,
) -> str:
    """The fastest measured variant for ``arch`` on this kind of device in ``dtype`` (:func:`choose_inference`).

    Returns a name from :data:`VARIANTS`; ``eager`` when no measurement of ``arch`` exists.
    """
    return choose_inference(arch, device, dtype, batch_size, None, table, allow_compile)[1]


def optimise_for_inference(
    model,
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int | None = None,
    variant: str | None = None,
    allow_compile: bool = True,
    n_alerts: int | None = None,
):
    """Prepare a model for inference in the fastest format and variant measured for its architecture.

    Parameters
    ----------
    model:
        A model from :func:`alertlib.learn.models.create_model` (its ``arch`` attribute picks the rows).
    dtype:
        ``float32``, ``bfloat16``, or ``auto`` (whichever the benchmark tables of this machine
        show faster; see :func:`choose_inference`).
    variant:
        Force a variant; None asks :func:`choose_inference`.
    n_alerts:
        How many alerts will be scored (so that compilation is chosen only when it pays off).

    Returns
    -------
    (model, dtype, variant)
        The prepared model, and the format and variant used. Feed it inputs in that format and
        memory format (:func:`uses_channels_last`) and call it under ``torch.inference_mode()``.
    """
    arch = getattr(model, "arch", None)
    if variant is None or dtype == "auto":
        chosen_dtype, chosen_variant = (
            choose_inference(arch, device, dtype, batch_size, n_alerts, allow_compile=allow_compile)
            if arch
            else ("float32" if dtype == "auto" else dtype, "eager")
        )
        dtype = chosen_dtype
        variant = variant or chosen_variant
    return prepare_for_inference(model, variant, device, dtype), dtype, variant


# ----------------------------------------------------------------------------------------------
# A fine-tuned model, and its scores
# ----------------------------------------------------------------------------------------------


def load_model(path: str | Path):
    """Rebuild a fine-tuned model saved by :func:`alertlib.learn.finetune.run_finetune` (``model.pt``), in eval mode.

    The record's ``config`` gives the architecture, the output count and the crop; weights come from
    the record, so no pre-trained weights are needed to load it. ``model.temperature`` is the
    temperature fitted on the validation split (:mod:`alertlib.learn.calibration`), which scoring
    applies; a checkpoint saved without one gets 1.0 and ``model.temperature_status`` ``"uncalibrated"``.
    """
    import torch

    from alertlib.core.errors import DataError, DataNotFound
    from alertlib.learn.models import create_model

    path = Path(path)
    if not path.is_file():
        raise DataNotFound(
            f"no fine-tuned model at {path}; run the fine-tuning (notebook 02, or `alertlib finetune`) first"
        )
    record = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(record, dict) or record.get("kind") != "alertlib-model":
        kind = record.get("kind") if isinstance(record, dict) else type(record).__name__
        raise DataError(f"{path} is not a model saved by alertlib.learn.finetune (kind {kind!r})")
    class_names = record.get("class_names")
    model = create_model(
        record["arch"],
        "scratch",
        num_outputs=len(class_names) if class_names else 1,
        input_size=record["input_size"],
        feature_names=record.get("feature_names"),
    )
    model.load_state_dict(record["state_dict"])
    model.init, model.weights_source = record["init"], record["weights_source"]
    model.config, model.class_names = record["config"], class_names
    model.run_id, model.pretrain_provenance = record.get("run_id"), record.get("pretrain_provenance") or {}
    model.temperature = float(record.get("temperature", 1.0))
    model.temperature_status = record.get("temperature_status", "fitted" if "temperature" in record else "uncalibrated")
    return model.eval()


def triplet_batches(triplets, config: dict, batch_size: int):
    """Triplets (N, H, W, 3) as channels-first float32 arrays of up to ``batch_size``, preprocessed as in training.

    The crop and normalisation come from the model's ``config`` (:class:`~alertlib.learn.datasets.TripletDataset`).
    """
    import numpy as np

    from alertlib.learn.datasets import TripletDataset

    dataset = TripletDataset(triplets, normalisation=config.get("normalisation", "l2"), crop=config.get("crop"))
    for start in range(0, len(dataset), batch_size):
        yield np.stack([dataset.image(i) for i in range(start, min(start + batch_size, len(dataset)))])


def check_features(feature_names, features, n_alerts: int):
    """The features an image + metadata model needs (N, F) float32, checked; None for an image-only model.

    Raises
    ------
    SettingError
        Features missing for an image + metadata model, given to an image-only one, or of the wrong shape.
    """
    import numpy as np

    from alertlib.core.errors import SettingError

    if not feature_names:
        if features is not None:
            raise SettingError("this model reads images only; do not pass features")
        return None
    if features is None:
        raise SettingError(
            f"this image + metadata model reads {len(feature_names)} candidate features beside each triplet "
            f"({', '.join(feature_names)}); pass them (alertlib.io.features.feature_matrix)"
        )
    features = np.asarray(features, dtype=np.float32)
    if features.shape != (n_alerts, len(feature_names)):
        raise SettingError(
            f"features of shape {features.shape} for {n_alerts} alerts; expected {(n_alerts, len(feature_names))}"
        )
    return features


def model_inputs(triplets, features, config: dict, batch_size: int):
    """Batches of model inputs: ``(images,)``, or ``(images, features)`` when ``features`` is given
    (images preprocessed as :func:`triplet_batches` does)."""
    for start, images in zip(
        range(0, len(triplets), batch_size), triplet_batches(triplets, config, batch_size), strict=True
    ):
        yield (images,) if features is None else (images, features[start : start + len(images)])


def scores_from_logits(logits, class_names, temperature: float = 1.0):
    """Logits (N, K) as a tensor -> scores: the sigmoid of the one logit (N,), or softmax probabilities (N, K).

    The logits are divided by ``temperature`` first (the model's calibration; 1 leaves them as they are).
    """
    import numpy as np
    import torch

    logits = logits / temperature if temperature != 1.0 else logits
    return torch.softmax(logits, dim=1).numpy() if class_names else np.asarray(torch.sigmoid(logits[:, 0]))


@dataclass
class PreparedModel:
    """A model from :func:`load_model` ready to score triplets batch after batch (:func:`prepare_scoring`)."""

    runnable: object
    config: dict
    class_names: list | None
    device: str
    dtype: str
    variant: str
    batch_size: int
    temperature: float = 1.0  # the model's calibration (load_model), applied to the logits
    feature_names: tuple | None = None  # an image + metadata model's candidate features


def prepare_scoring(
    model, batch_size: int = 256, dtype: str = "auto", variant: str | None = None, n_alerts: int | None = None
) -> PreparedModel:
    """A copy of ``model`` in the fastest format and variant measured for it here, to score ``n_alerts`` alerts.

    See :func:`score_triplets` for ``dtype`` and ``variant``; :func:`score_prepared` scores with it,
    as many times as there are chunks of alerts. The model passed in is not changed.
    """
    import copy

    device = next(model.parameters()).device.type
    runnable, dtype, variant = optimise_for_inference(
        copy.deepcopy(model), device, dtype, batch_size, variant, n_alerts=n_alerts
    )
    temperature = getattr(model, "temperature", 1.0)
    feature_names = getattr(model, "feature_names", None)
    return PreparedModel(
        runnable, model.config, model.class_names, device, dtype, variant, batch_size, temperature, feature_names
    )


def score_prepared(prepared: PreparedModel, triplets, features=None):
    """Scores of triplets (N, H, W, 3) under a :class:`PreparedModel`, as :func:`score_triplets` gives them;
    an image + metadata model takes the alerts' ``features`` (N, F) too."""
    import torch

    batch_size, variant = prepared.batch_size, prepared.variant
    features = check_features(prepared.feature_names, features, len(triplets))
    outputs = []
    with torch.inference_mode():
        for batch in model_inputs(triplets, features, prepared.config, batch_size):
            inputs = [torch.from_numpy(part) for part in batch]
            count = len(inputs[0])
            if variant.startswith("compile") and count < batch_size:
                # Pad the last batch: a compiled model would recompile for a new batch size.
                inputs = [torch.cat([part, part.new_zeros((batch_size - count, *part.shape[1:]))]) for part in inputs]
            images = inputs[0].to(device=prepared.device, dtype=torch_dtype(prepared.dtype))
            if uses_channels_last(variant):
                images = images.contiguous(memory_format=torch.channels_last)
            extra = [part.to(prepared.device) for part in inputs[1:]]
            outputs.append(prepared.runnable(images, *extra)[:count].float().cpu())
    logits = torch.cat(outputs) if outputs else torch.zeros((0, max(len(prepared.class_names or []), 1)))
    return scores_from_logits(logits, prepared.class_names, prepared.temperature)


def score_triplets(
    model,
    triplets,
    batch_size: int = 256,
    dtype: str = "auto",
    variant: str | None = None,
    return_choice: bool = False,
    features=None,
):
    """Scores of alert triplets (N, H, W, 3) under a model from :func:`load_model`, prepared like its training data.

    Binary models give the sigmoid of the logit, (N,); multi-class models give softmax probabilities (N, K),
    both at the model's calibrated temperature (``model.temperature``; 1 when it has none).

    Inference runs in the fastest format and variant measured for the model's architecture on this
    machine (:func:`choose_inference`, from the tables in ``data/benchmarks/``):
    e.g. bfloat16 and ``torch.compile`` on a CPU with AMX when there are enough alerts to pay for
    the compilation, plain float32 where nothing was measured. ``dtype="float32"`` keeps full
    precision (bfloat16 scores differ from float32 ones by about 1e-3); ``variant`` forces one.
    ``return_choice=True`` returns ``(scores, {"device", "dtype", "variant"})``, what was used. The
    model passed in is not changed. To score many chunks with one model, prepare it once
    (:func:`prepare_scoring`) and score each chunk with :func:`score_prepared`. An image + metadata
    model (``<arch>+meta``) takes the alerts' raw candidate ``features`` (N, F) in the order of
    ``model.feature_names`` (:func:`alertlib.io.features.feature_matrix`).
    """
    prepared = prepare_scoring(model, batch_size, dtype, variant, n_alerts=len(triplets))
    scores = score_prepared(prepared, triplets, features)
    choice = {"device": prepared.device, "dtype": prepared.dtype, "variant": prepared.variant}
    return (scores, choice) if return_choice else scores
