"""Data sets shared by the benchmark scripts (all available offline)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def load_mnist1d_split():
    """MNIST-1D's 4000 / 1000 split, generated offline (float32 X)."""
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds numpy's legacy global RNG: restore it afterwards.
    state = np.random.get_state()  # noqa: NPY002
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return (
        data["x"].astype(np.float32),
        data["x_test"].astype(np.float32),
        data["y"],
        data["y_test"],
    )


def load_digits_split():
    """Digits, stratified 75/25 split with ``random_state=0`` (float32 X)."""
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    return X_tr.astype(np.float32), X_te.astype(np.float32), y_tr, y_te
