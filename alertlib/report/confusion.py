"""Confusion tables of per-run test predictions, binary or multi-class.

``confusion_table`` counts (or row-normalises) true against predicted classes of a predictions
table; ``true_and_predicted`` reads the classes from either of the column layouts writers use.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.report.tables import check_columns

# Multi-class predictions: ``alertlib.learn.finetune`` writes ``label`` (class index), ``predicted`` (class
# index) and ``prob_<class>`` columns in class-index order; other writers may use ``alert_class``,
# ``predicted_class`` and ``score_<class>``. Both are read.
TRUE_CLASS_COLUMNS = ("alert_class", "label")
PREDICTED_CLASS_COLUMNS = ("predicted_class", "predicted")
CLASS_SCORE_PREFIXES = ("prob_", "score_")


def is_multiclass(predictions: pd.DataFrame) -> bool:
    """Whether a predictions table is multi-class (it has a class column or per-class scores).

    Columns that hold no value at all are ignored: a binary subset of a table concatenated over
    tasks keeps the (empty) per-class columns of the multi-class runs.
    """
    columns = set(predictions.columns[predictions.notna().any()])
    return (
        "alert_class" in columns
        or any(c in columns for c in PREDICTED_CLASS_COLUMNS)
        or any(c.startswith(CLASS_SCORE_PREFIXES) for c in columns)
    )


def true_and_predicted(predictions: pd.DataFrame, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, list]:
    """True and predicted classes of a predictions table, and the classes in order.

    Binary tables have ``label`` (0/1) and ``score`` (probability of class 1); the prediction is
    ``score >= threshold`` and the classes are ``[0, 1]``. Multi-class tables have the true class in
    ``alert_class`` or ``label``, and the prediction in ``predicted_class`` / ``predicted`` or as the
    highest of the per-class columns ``prob_<class>`` / ``score_<class>``. Class indices are turned
    into names when per-class columns give them (column order = class index, as
    ``alertlib.learn.finetune`` writes them).
    """
    if not is_multiclass(predictions):
        check_columns(predictions, ("label", "score"), "binary predictions table")
        truth = predictions["label"].to_numpy().astype(int)
        predicted = (predictions["score"].to_numpy(dtype=np.float64) >= threshold).astype(int)
        return truth, predicted, [0, 1]
    true_column = next((c for c in TRUE_CLASS_COLUMNS if c in predictions.columns), None)
    if true_column is None:
        raise ValueError(
            f"multi-class predictions need a true class column {TRUE_CLASS_COLUMNS}; found {list(predictions.columns)}"
        )
    truth = predictions[true_column].to_numpy()
    prefix = next((p for p in CLASS_SCORE_PREFIXES if any(c.startswith(p) for c in predictions.columns)), None)
    score_columns = [c for c in predictions.columns if prefix and c.startswith(prefix)]
    names = np.array([c[len(prefix) :] for c in score_columns]) if score_columns else None
    predicted_column = next((c for c in PREDICTED_CLASS_COLUMNS if c in predictions.columns), None)
    if predicted_column is not None:
        predicted = predictions[predicted_column].to_numpy()
    elif names is not None:
        predicted = np.argmax(predictions[score_columns].to_numpy(dtype=np.float64), axis=1)
    else:
        raise ValueError(
            f"multi-class predictions need a predicted class column {PREDICTED_CLASS_COLUMNS} or per-class "
            f"columns {CLASS_SCORE_PREFIXES}<class>; found {list(predictions.columns)}"
        )
    if names is not None:
        # Integer class indices become the names the per-class columns carry.
        def to_names(values: np.ndarray) -> np.ndarray:
            return names[values.astype(int)] if np.issubdtype(values.dtype, np.integer) else values.astype(str)

        truth, predicted = to_names(truth), to_names(predicted)
        order = [*names.tolist(), *sorted(set(truth.tolist()) - set(names.tolist()))]
        return truth, predicted, order
    classes = sorted(set(truth.tolist()) | set(predicted.tolist()), key=str)
    return truth, predicted, classes


def confusion_table(predictions: pd.DataFrame, threshold: float = 0.5, normalise: bool = True) -> pd.DataFrame:
    """Confusion matrix (rows: true class, columns: predicted class) of one predictions table.

    Parameters
    ----------
    predictions:
        See ``true_and_predicted`` for the columns. Concatenate several seeds' tables to pool them.
    normalise:
        Divide each row by its count (so each row is the distribution of predictions for that true
        class; its diagonal is the per-class accuracy). Rows with no examples stay NaN.
    """
    from sklearn.metrics import confusion_matrix

    truth, predicted, classes = true_and_predicted(predictions, threshold)
    counts = confusion_matrix(truth, predicted, labels=classes).astype(np.float64)
    if normalise:
        totals = counts.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            counts = np.where(totals > 0, counts / totals, np.nan)
    table = pd.DataFrame(counts, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))
    return table
