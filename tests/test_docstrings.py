"""Every public estimator documents exactly its parameters, in signature order.

Like scikit-learn's ``test_docstring_parameters``: the class docstring's
Parameters section must list the ``__init__`` parameters in order, and each
public method's Parameters section its own arguments, so that the shared
documentation of :mod:`sk_replearn._docstrings` can neither drift from a
signature nor leave a parameter out.
"""

from __future__ import annotations

import ast
import inspect
import re
import warnings
from pathlib import Path

import pytest
from _instances import PUBLIC_ESTIMATORS
from numpydoc.docscrape import NumpyDocString

METHODS = [
    "fit",
    "transform",
    "fit_transform",
    "inverse_transform",
    "reconstruct",
    "score",
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "partial_fit",
    "save",
    "load",
    "get_feature_names_out",
]


def _documented(doc: str, section: str = "Parameters") -> list[str]:
    names = []
    for param in NumpyDocString(doc)[section]:
        names += [n.strip() for n in param.name.split(",") if n.strip()]
    return names


def _arguments(fn) -> list[str]:
    return [
        name
        for name, p in inspect.signature(fn).parameters.items()
        if name not in ("self", "cls") and p.kind is not p.VAR_KEYWORD
    ]


@pytest.mark.parametrize("name", sorted(PUBLIC_ESTIMATORS))
def test_docstring_parameters_equal_signature(name):
    cls = PUBLIC_ESTIMATORS[name]
    doc = inspect.getdoc(cls)
    assert "{params" not in doc and "{attributes" not in doc, "unfilled marker"
    assert _documented(doc) == _arguments(cls.__init__)


def _stated_defaults(doc: str) -> dict[str, str]:
    """``{name: text}`` of each parameter whose type line says ``default=text``."""
    stated = {}
    for param in NumpyDocString(doc)["Parameters"]:
        found = re.search(r"default=(.+)$", param.type)
        if found:
            for name in param.name.split(","):
                stated[name.strip()] = found.group(1).strip()
    return stated


@pytest.mark.parametrize("name", sorted(PUBLIC_ESTIMATORS))
def test_docstring_defaults_equal_signature(name):
    # "default=0.996" over a signature's 0.99 misleads every reader of the API
    # page; a default written as a Python literal must be the signature's.
    cls = PUBLIC_ESTIMATORS[name]
    signature = inspect.signature(cls.__init__).parameters
    stated = _stated_defaults(inspect.getdoc(cls))
    # Every parameter that has a default says it (KMeansTransformer's init
    # did not).
    with_default = {
        p for p, v in signature.items() if v.default is not inspect.Parameter.empty
    }
    assert with_default <= stated.keys(), f"{name}: {with_default - stated.keys()}"
    checked = 0
    for param, text in stated.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)  # regex escapes
                warnings.simplefilter("ignore", DeprecationWarning)
                value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            continue  # prose such as "``projection_dim``": not a literal
        assert value == signature[param].default, f"{name}({param}=...): doc {text}"
        checked += 1
    assert checked, f"{name}: no default read from its docstring"


@pytest.mark.parametrize("name", sorted(PUBLIC_ESTIMATORS))
def test_docstring_methods_document_their_arguments(name):
    cls = PUBLIC_ESTIMATORS[name]
    for method in METHODS:
        fn = getattr(cls, method, None)
        if (
            fn is None
            or not fn.__doc__
            or not fn.__qualname__.startswith(
                tuple(c.__name__ for c in cls.__mro__ if c.__module__.startswith("sk_"))
            )
        ):
            continue  # inherited from scikit-learn, which documents it
        assert _documented(inspect.getdoc(fn)) == _arguments(fn), f"{name}.{method}"


@pytest.mark.parametrize("name", sorted(PUBLIC_ESTIMATORS))
def test_docstring_attributes_are_documented_once(name):
    attributes = _documented(inspect.getdoc(PUBLIC_ESTIMATORS[name]), "Attributes")
    assert attributes and len(attributes) == len(set(attributes))
    assert all(a.endswith("_") for a in attributes), attributes


def test_docs_cite_papers_not_an_unnamed_lecture():
    """Code, docs and gallery cite their sources; "the lecture" is none."""
    root = Path(__file__).parents[1]
    files = [
        *root.glob("sk_replearn/**/*.py"),
        *root.glob("examples/*"),
        *root.glob("benchmarks/*.py"),
        *root.glob("docs/*.rst"),
        *root.glob("docs/user_guide/*.rst"),
        root / "README.md",
    ]
    offending = [
        str(f.relative_to(root))
        for f in files
        if f.is_file() and "lecture" in f.read_text(encoding="utf-8").lower()
    ]
    assert not offending
