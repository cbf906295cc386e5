"""Shared fixtures: small real data sets, loaded once, and the devices."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# The tests' models are tiny: one intra-op thread is as fast as two for them,
# and it cannot oversubscribe a 2-core machine when GridSearchCV(n_jobs=2)
# or anything else runs beside the suite (OpenMP threads spinning against
# each other made single tests 10x slower).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits_split():
    """Digits, stratified 75/25 split with random_state=0 (the issues' split)."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="session")
def small_digits():
    """300 digits images as float32, (n, 64)."""
    X, y = load_digits(return_X_y=True)
    return X[:300].astype(np.float32), y[:300]


@pytest.fixture(params=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def device(request) -> str:
    """Each device a test runs on: the CPU, and CUDA where there is a GPU."""
    return request.param
