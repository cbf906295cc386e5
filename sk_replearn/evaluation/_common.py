"""Private helpers shared by the evaluation submodules.

The checks of class labels every protocol runs first (:func:`_checked_labels`
refuses empty, missing and mixed labels by name), the class counts they
read, and :func:`_a_classifier`, the test of what a few-label protocol or
a :class:`~sk_replearn.evaluation.ProbeScorer` may train.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import column_or_1d


def _missing_label(value) -> bool:
    """None, a float NaN or pandas' NA (whose truth value is an error)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ == "NAType"


def _class_counts(y) -> tuple[np.ndarray, np.ndarray]:
    classes, counts = np.unique(y, return_counts=True)
    return classes, counts


def _checked_labels(y, name: str = "y") -> np.ndarray:
    """``y`` as a 1-D array of class labels, or a ValueError that says why not.

    Empty, missing (NaN, None, pd.NA) and mixed (strings and numbers) labels
    are refused with a message that names them, before numpy's sorting fails
    on them with a TypeError.
    """
    y = column_or_1d(np.asarray(y), warn=True)
    if y.size == 0:
        raise ValueError(f"{name} is empty; pass one class label a sample.")
    if y.dtype.kind in "fc":
        missing = not np.isfinite(y).all()
    else:  # None, NaN or pd.NA among objects
        missing = y.dtype.kind == "O" and any(_missing_label(v) for v in y)
    if missing:
        raise ValueError(
            f"{name} holds NaN or infinite labels, or missing ones (None, "
            "pd.NA); drop those samples (or give them a class) first."
        )
    if y.dtype.kind == "O" and len({isinstance(v, str) for v in y}) > 1:
        raise ValueError(
            f"{name} mixes label types (strings and numbers), which do not sort "
            f"together; make them one type (e.g. {name}.astype(str))."
        )
    return y


def _a_classifier(obj) -> bool:
    """Whether ``obj`` is a classifier instance, as scikit-learn's tags say."""
    if isinstance(obj, (str, type)):
        return False
    try:
        return is_classifier(obj)
    except (AttributeError, TypeError):  # an object without tags
        return False
