"""The scikit-learn common checks on every row of ``tests/_instances.py``.

A new public estimator gets the checks by adding one row to the table;
``test_instances_cover_every_public_estimator`` fails until it has one. The
checks a row fails by design are listed, with the reason, in
``_instances.EXPECTED_FAILED_CHECKS`` and expected to fail here (strictly:
one that passes fails the test); the per-file check blocks that are left run
those, and configurations the table does not have (PCA and KMeans defaults,
other PCA solvers).
"""

from __future__ import annotations

import warnings

import pytest
from _instances import (
    EXPECTED_FAILED_CHECKS,
    INSTANCES,
    PUBLIC_ESTIMATORS,
    all_instances,
    check_name_and_keywords,
    expected_failed_checks,
)
from sklearn.utils.estimator_checks import parametrize_with_checks

import sk_replearn
from sk_replearn import CollapseWarning


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
        except Exception:
            pass
        else:
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
    missing = sorted(public - set(INSTANCES))
    assert not missing, f"public estimators without a row in INSTANCES: {missing}"
    unknown = sorted(set(INSTANCES) - public)
    assert not unknown, f"rows of INSTANCES that name no public estimator: {unknown}"
    assert set(PUBLIC_ESTIMATORS) == public
    unknown = sorted(set(EXPECTED_FAILED_CHECKS) - public)
    assert not unknown, f"EXPECTED_FAILED_CHECKS of no public estimator: {unknown}"
