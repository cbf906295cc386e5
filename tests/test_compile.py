"""``compile=True``: the same training as an eager fit, up to float rounding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sk_replearn import SimCLRTransformer


@pytest.mark.parametrize("lr", [0.0, 3e-3])
def test_a_compiled_fit_draws_the_views_an_eager_one_draws(lr):
    # Inductor drew the random views with its own generator: at lr=0 the
    # compiled fit's loss differed from the eager one's (4.6725 against
    # 4.7305), and after an epoch the features by 0.23 (their mean is 0.05).
    # Tracing the views also warned twice about their lru_caches.
    X = load_digits().data[:128]
    params = {
        "input_shape": (1, 8, 8),
        "max_epochs": 1,
        "batch_size": 64,
        "lr": lr,
        "random_state": 0,
        "device": "cpu",
    }
    eager = SimCLRTransformer(**params).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        compiled = SimCLRTransformer(compile=True, **params).fit(X)
    # Compiled indeed (were compile=True ignored, the two fits would agree
    # by being one): the trained module is torch.compile's wrapper.
    optimized = torch._dynamo.eval_frame.OptimizedModule
    assert isinstance(compiled.net_.module_, optimized)
    assert not isinstance(eager.net_.module_, optimized)
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(
        compiled.transform(X), eager.transform(X), rtol=0, atol=1e-4
    )
