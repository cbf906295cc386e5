"""What a training checkpoint must match to be resumed: fingerprints and digests.

:func:`fingerprint` is the estimator's part (its class and parameters, each as
text that reads the same in every process); the data's part is its shape and
a digest of evenly spaced rows (or samples of a Dataset), so that another
fold of a cross-validation is never mistaken for this one. A fitted
estimator that is a parameter (a fine-tuner's pre-trained representation)
counts by a digest of what it learned. :mod:`sk_replearn.checkpoint` writes
and checks them.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
import types
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ._util import is_fitted
from .data import WeightedTargets, generators_kept, sample_of
from .training import trained_module

__all__ = ["fingerprint", "pretrain_digest"]

#: Parameters that say how a fit runs, not what it learns: ``save`` stores
#: them as None and a checkpoint ignores them when deciding to resume.
_RUNTIME_PARAMS = ("callbacks", "accelerator")
_NOT_FINGERPRINTED = (
    *_RUNTIME_PARAMS,
    "verbose",
    "checkpoint_dir",
    "device",
    "num_workers",
    "compile",
    "warm_start",
)


def fingerprint(estimator) -> dict:
    """What must match for a checkpoint to be resumed by ``estimator``.

    The class and every (nested) parameter but those that only say how a
    fit runs (``verbose``, ``device``, ``callbacks``, ``checkpoint_dir``, ...),
    each as text that reads the same in every process (see
    ``_stable_repr``: a random state by its state, a function by its
    name, never a memory address), so that a new process resumes the run.
    A parameter that is an unfitted estimator counts by its own parameters
    (listed under ``name__param``); one that is fitted (a fine-tuner's
    pre-trained ``representation``) also by a digest of what it learned,
    since two representations of equal parameters fitted on other data
    start two different fine-tunings. A fine-tuner that pre-trains its
    representation on ``pretrain_X`` counts that data too (its digest, set
    by the fit as ``_pretrain_digest``).

    Parameters
    ----------
    estimator : sk_replearn estimator
        The estimator about to fit.

    Returns
    -------
    dict
        ``{"estimator": class name, "params": {name: text}}``.

    Examples
    --------
    >>> from sk_replearn import AutoencoderTransformer
    >>> from sk_replearn.checkpoint import fingerprint
    >>> fingerprint(AutoencoderTransformer())["params"]["n_components"]
    '16'
    """
    params = {}
    for k, v in sorted(estimator.get_params(deep=True).items()):
        if k.rsplit("__", 1)[-1] in _NOT_FINGERPRINTED:
            continue
        if not isinstance(v, BaseEstimator):
            params[k] = _stable_repr(v)
        elif is_fitted(v):
            params[k] = f"a fitted {type(v).__name__} (learned state {_learned(v)})"
    pretrain = getattr(estimator, "_pretrain_digest", None)
    if pretrain is not None:  # a fine-tuner's pre-training data
        params["pretrain_X"] = f"data of digest {pretrain}"
    return {"estimator": type(estimator).__name__, "params": params}


#: A memory address in a repr (``<function f at 0x7f...>``): other in every process.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


#: How deep :func:`_stable_repr` reads the attributes of objects in attributes.
_REPR_DEPTH = 3


def _stable_repr(value, depth: int = 0, *, canonical: bool = False) -> str:
    """``repr(value)`` as it reads in every process: without memory addresses.

    A numpy random state or generator counts by a digest of its state, a
    function by its module and qualified name (a lambda by its code too),
    an object without a repr of its own by its class and attributes, and
    lists, tuples, dicts and sets by their items (a set's sorted); anything
    else by its repr, less the addresses in it. Plain values (numbers,
    strings, tuples of them) read as their repr.

    ``canonical=True`` reads equal settings of other types alike (see
    :func:`_model_repr`): numpy scalars as the Python values they equal,
    lists as tuples, a dict's items sorted by key, and an estimator (a
    views object) as its class and the parameters it sets other than their
    defaults.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn._fingerprint import _stable_repr
    >>> _stable_repr({"hidden_sizes": (16,)})
    "{'hidden_sizes': (16,)}"
    >>> _stable_repr(np.random.RandomState(0)) == _stable_repr(np.random.RandomState(0))
    True
    >>> _stable_repr(np.sqrt)
    "<ufunc 'sqrt'>"
    """
    inner = functools.partial(_stable_repr, depth=depth + 1, canonical=canonical)
    if canonical and isinstance(value, np.generic):  # np.int64(4) is 4
        value = value.item()
    if isinstance(value, np.random.RandomState):
        return f"RandomState(state {_digest_of(value.get_state(legacy=False))})"
    if isinstance(value, np.random.Generator):
        state = value.bit_generator.state
        return f"Generator({state['bit_generator']}, state {_digest_of(state)})"
    if isinstance(value, types.FunctionType):
        name = f"{value.__module__}.{value.__qualname__}"
        # Lambdas of one module share a name, and so do functions made by
        # one factory (canonical: what tells set_params' values apart).
        if value.__name__ == "<lambda>" or (canonical and "<locals>" in name):
            code = value.__code__
            body = [
                code.co_code.hex(),
                _ADDRESS.sub("", repr(code.co_consts)),
                code.co_names,
            ]
            name += f" {_digest_of(body)}"
        if canonical and depth < _REPR_DEPTH:  # a closure's cells, defaults
            cells = [c.cell_contents for c in value.__closure__ or () if _full(c)]
            state = (value.__defaults__, value.__kwdefaults__, cells)
            if any(state):
                name += f" with {inner(state)}"
        return f"<function {name}>"
    if isinstance(value, types.MethodType):
        return (
            f"<bound method {value.__func__.__qualname__} of {inner(value.__self__)}>"
        )
    if isinstance(value, functools.partial):
        args = [inner(v) for v in (value.func, *value.args)]
        keywords = list(value.keywords.items())
        if canonical:
            keywords.sort()
        args += [f"{k}={inner(v)}" for k, v in keywords]
        return f"functools.partial({', '.join(args)})"
    if type(value) in (list, tuple):
        items = [inner(v) for v in value]
        if type(value) is list and not canonical:
            return "[" + ", ".join(items) + "]"
        return "(" + items[0] + ",)" if len(items) == 1 else f"({', '.join(items)})"
    if type(value) is dict:
        items = [
            f"{inner(k) if canonical else repr(k)}: {inner(v)}"
            for k, v in value.items()
        ]
        return "{" + ", ".join(sorted(items) if canonical else items) + "}"
    if type(value) in (set, frozenset) and value:  # in the order of no process
        items = sorted(inner(v) for v in value)
        text = "{" + ", ".join(items) + "}"
        return text if type(value) is set else f"frozenset({text})"
    if canonical and isinstance(value, BaseEstimator) and depth < _REPR_DEPTH:
        return _estimator_text(value, inner)
    if type(value).__repr__ is object.__repr__ and not isinstance(value, type):
        # A user's object (a views callable, say) shows only its address.
        cls = type(value)
        attrs = vars(value) if hasattr(value, "__dict__") else {}
        text = inner(attrs) if depth < _REPR_DEPTH else "{...}"
        return f"<{cls.__module__}.{cls.__qualname__} object {text}>"
    return _ADDRESS.sub("", repr(value))


def _full(cell) -> bool:
    """Whether a closure cell holds a value (a cell not yet assigned does not)."""
    try:
        _ = cell.cell_contents
    except ValueError:
        return False
    return True


def _estimator_text(estimator, text) -> str:
    """``Class(name=value, ...)`` of the parameters ``estimator`` sets other
    than their defaults, each value read by ``text``."""
    cls = type(estimator)
    signature = inspect.signature(cls).parameters
    shown = []
    for key, value in sorted(estimator.get_params(deep=False).items()):
        now = text(value)
        default = (
            signature[key].default if key in signature else inspect.Parameter.empty
        )
        if default is inspect.Parameter.empty or now != text(default):
            shown.append(f"{key}={now}")
    return f"{cls.__name__}({', '.join(shown)})"


def _model_repr(value) -> str:
    """A model parameter's value as text that equal settings share.

    What tells a parameter that ``set_params`` changed since ``fit`` from
    the same value set again: :func:`_stable_repr` (no memory addresses, so
    a function or object reads the same in the process that unpickles the
    estimator), with numpy scalars read as the Python values they equal,
    lists as tuples, a dict's items in the order of their keys, and an
    estimator (a views object) as its class and the parameters it sets
    other than their defaults.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn._fingerprint import _model_repr
    >>> _model_repr({"b": [16, np.int64(8)], "a": np.float32(0.5)})
    "{'a': 0.5, 'b': (16, 8)}"
    >>> _model_repr(np.int64(4)) == _model_repr(4)
    True
    """
    return _stable_repr(value, canonical=True)


def _digest_of(value) -> str:
    """A short digest of numbers, arrays, strings and containers of them."""
    digest = hashlib.blake2b(digest_size=8)
    _digest_value(digest, "", value)
    return digest.hexdigest()


def pretrain_digest(pretrain_X) -> str | None:
    """A digest of a fine-tuner's ``pretrain_X``, as of its training data.

    A Dataset counts by its length and a few samples (see
    :func:`_data_digest`). None when there is none, or for ragged
    sequences, whose rows cannot be read as one array.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sk_replearn._fingerprint import pretrain_digest
    >>> X = np.arange(12.0, dtype=np.float32).reshape(6, 2)
    >>> data = torch.utils.data.TensorDataset(torch.from_numpy(X))
    >>> pretrain_digest(data) == pretrain_digest(torch.utils.data.TensorDataset(
    ...     torch.from_numpy(X.copy())))
    True
    >>> pretrain_digest(data) == pretrain_digest(torch.utils.data.TensorDataset(
    ...     torch.from_numpy(X[:5])))
    False
    """
    if pretrain_X is None:
        return None
    rows = pretrain_X
    if hasattr(rows, "to_numpy"):  # a DataFrame
        rows = rows.to_numpy()
    elif isinstance(rows, (list, tuple)):
        try:
            rows = np.asarray(rows)
        except ValueError:  # ragged sequences
            return None
        if rows.dtype == object:
            return None
    return _data_digest(rows)


#: Fitted attributes that record how a fit ran (its timings), not what it learned.
_NOT_LEARNED = ("history_",)


def _learned(estimator) -> str:
    """A digest of what a fitted estimator learned: its public fitted attributes.

    A network (``net_``) counts by its module's weights and buffers, arrays
    and tensors by their bytes, nested estimators by what they learned, and
    numbers, strings and containers of them by their repr; anything else
    (a history of timings, a cache) is left out.
    """
    digest = hashlib.blake2b(digest_size=16)
    _digest_learned(digest, estimator)
    return digest.hexdigest()


def _digest_learned(digest, estimator) -> None:
    digest.update(type(estimator).__name__.encode())
    for key, value in sorted(vars(estimator).items()):
        if key.startswith("_") or not key.endswith("_") or key in _NOT_LEARNED:
            continue
        if hasattr(value, "module_") and hasattr(value, "history"):  # a net
            value = trained_module(value).state_dict()
        _digest_value(digest, key, value)


def _digest_value(digest, key: str, value) -> None:
    if isinstance(value, BaseEstimator):
        digest.update(f"{key}:estimator".encode())
        _digest_learned(digest, value)
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        digest.update(f"{key}:{value.dtype.str}:{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(f"{key}:{value.dtype.str}:{value.shape}".encode())
        digest.update(repr(value.ravel().tolist()).encode())
    elif isinstance(value, Mapping):
        digest.update(f"{key}:mapping:{len(value)}".encode())
        for k, v in value.items():
            _digest_value(digest, f"{key}[{k!r}]", v)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{key}:sequence:{len(value)}".encode())
        for i, v in enumerate(value):
            _digest_value(digest, f"{key}[{i}]", v)
    elif value is None or isinstance(value, (bool, int, float, str, np.generic)):
        digest.update(f"{key}={value!r}".encode())


#: Rows of the training data a checkpoint's fingerprint reads, evenly spaced.
_DIGEST_ROWS = 1024


#: Samples of a Dataset it reads, evenly spaced: each may be a file to read
#: and decode, where rows of an array are a slice of memory.
_DIGEST_SAMPLES = 16


def _data_fingerprint(X, y=None) -> dict:
    """The training data's part of a fingerprint: its shape and a digest.

    ``data_shape`` is ``(n_samples, *sample_shape)`` (a Dataset's sample
    shape read off its first item; empty for data of no known shape), and
    ``data_digest`` is left out where :func:`_data_digest` reads nothing.
    """
    if hasattr(X, "shape"):
        shape = list(X.shape)
    elif hasattr(X, "sample_shape"):  # a SampleDataset: known without a read
        shape = [len(X), *X.sample_shape]
    elif _is_sample_dataset(X):
        shape = [len(X), *(sample_of(X[0]).shape if len(X) else ())]
    else:
        shape = []
    data = {"data_shape": shape}
    digest = _data_digest(X, y)
    if digest is not None:
        data["data_digest"] = digest
    return data


def _is_sample_dataset(data) -> bool:
    """Whether ``data`` is a map-style Dataset read sample by sample."""
    return isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__")


def _data_digest(X, y=None) -> str | None:
    """A digest of evenly spaced rows of the training data (and targets).

    Two folds of a cross-validation have data of one shape: without it, a
    fold running beside another would resume the other's checkpoint and
    train on its rows. A Dataset (read one sample at a time: a file to
    decode, perhaps) counts by its length and :data:`_DIGEST_SAMPLES`
    samples at fixed positions. None for data whose rows cannot be read by
    index (an iterable Dataset).
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in (X, *_target_parts(y)):
        if part is None:
            continue
        rows = getattr(part, "ids", part)  # a TokenDataset: its padded ids
        if not isinstance(rows, (torch.Tensor, np.ndarray)) and not hasattr(
            rows, "subset"
        ):
            if not _is_sample_dataset(rows):
                return None
            _digest_samples(digest, rows)
            continue
        n = len(rows)
        if n == 0:
            continue
        idx = _evenly_spaced(n, _DIGEST_ROWS)
        block = rows[idx.numpy()] if isinstance(rows, np.ndarray) else rows[idx]
        block = block.numpy() if isinstance(block, torch.Tensor) else np.asarray(block)
        digest.update(np.ascontiguousarray(block).tobytes())
        for labels in _target_parts(getattr(part, "y", None)):  # a TokenDataset's
            if isinstance(labels, torch.Tensor) and len(labels):
                digest.update(np.ascontiguousarray(labels[idx].numpy()).tobytes())
    return digest.hexdigest()


def _target_parts(y) -> tuple:
    """Targets, and their sample weights where they have them."""
    return (y.y, y.weight) if isinstance(y, WeightedTargets) else (y,)


def _evenly_spaced(n: int, most: int) -> torch.Tensor:
    """At most ``most`` indices of ``range(n)``, evenly spaced, both ends in."""
    return torch.linspace(0, n - 1, min(n, most)).round().long()


def _digest_samples(digest, dataset) -> None:
    """Add a Dataset's length and its samples at evenly spaced positions.

    A Dataset that draws at random (an augmentation), found by reading its
    first sample twice, counts by its length and that sample's shape only.
    The reads run with torch's, numpy's and Python's global generators
    seeded alike and put back after: the training draws what it would
    without a checkpoint, and a Dataset that draws from those generators
    is read alike in every fit (its two reads differ in every fit or in
    none).
    """
    n = len(dataset)
    digest.update(f"dataset of {n} samples".encode())
    if not n:
        return
    with generators_kept(seed=0):
        first = sample_of(dataset[0])
        if not np.array_equal(first, sample_of(dataset[0])):
            digest.update(f"random samples of shape {first.shape}".encode())
            return
        for i in _evenly_spaced(n, _DIGEST_SAMPLES).tolist():  # 0 first, read
            sample = first if i == 0 else sample_of(dataset[i])
            _digest_value(digest, f"sample {i}", sample)
