"""Fuzz the public API: odd inputs and bad parameters fail clearly, or work.

For every public estimator (the rows of ``tests/_instances.py``), hypothesis
draws odd inputs (0 or 1 samples, 1 feature, 1-D and 3-D to 5-D arrays,
int / bool / float16 / complex / object / str dtypes, NaN and inf, huge
values, sparse matrices, DataFrames with string columns, lists, tensors) and
bad parameter values (negative, zero, NaN, huge, wrong types). The contract
checked on each case:

* a failure is a ValueError or TypeError with a message (no torch
  RuntimeError, no IndexError, no crash);
* a fit that succeeds gives finite ``transform`` / ``predict`` outputs: a
  model never silently answers NaN.

How many cases are tried is a named profile, chosen with the environment
variable ``SK_REPLEARN_FUZZ_PROFILE``:

* ``quick`` (the default, what CI runs): 40 odd inputs and 30 bad parameters
  per estimator, the whole file in well under a minute;
* ``thorough``: 880 odd inputs and up to 400 bad parameters per estimator
  (every parameter with every bad value when there are fewer: 120 for PCA),
  at least 1,000 cases per estimator, some minutes::

      SK_REPLEARN_FUZZ_PROFILE=thorough python -m pytest tests/test_fuzz.py -s

Either way the cases are derandomized, so a failure repeats. The number of
cases tried is recorded per test and asserted at the end against the
profile's numbers (``-s`` prints them).
"""

from __future__ import annotations

import collections
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from _instances import PUBLIC_ESTIMATORS, make
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sk_replearn import FineTuner, FineTunerRegressor

#: ``profile -> (odd inputs, bad parameters)``: cases per estimator.
PROFILES = {"quick": (40, 30), "thorough": (880, 400)}
PROFILE = os.environ.get("SK_REPLEARN_FUZZ_PROFILE", "quick")
if PROFILE not in PROFILES:
    raise ValueError(
        f"SK_REPLEARN_FUZZ_PROFILE={PROFILE!r}: use one of {sorted(PROFILES)}"
    )
N_INPUT_EXAMPLES, N_PARAM_EXAMPLES = PROFILES[PROFILE]
#: Cases actually run, by (estimator, kind): asserted by the last test.
CASES: collections.Counter = collections.Counter()
#: Their outcomes ("rejected", "fitted", ...), by (estimator, kind): printed.
OUTCOMES: dict = {}
NAMES = sorted(PUBLIC_ESTIMATORS)
ACCEPTED = (ValueError, TypeError)


# -- strategies ------------------------------------------------------------------
_SHAPES = [
    (0, 4),
    (1, 4),
    (2, 4),
    (24, 1),
    (24, 4),
    (24, 8),  # 2-D, few samples/features
    (4,),
    (24,),  # 1-D
    (24, 1, 8),
    (24, 2, 4),
    (0, 1, 8),  # 3-D
    (24, 1, 4, 4),
    (24, 3, 2, 2),
    (1, 1, 2, 2),  # 4-D
    (24, 1, 2, 2, 2),  # 5-D
]
_DTYPES = [
    "float32",
    "float64",
    "float16",
    "int64",
    "bool",
    "complex64",
    "object",
    "str",
]
_SPECIALS = [None, np.nan, np.inf, -np.inf, 1e30, -1e30, 1e38, 1e300]
_CONTAINERS = ["array", "array", "sparse", "frame", "frame_str", "list", "tensor"]


@st.composite
def odd_inputs(draw):
    """``(X, n_samples)``: an odd X of a random shape, dtype, value and type."""
    shape = draw(st.sampled_from(_SHAPES))
    dtype = draw(st.sampled_from(_DTYPES))
    special = draw(st.sampled_from(_SPECIALS))
    where = draw(st.sampled_from(["one", "column", "all"]))
    container = draw(st.sampled_from(_CONTAINERS))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=shape)
    if special is not None and X.size:
        if where == "one":
            X.flat[rng.integers(X.size)] = special
        elif where == "column" and X.ndim >= 2:
            X[:, 0] = special
        else:
            X = X * special if np.isfinite(special) else np.full(shape, special)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype == "str":
            X = X.astype(str)
        elif dtype == "object":
            X = X.astype(object)
        else:
            X = X.astype(dtype)
    n = shape[0] if len(shape) > 1 else 1
    if (
        container == "sparse"
        and X.ndim == 2
        and dtype not in ("str", "object", "float16")
    ):
        X = sp.csr_matrix(X)
    elif container.startswith("frame") and X.ndim == 2:
        X = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
        if container == "frame_str" and X.shape[1]:
            X["f0"] = ["a", "b"] * (len(X) // 2) + ["a"] * (len(X) % 2)
    elif container == "list":
        X = X.tolist()
    elif container == "tensor" and dtype not in ("str", "object"):
        X = torch.from_numpy(np.ascontiguousarray(X))
    return X, n


_BAD_VALUES = [
    -1,
    0,
    -2.5,
    0.0,
    float("nan"),
    float("inf"),
    1e30,
    "abc",
    "",
    None,
    True,
    [1, 2],
    {"a": 1},
    (0,),
    object(),
]


def _fuzzed_params(name: str) -> list[str]:
    return sorted(
        p
        for p in make(name).get_params(deep=False)
        # checkpoint_dir="abc" would write into the working directory (tested
        # on its own below); compile=True costs ~10 s of torch.compile a case.
        if p not in ("checkpoint_dir", "compile")
    )


def _n_param_cases(name: str) -> int:
    """The profile's parameter cases, or all of them when there are fewer."""
    return min(N_PARAM_EXAMPLES, len(_fuzzed_params(name)) * len(_BAD_VALUES))


@st.composite
def bad_params(draw, name: str):
    """``{param: value}`` with one parameter set to an odd value."""
    key = draw(st.sampled_from(_fuzzed_params(name)))
    return {key: draw(st.sampled_from(_BAD_VALUES))}


# -- the contract ------------------------------------------------------------------
def _targets(est, n: int):
    if isinstance(est, FineTunerRegressor):
        return np.linspace(0.0, 1.0, n)
    if isinstance(est, FineTuner):
        return np.arange(n) % 2
    return None


def _is_finite(out) -> bool:
    out = np.asarray(out)
    return out.dtype.kind not in "fc" or bool(np.all(np.isfinite(out)))


def _check_contract(est, X, n: int) -> str:
    """Fit, then every output; return "rejected", "fitted" or "fitted+rejected"."""
    y = _targets(est, n)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y)
        except ACCEPTED as exc:
            assert str(exc).strip(), f"{type(exc).__name__} without a message"
            return "rejected"
        outcome = "fitted"
        methods = [
            "transform",
            "predict",
            "predict_proba",
            "decision_function",
            "inverse_transform",
            "score",
        ]
        for method in methods:
            if not hasattr(est, method):
                continue
            try:
                if method == "inverse_transform":
                    out = est.inverse_transform(est.transform(X))
                elif method == "score":
                    out = est.score(X, y)
                else:
                    out = getattr(est, method)(X)
            except ACCEPTED as exc:
                assert str(exc).strip()
                outcome = "fitted+rejected"
                continue
            assert _is_finite(out), (
                f"{type(est).__name__}.{method} silently returned non-finite values"
            )
    return outcome


_SETTINGS = {
    "deadline": None,
    "derandomize": True,  # the same cases on every run: failures are repeatable
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_odd_inputs_fail_clearly_or_work(name):
    outcomes = collections.Counter()

    @settings(max_examples=N_INPUT_EXAMPLES, **_SETTINGS)
    @given(case=odd_inputs())
    def run(case):
        X, n = case
        outcomes[_check_contract(make(name), X, n)] += 1

    run()
    CASES[name, "inputs"] = sum(outcomes.values())
    OUTCOMES[name, "inputs"] = dict(outcomes)
    assert CASES[name, "inputs"] >= N_INPUT_EXAMPLES, outcomes


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_bad_parameters_fail_clearly_or_work(name):
    X = np.random.default_rng(0).normal(size=(24, 8)).astype(np.float32)
    outcomes = collections.Counter()

    @settings(max_examples=N_PARAM_EXAMPLES, **_SETTINGS)
    @given(params=bad_params(name))
    def run(params):
        est = make(name)
        try:
            est.set_params(**params)
        except ACCEPTED:
            outcomes["rejected"] += 1
            return
        outcomes[_check_contract(est, X, len(X))] += 1

    run()
    CASES[name, "params"] = sum(outcomes.values())
    OUTCOMES[name, "params"] = dict(outcomes)
    assert CASES[name, "params"] >= _n_param_cases(name), outcomes


@pytest.mark.parametrize("value", ["", "file"])
def test_fuzz_checkpoint_dir_that_cannot_be_a_directory(value, tmp_path):
    X = np.random.default_rng(0).normal(size=(24, 8)).astype(np.float32)
    if value == "file":
        value = tmp_path / "a-file"
        value.write_text("")
    est = make("AutoencoderTransformer", checkpoint_dir=value)
    with pytest.raises(ValueError, match="checkpoint_dir="):
        est.fit(X)


def test_fuzz_huge_values_never_give_silent_nan():
    """1e30 overflows float32 when squared: fit raises or transforms finitely."""
    X = np.random.default_rng(0).normal(size=(24, 8)) * 1e30
    for name in NAMES:
        outcome = _check_contract(make(name), X, len(X))
        CASES[name, "huge"] += 1
        assert outcome in ("rejected", "fitted", "fitted+rejected")


def test_fuzz_number_of_cases():
    """Runs last: how many cases the fuzzing above tried (-s prints them)."""
    kinds = ("inputs", "params", "huge")
    print(f"\nfuzz profile {PROFILE!r}: {sum(CASES.values())} cases tried")
    for name in NAMES:
        counts = {kind: CASES[name, kind] for kind in kinds}
        print(f"  {name}: {sum(counts.values())} {counts}")
        for kind in ("inputs", "params"):
            print(f"    {kind}: {OUTCOMES.get((name, kind), {})}")
    if any((name, kind) not in CASES for name in NAMES for kind in kinds):
        pytest.skip("only part of the fuzz tests ran")
    for name in NAMES:
        assert CASES[name, "inputs"] >= N_INPUT_EXAMPLES, name
        assert CASES[name, "params"] >= _n_param_cases(name), name
        assert CASES[name, "huge"] == 1, name
        if PROFILE == "thorough":
            assert CASES[name, "inputs"] + CASES[name, "params"] >= 1000, name
