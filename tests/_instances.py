"""One table of small constructor arguments for every public estimator.

Like scikit-learn's ``INIT_PARAMS``: the common checks, the persistence,
fuzz, checkpoint and behaviour tests all build their estimators from
:data:`INSTANCES` through :func:`make`, so a new estimator gets every one
of those tests by adding one row here; ``test_instances_cover_every_public
estimator`` fails until it has one. :data:`EXPECTED_FAILED_CHECKS` (like
scikit-learn's ``PER_ESTIMATOR_XFAIL_CHECKS``) lists the common checks a row
fails by design, and where each one runs instead.
"""

from __future__ import annotations

from functools import partial

import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import estimator_checks_generator
from torch import nn

import sk_replearn

#: What makes a neural fit tiny: one epoch, small batches, CPU, seeded.
RUN = {"max_epochs": 1, "batch_size": 16, "device": "cpu", "random_state": 0}
_MLP = {"encoder": "mlp", "encoder_kwargs": {"hidden_sizes": (8, 4)}}
_TWO_VIEW = {**_MLP, "projection_dim": 4, "hidden_dim": 8, **RUN}
_AE = {"n_components": 2, **_MLP, **RUN}


class _TabularNetwork:
    """A network "pre-trained elsewhere" that takes any number of features.

    A callable object rather than a function: its ``repr`` is the same in
    every process, so the test ids built from an estimator's ``repr`` are too
    (``pytest -n`` requires it; a function's ``repr`` holds its address).
    """

    def __call__(self) -> nn.Module:
        return nn.Sequential(nn.LazyLinear(4), nn.Tanh())

    def __repr__(self) -> str:
        return "tabular_network"


tabular_network = _TabularNetwork()


#: ``name -> constructor arguments``; an estimator argument is cloned by
#: :func:`make`, so instances never share state.
INSTANCES: dict[str, dict] = {
    "AutoencoderTransformer": _AE,
    "SimCLRTransformer": _TWO_VIEW,
    "MoCoTransformer": {**_TWO_VIEW, "queue_size": 16},
    # Views "auto": the two halves of the columns, whatever the width. One
    # view's encoding, so that n_components is the width of transform (the
    # default, both views side by side, has 2 * n_components: tests/test_cmc.py).
    "CMCTransformer": {**_TWO_VIEW, "transform_view": 0},
    "BYOLTransformer": _TWO_VIEW,
    "SimSiamTransformer": {**_TWO_VIEW, "predictor_dim": 4},
    "BarlowTwinsTransformer": _TWO_VIEW,
    "DINOTransformer": {**_TWO_VIEW, "bottleneck_dim": 4},
    "VICRegTransformer": _TWO_VIEW,
    "SwAVTransformer": {**_TWO_VIEW, "n_prototypes": 4, "queue_length": 8},
    "ContextEncoderTransformer": _AE,  # the autoencoder's networks
    "MAETransformer": {
        "patch_size": "auto",
        "embed_dim": 8,
        "depth": 1,
        "num_heads": 2,
        "decoder_embed_dim": 8,
        "decoder_depth": 1,
        "decoder_num_heads": 2,
        **RUN,
    },
    "FineTuner": {
        "representation": sk_replearn.AutoencoderTransformer(**_AE),
        **RUN,
    },
    "FineTunerRegressor": {
        "representation": sk_replearn.AutoencoderTransformer(**_AE),
        **RUN,
    },
    "PCATransformer": {"n_components": 1},
    "PretrainedTransformer": {
        "model": tabular_network,
        "device": "cpu",
        "random_state": 0,
    },
    "KMeansTransformer": {
        "n_clusters": 2,
        "n_init": 1,
        "max_iter": 5,
        "random_state": 0,
    },
}

#: The estimators of token sequences (strings or integer ids), which the
#: array-fed common checks cannot feed: ``tests/test_sequences.py`` runs the
#: equivalent checks on these rows.
_TOKENS = {"embed_dim": 8, "depth": 1, "num_heads": 2, "max_length": 32}
SEQUENCE_INSTANCES: dict[str, dict] = {
    "GPTTransformer": {**_TOKENS, **RUN},
    "BERTTransformer": {**_TOKENS, **RUN},
}

#: Every public estimator class, by name, read off ``sk_replearn.__all__``.
PUBLIC_ESTIMATORS: dict[str, type] = {
    name: getattr(sk_replearn, name)
    for name in sorted(sk_replearn.__all__)
    if isinstance(getattr(sk_replearn, name), type)
    and hasattr(getattr(sk_replearn, name), "fit")
}


def make(name: str, **overrides):
    """A fresh small instance of the public estimator ``name``.

    ``name`` is a row of :data:`INSTANCES` or :data:`SEQUENCE_INSTANCES`.

    ``overrides`` replace (or add to) the table's arguments.
    """
    params = {**{**INSTANCES, **SEQUENCE_INSTANCES}[name], **overrides}
    params = {
        k: clone(v) if hasattr(v, "get_params") and not isinstance(v, type) else v
        for k, v in params.items()
    }
    return PUBLIC_ESTIMATORS[name](**params)


def all_instances() -> list:
    """One small instance of every public estimator, in name order.

    An estimator without a row is left out, not a collection error:
    ``test_instances_cover_every_public_estimator`` fails for it.
    """
    return [make(name) for name in PUBLIC_ESTIMATORS if name in INSTANCES]


#: Why a fine-tuner's integer weights are not its rows repeated.
_MINIBATCH_WEIGHTS = (
    "training in mini-batches: rows repeated instead of weighted make more "
    "steps an epoch and other batches, so the fits differ (scikit-learn "
    "checks MLPClassifier with its full-batch lbfgs solver); "
    "tests/test_finetune.py checks the weighted loss against a "
    "hand-computed one and that equal weights are no weights"
)
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "FineTuner": {
        "check_sample_weight_equivalence_on_dense_data": _MINIBATCH_WEIGHTS,
        "check_classifiers_train": "one epoch does not reach the check's "
        "accuracy: tests/test_finetune.py runs it with max_epochs=20",
        "check_class_weight_classifiers": "one epoch does not learn the "
        "check's weighted classes: tests/test_finetune.py runs it with "
        "max_epochs=20",
        "check_methods_subset_invariance": "float32 matrix products round "
        "one row and many rows differently (1.6e-7 in predict_proba here), "
        "above the check's 1e-7: tests/test_finetune.py checks it to "
        "float32 precision",
    },
    "FineTunerRegressor": {
        "check_sample_weight_equivalence_on_dense_data": _MINIBATCH_WEIGHTS,
        "check_regressors_train": "one epoch does not reach the check's "
        "R^2: tests/test_finetune.py runs it with max_epochs=20",
        "check_methods_subset_invariance": "float32 matrix products round "
        "one row and many rows differently (up to 2.3e-7 in predict with "
        "the default parameters), about the check's 1e-7: passes with this "
        "instance on some CPUs; tests/test_finetune.py checks it to float32 "
        "precision",
    },
    "KMeansTransformer": {
        "check_sample_weight_equivalence_on_dense_data": "K-means' seeds "
        "depend on the order and number of rows, so integer weights on "
        "shuffled rows and the rows repeated in order reach different local "
        "optima: scikit-learn's KMeans fails the check alike and lists it as "
        "an expected failure; tests/test_kmeans.py checks that integer "
        "weights equal repeated rows from the same initial centers",
    },
}


#: Expected failures that hinge on float32 rounding, which another CPU's
#: kernels may round the other way: passing there is not a regression.
ROUNDING_DEPENDENT_CHECKS = frozenset({"check_methods_subset_invariance"})


def expected_failed_checks(estimator) -> dict[str, str]:
    """``{check: reason}`` of ``estimator``'s row, for ``parametrize_with_checks``."""
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


def check_name_and_keywords(check) -> tuple[str, dict]:
    """The name of a common check and the keywords it was given."""
    keywords = {}
    while isinstance(check, partial):
        keywords = {**check.keywords, **keywords}
        check = check.func
    return check.__name__, keywords


def only_checks(estimator, names) -> list:
    """The common checks called ``names`` of ``estimator``, as pytest params.

    For ``pytest.mark.parametrize("estimator, check", ...)``: a per-file test
    runs the checks its configuration exists for, not all of them again.
    """
    params, found = [], set()
    for est, check in estimator_checks_generator(estimator):
        name, keywords = check_name_and_keywords(check)
        if name in names:
            found.add(name)
            args = ",".join(f"{k}={v}" for k, v in keywords.items())
            check_id = f"{name}({args})" if args else name
            params.append(
                pytest.param(est, check, id=f"{type(est).__name__}-{check_id}")
            )
    if set(names) - found:
        missing = sorted(set(names) - found)
        raise ValueError(f"{type(estimator).__name__} has no checks {missing}")
    return params
