"""Where a fine-tuned model looks: integrated-gradients attribution per channel (science, reference, difference).

:func:`integrated_gradients` attributes a model's output for each alert to every pixel of its input
(Captum's ``IntegratedGradients``, from an all-zero input: empty stamps), for the one logit of a
binary model or the predicted class of a multi-class one. :func:`channel_fractions` reduces a map to
the fraction of absolute attribution on each channel; averaged by class, it tests whether a model
reads the difference image for transients and the reference image for variable stars.

:func:`explain_alerts` scores a set of alerts, picks a few correctly and a few wrongly classified
alerts of each class (:func:`pick_examples`) and explains them: the model's inputs (as preprocessed
for it), their maps and one row per alert with its channel fractions (:class:`Explanations`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alertlib.core.vocab import CHANNELS

FRACTION_COLUMNS = tuple(f"fraction_{channel}" for channel in CHANNELS)
N_STEPS = 32  # integration steps: the completeness gap is a few per cent of the logit at this many


@dataclass
class Explanations:
    """Explained alerts: ``table`` (one row per alert: class, label, score, correct, channel
    fractions), ``images`` and ``attributions`` (N, 3, H, W), both as the model saw them."""

    table: pd.DataFrame
    images: np.ndarray
    attributions: np.ndarray


def integrated_gradients(model, images, target=None, n_steps: int = N_STEPS) -> np.ndarray:
    """Integrated-gradients attributions (N, C, H, W) of ``model``'s output for ``images`` (N, C, H, W).

    ``target``: the output index per alert (None: output 0, the logit of a binary model).
    The baseline is an all-zero input; the model is put in eval mode.
    """
    import torch
    from captum.attr import IntegratedGradients

    model = model.eval()
    inputs = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if len(inputs) == 0:
        return np.zeros(inputs.shape, dtype=np.float32)
    target = 0 if target is None else torch.as_tensor(np.asarray(target), dtype=torch.long)
    method = IntegratedGradients(model)
    attributions = method.attribute(
        inputs, baselines=torch.zeros_like(inputs), target=target, n_steps=n_steps, internal_batch_size=256
    )
    return attributions.detach().numpy()


def channel_fractions(attributions) -> np.ndarray:
    """The fraction of absolute attribution on each channel, per alert (N, C); rows sum to 1 (NaN when all is 0)."""
    totals = np.abs(np.asarray(attributions, dtype=np.float64)).sum(axis=(2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / totals.sum(axis=1, keepdims=True)


def outcomes(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, correct) per alert: a binary score above 0.5 is a positive; multi-class: the top class."""
    scores, labels = np.asarray(scores), np.asarray(labels).astype(int)
    predicted = scores.argmax(axis=1) if scores.ndim == 2 else (scores > 0.5).astype(int)
    return predicted, predicted == labels


def pick_examples(classes, correct, per_group: int, seed: int = 0) -> np.ndarray:
    """Indices of up to ``per_group`` correctly and ``per_group`` wrongly classified alerts of each class
    (drawn at random with ``seed``), in order of class, then correct before wrong."""
    rng = np.random.default_rng(seed)
    classes, correct = np.asarray(classes).astype(str), np.asarray(correct, dtype=bool)
    picked = []
    for name in sorted(set(classes)):
        for outcome in (True, False):
            rows = np.flatnonzero((classes == name) & (correct == outcome))
            picked.extend(sorted(rng.choice(rows, size=min(per_group, len(rows)), replace=False)))
    return np.asarray(picked, dtype=int)


def explain_alerts(
    model,
    triplets,
    candidates: pd.DataFrame,
    class_column: str = "alert_class",
    per_group: int = 6,
    n_steps: int = N_STEPS,
    seed: int = 0,
    max_scored: int = 1000,
) -> Explanations:
    """Score ``triplets`` with ``model`` (from :func:`alertlib.learn.inference.load_model`), pick
    correctly and wrongly classified alerts of each class of ``class_column`` and explain them.

    ``candidates`` gives each alert's ``label`` (the model's task: 0/1 for a BTS model, a class index
    for a multi-class one) and its class. Only alerts with a label (not negative) are considered, at
    most ``max_scored`` of them (drawn with ``seed``; ``triplets`` may be memory-mapped).
    """
    from alertlib.learn.inference import score_triplets, triplet_batches

    labelled = np.flatnonzero(candidates["label"].to_numpy() >= 0)
    if len(labelled) > max_scored:
        labelled = np.sort(np.random.default_rng(seed).choice(labelled, size=max_scored, replace=False))
    triplets = np.asarray(triplets[labelled], dtype=np.float32)
    candidates = candidates.iloc[labelled].reset_index(drop=True)
    scores = score_triplets(model, triplets, dtype="float32", variant="eager")
    predicted, correct = outcomes(scores, candidates["label"].to_numpy())
    rows = pick_examples(candidates[class_column].to_numpy(), correct, per_group, seed)
    chosen = triplets[rows]
    images = next(triplet_batches(chosen, model.config, max(len(rows), 1))) if len(rows) else np.zeros((0, 3, 1, 1))
    target = predicted[rows] if scores.ndim == 2 else None
    attributions = integrated_gradients(model, images, target, n_steps)
    columns = [c for c in ("objectId", "candid", class_column, "label") if c in candidates.columns]
    table = candidates.iloc[rows][columns].reset_index(drop=True).rename(columns={class_column: "alert_class"})
    table["score"] = scores[rows].max(axis=1) if scores.ndim == 2 else scores[rows]
    table["predicted"], table["correct"] = predicted[rows], correct[rows]
    fractions = channel_fractions(attributions)
    for index, column in enumerate(FRACTION_COLUMNS):
        table[column] = fractions[:, index] if len(rows) else []
    return Explanations(table, images, attributions)
