"""Volunteer votes on Galaxy Zoo-like galaxies.

Volunteers walk the decision tree read from ``alertlib.io.schema`` (never hard-coded here). Each
question's answer probabilities follow the true morphology (``ANSWER_MODEL``) and drift towards what
a blurry, noisy image suggests as the galaxy gets smaller than the PSF or fainter (:func:`clarity_of`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.io.schema import Schema, load_schema
from alertlib.sky.morphology import MERGER_STATES


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def _smooth_or_featured(t):
    featured = (
        4.0 * (0.6 - t["bulge_fraction"])
        + 2.5 * t["arm_strength"]
        + 2.0 * t["bar_strength"]
        + 0.4 * t["clump_count"]
        + 2.0 * (t["inclination"] > 75)
    )
    artefact = np.where(t["artefact"] > 0, 4.0, -4.0)
    return {"smooth": -featured / 2, "featured-or-disk": featured / 2, "artifact": artefact}, "smooth"


def _disk_edge_on(t):
    edge = (t["inclination"] - 74.0) / 4.0
    return {"yes": edge / 2, "no": -edge / 2}, "no"


def _has_spiral_arms(t):
    arms = 6.0 * (t["arm_strength"] - 0.2) * (t["arm_count"] > 0) - 2.0 * (t["arm_count"] == 0)
    return {"yes": arms / 2, "no": -arms / 2}, "no"


def _bar(t):
    b = t["bar_strength"]
    return {"strong": 8.0 * (b - 0.5), "weak": 3.0 - 25.0 * (b - 0.33) ** 2 - 3 * (b == 0), "no": 8.0 * (0.2 - b)}, "no"


def _bulge_size(t):
    bt = t["bulge_fraction"]
    centres = {"dominant": 0.75, "large": 0.5, "moderate": 0.3, "small": 0.12, "none": 0.0}
    return {a: -((bt - c) ** 2) / 0.012 for a, c in centres.items()}, "moderate"


def _how_rounded(t):
    q = t["bulge_axis_ratio"]
    centres = {"round": 0.95, "in-between": 0.7, "cigar-shaped": 0.35}
    return {a: -((q - c) ** 2) / 0.02 for a, c in centres.items()}, "in-between"


def _edge_on_bulge(t):
    has_bulge = 8.0 * (t["bulge_fraction"] - 0.08)
    boxy = np.where(t["boxy_bulge"], 2.0, -2.0)
    return {"boxy": has_bulge / 2 + boxy, "none": -has_bulge, "rounded": has_bulge / 2 - boxy}, "rounded"


def _spiral_winding(t):
    pitch = t["arm_pitch"]
    centres = {"tight": 10.0, "medium": 22.0, "loose": 36.0}
    return {a: -((pitch - c) ** 2) / 40.0 for a, c in centres.items()}, "medium"


def _spiral_arm_count(t):
    count = t["arm_count"]
    scores = {a: -2.5 * (count - int(a)) ** 2 for a in ("1", "2", "3", "4")}
    scores["more-than-4"] = np.where(count > 4, 2.5, -6.0)
    scores["cant-tell"] = np.full(len(count), -2.0)
    return scores, "cant-tell"


def _merging(t):
    state = t["merger_state"]
    return {a: np.where(state == i, 3.0, -1.5 * abs(i - state)) for i, a in enumerate(MERGER_STATES)}, "none"


# The link from true morphology to each question's answers, keyed by question and answer name: the
# tree's structure and column names come from the schema. Each entry returns (logits per answer, the
# answer a blurred or noisy image suggests).
ANSWER_MODEL = {
    "smooth-or-featured": _smooth_or_featured,
    "disk-edge-on": _disk_edge_on,
    "has-spiral-arms": _has_spiral_arms,
    "bar": _bar,
    "bulge-size": _bulge_size,
    "how-rounded": _how_rounded,
    "edge-on-bulge": _edge_on_bulge,
    "spiral-winding": _spiral_winding,
    "spiral-arm-count": _spiral_arm_count,
    "merging": _merging,
}


def answer_probabilities(truth: dict[str, np.ndarray], clarity: np.ndarray, schema: Schema) -> list[np.ndarray]:
    """For each schema question, (n, n_answers) probabilities a volunteer gives each answer.

    ``clarity`` in [0, 1] mixes the morphology's answer with the answer that a blurry, noisy image
    suggests (and some plain confusion), so unresolved or faint galaxies get uncertain votes.
    """
    probabilities = []
    for question in schema.questions:
        if question.name not in ANSWER_MODEL:
            raise KeyError(
                f"the vote simulator has no answer model for question {question.name!r} of schema {schema.name}; "
                f"add one to alertlib.sky.votes.ANSWER_MODEL"
            )
        scores, blurred_answer = ANSWER_MODEL[question.name](truth)
        missing = set(question.answers) - set(scores)
        if missing:
            raise KeyError(f"answer model for {question.name!r} lacks answers {sorted(missing)}")
        logits = np.stack([np.broadcast_to(scores[a], clarity.shape) for a in question.answers], axis=1).astype(
            np.float64
        )
        sharp = _softmax(logits)
        blurred = np.full_like(sharp, 0.3 / len(question.answers))
        blurred[:, question.answers.index(blurred_answer)] += 0.7
        probabilities.append(clarity[:, None] * sharp + (1 - clarity[:, None]) * blurred)
    return probabilities


def simulate_votes(
    rng: np.random.Generator,
    truth: dict[str, np.ndarray],
    clarity: np.ndarray,
    n_volunteers: int = 40,
    schema: Schema | None = None,
    agreement: float = 25.0,
) -> pd.DataFrame:
    """Vote counts (one column per answer) from volunteers walking the decision tree.

    Each galaxy gets ``n_volunteers`` (+-15%) volunteers. A question asked after answer ``a`` of a
    parent receives exactly the volunteers who gave ``a``; their answers are multinomial with
    probabilities drawn from a Dirichlet around ``answer_probabilities`` (``agreement`` sets how
    much volunteers disagree beyond counting noise).
    """
    schema = schema or load_schema()
    n = len(clarity)
    volunteers = np.round(n_volunteers * rng.uniform(0.85, 1.15, n)).astype(np.int64)
    probabilities = answer_probabilities(truth, clarity, schema)
    counts: dict[tuple[str, str], np.ndarray] = {}
    columns = {}
    for question, p in zip(schema.questions, probabilities, strict=True):
        asked = volunteers if question.asked_if is None else counts[tuple(question.asked_if)]
        p = np.maximum(p, 1e-4)
        # Gamma draws normalised = Dirichlet, vectorised over galaxies.
        p = rng.gamma(agreement * p)
        p = p / p.sum(axis=1, keepdims=True)
        votes = rng.multinomial(asked, p)
        for k, answer in enumerate(question.answers):
            counts[(question.name, answer)] = votes[:, k]
            columns[schema.column(question.name, answer)] = votes[:, k]
    return pd.DataFrame(columns)[schema.answer_columns]


def clarity_of(half_light_radius: np.ndarray, psf_fwhm: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """How clearly volunteers can see a galaxy's morphology: resolution (size / PSF) times S/N terms."""
    resolution = half_light_radius / psf_fwhm
    return _sigmoid(3.0 * np.log(resolution / 0.9)) * _sigmoid(2.0 * (np.log10(np.maximum(snr, 1e-3)) - 1.3))
