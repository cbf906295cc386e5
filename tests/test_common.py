"""The scikit-learn common checks on every row of ``tests/_instances.py``.

A new public estimator gets the checks by adding one row to the table;
``test_instances_cover_every_public_estimator`` fails until it has one. The
checks a row fails by design are listed, with the reason, in
``_instances.EXPECTED_FAILED_CHECKS`` and expected to fail here (strictly:
one that passes fails the test, but for those that hinge on float32
rounding, ``ROUNDING_DEPENDENT_CHECKS``); the per-file check blocks that are left run
those, and configurations the table does not have (PCA and KMeans defaults,
other PCA solvers).
"""

from __future__ import annotations

import inspect
import itertools
import warnings

import numpy as np
import pytest
from _instances import (
    EXPECTED_FAILED_CHECKS,
    INSTANCES,
    PUBLIC_ESTIMATORS,
    ROUNDING_DEPENDENT_CHECKS,
    SEQUENCE_INSTANCES,
    all_instances,
    check_name_and_keywords,
    expected_failed_checks,
    make,
)
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

import sk_replearn
from sk_replearn import CollapseWarning
from sk_replearn.methods.two_view import _TwoViewTransformer


@parametrize_with_checks(all_instances())
def test_common_sklearn_checks(estimator, check):
    name, _ = check_name_and_keywords(check)
    reason = expected_failed_checks(estimator).get(name)
    with warnings.catch_warnings():
        # The checks fit on tiny random data, which may well collapse.
        warnings.simplefilter("ignore", CollapseWarning)
        if reason is None:
            check(estimator)
            return
        try:
            check(estimator)
        except AssertionError:
            # The check's own assertion: another error (a TypeError inside
            # the estimator, say) is a bug, not the expected failure.
            pass
        else:
            if name in ROUNDING_DEPENDENT_CHECKS:
                return  # this CPU rounds the other way
            pytest.fail(f"{name} passes now: take it out of EXPECTED_FAILED_CHECKS")
    # Not parametrize_with_checks(expected_failed_checks=...): pytest's report
    # of the failure it marks xfail takes ~0.3 s (it parses sklearn's
    # estimator_checks.py for the traceback); this xfail has no traceback.
    pytest.xfail(reason)


def test_instances_cover_every_public_estimator():
    public = {
        name
        for name in sk_replearn.__all__
        if isinstance(getattr(sk_replearn, name), type)
        and hasattr(getattr(sk_replearn, name), "fit")
    }
    assert public, "no public estimator found in sk_replearn.__all__"
    assert not set(INSTANCES) & set(SEQUENCE_INSTANCES)
    rows = set(INSTANCES) | set(SEQUENCE_INSTANCES)
    missing = sorted(public - rows)
    assert not missing, f"public estimators without a row in INSTANCES: {missing}"
    unknown = sorted(rows - public)
    assert not unknown, f"rows of INSTANCES that name no public estimator: {unknown}"
    assert set(PUBLIC_ESTIMATORS) == public
    unknown = sorted(set(EXPECTED_FAILED_CHECKS) - public)
    assert not unknown, f"EXPECTED_FAILED_CHECKS of no public estimator: {unknown}"


#: Public methods that work, or mean something, before ``fit``.
_USABLE_UNFITTED = {"get_params", "set_params", "set_output", "get_metadata_routing"}


def _unfitted_calls(estimator) -> list[str]:
    """Every public method of ``estimator`` that needs a fitted estimator."""
    names = []
    for name in dir(type(estimator)):
        member = getattr(type(estimator), name)
        if (
            name.startswith("_")
            or not callable(member)
            or isinstance(member, type)
            or name in _USABLE_UNFITTED
            or name.startswith(("fit", "partial_fit", "set_"))
            or isinstance(inspect.getattr_static(type(estimator), name), classmethod)
        ):
            continue
        names.append(name)
    return names


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_every_public_method_raises_not_fitted_error_before_fit(name, tmp_path):
    estimator = make(name)
    X = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32)
    arguments = {"X": X, "y": np.arange(12) % 2, "path": tmp_path / "model.pt"}
    called = _unfitted_calls(estimator)
    assert "transform" in called
    for method in called:
        fn = getattr(estimator, method)
        params = inspect.signature(fn).parameters
        args = {k: arguments[k] for k in params if k in arguments}
        with pytest.raises(NotFittedError):
            fn(**args)


#: The defining parameter of an estimator, positional as in scikit-learn
#: (``PCA(16)``, ``KMeans(8)``); every other parameter is keyword-only.
POSITIONAL = {
    **{
        name: "n_components"
        for name, cls in PUBLIC_ESTIMATORS.items()
        if issubclass(cls, _TwoViewTransformer)
    },
    "AutoencoderTransformer": "n_components",
    "BERTTransformer": "tokenizer",
    "ContextEncoderTransformer": "n_components",
    "FineTuner": "representation",
    "FineTunerRegressor": "representation",
    "GPTTransformer": "tokenizer",
    "KMeansTransformer": "n_clusters",
    "MAETransformer": "n_components",
    "PCATransformer": "n_components",
    "PretrainedTransformer": "model",
}


@pytest.mark.parametrize("name", sorted({**INSTANCES, **SEQUENCE_INSTANCES}))
def test_first_parameter_is_positional_and_the_rest_keyword_only(name):
    cls = PUBLIC_ESTIMATORS[name]
    params = list(inspect.signature(cls).parameters.values())
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == ([POSITIONAL[name]] if name in POSITIONAL else [])
    if name in POSITIONAL:
        row = {**INSTANCES, **SEQUENCE_INSTANCES}[name]
        value = row.get(POSITIONAL[name], "word" if name in SEQUENCE_INSTANCES else 3)
        assert cls(value).get_params()[POSITIONAL[name]] is value


@pytest.mark.parametrize(
    "name",
    sorted(
        n
        for n in INSTANCES
        if "n_components" in inspect.signature(PUBLIC_ESTIMATORS[n]).parameters
    ),
)
def test_n_components_is_the_width_of_transform(name):
    X = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        est = make(name, n_components=3).fit(X)
    assert est.transform(X).shape == (40, 3)
    assert est.n_components_ == 3  # every estimator with n_components sets it


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_arrays_with_negative_strides_are_read_as_copies(name):
    # torch cannot view X[::-1] or np.flip(X): transform, score, fit and
    # inverse_transform raised torch's "At least one stride ... is negative".
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8)).astype(np.float32)
    y = np.arange(40) % 2
    flipped = X[::-1, ::-1]
    assert any(s < 0 for s in flipped.strides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # collapse warnings of tiny SSL runs
        view = make(name).fit(flipped, y[::-1])
        copy = make(name).fit(flipped.copy(), y[::-1].copy())
    np.testing.assert_array_equal(
        view.transform(flipped), copy.transform(flipped.copy())
    )
    Z = copy.transform(X)
    calls = _unfitted_calls(make(name))
    for method, args in [
        ("score", (flipped, y[::-1])),
        ("inverse_transform", (Z[::-1],)),
        ("predict", (flipped,)),
    ]:
        if method in calls:
            fn = getattr(view, method)
            args = args[: len(inspect.signature(fn).parameters)]
            np.testing.assert_array_equal(
                fn(*args), getattr(copy, method)(*(a.copy() for a in args))
            )


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_a_refused_fit_leaves_the_estimator_as_it_was(name):
    # validate_data records the width before the checks that come after it:
    # a refit refused for one sample (or, by a model with nothing to train,
    # for values past float32) left the fitted model claiming the refused
    # data's 5 features, so that transform of its own 8 was refused and of
    # 5 failed inside torch; a refused first fit or partial_fit looked fitted.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 8)).astype(np.float32), np.arange(12) % 2
    bad = rng.normal(size=(12, 5)).astype(np.float32)
    bad[3, 1] = 1e30
    bad = bad if name == "PretrainedTransformer" else bad[:1]
    methods = ["fit"] + (["partial_fit"] if hasattr(make(name), "partial_fit") else [])
    for method in methods:
        est = make(name)
        with pytest.raises(ValueError):
            getattr(est, method)(bad, y[: len(bad)])
        with pytest.raises(NotFittedError):
            check_is_fitted(est)
        assert vars(est).keys() == vars(make(name)).keys()  # no state kept
    est = make(name).fit(X, y)
    before, out = dict(vars(est)), est.transform(X)
    for method in methods:
        with pytest.raises(ValueError):
            getattr(est, method)(bad, y[: len(bad)])
        assert vars(est).keys() == before.keys()
        assert all(vars(est)[k] is v for k, v in before.items())
        np.testing.assert_array_equal(est.transform(X), out)


@pytest.mark.parametrize("name", sorted({**INSTANCES, **SEQUENCE_INSTANCES}))
def test_a_bool_for_a_number_is_refused_by_name(name):
    """A bool, Python's or numpy's, given for a number is refused by name."""
    # scikit-learn's Interval(Integral) and Interval(Real) take True as 1:
    # n_components=True passed validation and failed inside torch.
    from sklearn.utils._param_validation import Interval, InvalidParameterError

    est = make(name)
    numeric = [
        param
        for param, constraints in est._parameter_constraints.items()
        if isinstance(constraints, list)
        and any(isinstance(c, Interval) for c in constraints)
        and not any(c in ("boolean", "verbose", bool) for c in constraints)
    ]
    assert numeric or name == "PretrainedTransformer"
    for param, flag in itertools.product(numeric, [True, np.True_]):
        match = f"The '{param}' parameter .* must be an? (int|float), not a bool"
        with pytest.raises(InvalidParameterError, match=match):
            make(name, **{param: flag})._validate_params()
