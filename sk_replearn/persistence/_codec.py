"""An estimator as plain data and back: values as dicts, lists, numbers,
strings and tensors that ``torch.load(weights_only=True)`` reads
(:func:`to_plain`, :func:`from_plain`), an estimator as its class name
among sk_replearn's public estimators, its parameters, its fitted
attributes and its module's weights (an estimator inside another one's
parameters included), and the parameters a file of an older version lacks."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.base import BaseEstimator
from skorch.history import History

from .._fingerprint import _RUNTIME_PARAMS
from .._util import is_fitted, with_article
from .._warn import warn_user
from ..training import trained_module

#: Key marking the dicts that stand for a non-plain value (an array, ...).
_TAG = "__sk_replearn__"


# -- plain data ----------------------------------------------------------------
def to_plain(value, name: str):
    """``value`` as data ``torch.load(weights_only=True)`` can read.

    Numbers, strings, bytes, None, tensors, lists, tuples and dicts with string
    or number keys pass through (recursively; numpy scalar keys become
    Python's); numpy arrays and scalars, random
    states, torch devices, ``torch.optim`` classes, Hugging Face
    ``tokenizers.Tokenizer`` objects (as their JSON) and sk_replearn
    estimators become tagged dicts that :func:`from_plain` turns back.

    Parameters
    ----------
    value : object
        The value to convert.
    name : str
        What the value is (e.g. ``"encoder_kwargs['activation']"``), for the
        error message.

    Returns
    -------
    object
        Plain data.

    Raises
    ------
    TypeError
        If ``value`` (or something inside it) is not data, e.g. a function or
        a class.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn.persistence import from_plain, to_plain
    >>> from_plain(to_plain({"a": np.arange(3), "b": (1, "x")}, "d"))
    {'a': array([0, 1, 2]), 'b': (1, 'x')}
    """
    if isinstance(value, np.generic):  # before float: np.float64 is a float
        return to_plain(value.item(), name)
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, np.ndarray):
        return _array_to_plain(value, name)
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, f"{name}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            # a numpy label (class_weight={np.int64(1): 3}) as the number
            key = k.item() if isinstance(k, np.generic) else k
            if not isinstance(key, (str, int, float)) or key == _TAG:
                raise TypeError(
                    f"{name} has the key {k!r}; only str and number keys are saved."
                )
            out[key] = to_plain(v, f"{name}[{k!r}]")
        return out
    if isinstance(value, torch.device):
        return {_TAG: "device", "name": str(value)}
    if isinstance(value, np.random.RandomState):
        kind, keys, pos, has_gauss, cached = value.get_state()
        state = (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached)
        return {_TAG: "random_state", "state": state}
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
        if getattr(torch.optim, value.__name__, None) is value:
            return {_TAG: "optimizer", "name": value.__name__}
    if isinstance(value, BaseEstimator):
        return estimator_to_plain(value, name)
    if _is_hf_tokenizer(value):  # a ready tokenizer is data: its JSON
        return {_TAG: "hf_tokenizer", "json": value.to_str()}
    if hasattr(value, "to_numpy") and hasattr(value, "shape"):  # a DataFrame
        raise TypeError(
            f"{name} is {with_article(type(value).__name__)}, which save() does "
            f"not store; set it as an array ({name.rsplit('.', 1)[-1]}="
            "value.to_numpy()) before saving, or pickle the estimator with "
            "joblib.dump."
        )
    raise TypeError(
        f"{name}={_shown(value)} cannot be saved as data (save() stores no code, "
        "only numbers, strings, arrays and sk_replearn estimators). Use a named "
        "option instead of a class or function, or pickle the estimator with "
        "joblib.dump (which runs code when loaded: trusted files only)."
    )


def _shown(value) -> str:
    """``value`` as an error message quotes it: a module by its class, else
    its repr cut at 80 characters."""
    if isinstance(value, torch.nn.Module):
        return f"<a {type(value).__name__} module>"
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:80] + "..."


def _is_hf_tokenizer(value) -> bool:
    """Whether ``value`` is a Hugging Face ``tokenizers.Tokenizer`` (not imported)."""
    cls = type(value)
    return (
        cls.__name__ == "Tokenizer"
        and cls.__module__.split(".")[0] == "tokenizers"
        and callable(getattr(value, "to_str", None))
    )


def _array_to_plain(value: np.ndarray, name: str) -> dict:
    if value.dtype.kind in "biufc":
        data = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {_TAG: "ndarray", "data": data}
    if value.dtype.kind in "OUS":
        items = [to_plain(v, f"{name}[...]") for v in value.ravel().tolist()]
        return {
            _TAG: "ndarray",
            "dtype": value.dtype.str,
            "shape": tuple(value.shape),
            "items": items,
        }
    raise TypeError(f"{name} is an array of dtype {value.dtype}, which is not saved.")


def from_plain(value):
    """Undo :func:`to_plain` (estimators come back through ``_build``).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn.persistence import from_plain, to_plain
    >>> from_plain(to_plain(np.array(["a", "b"]), "classes_"))
    array(['a', 'b'], dtype='<U1')
    """
    return _decode(value, None, None)


def _decode(value, device, source: str | None):
    """:func:`from_plain`, building estimators on ``device`` (None: as saved).

    ``source`` names the file, for the errors of :func:`_build`.
    """
    if isinstance(value, list):
        return [_decode(v, device, source) for v in value]
    if isinstance(value, tuple):
        return tuple(_decode(v, device, source) for v in value)
    if not isinstance(value, dict):
        return value
    tag = value.get(_TAG)
    if tag is None:
        return {k: _decode(v, device, source) for k, v in value.items()}
    if tag == "ndarray":
        if "data" in value:
            return value["data"].numpy()
        out = np.empty(len(value["items"]), dtype=np.dtype(value["dtype"]))
        out[:] = _decode(value["items"], device, source)
        return out.reshape(value["shape"])
    if tag == "device":
        return torch.device(value["name"])
    if tag == "random_state":
        kind, keys, pos, has_gauss, cached = value["state"]
        rs = np.random.RandomState()
        rs.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        return rs
    if tag == "optimizer":
        return _torch_optimizer(value["name"])
    if tag == "hf_tokenizer":
        from tokenizers import Tokenizer

        return Tokenizer.from_str(value["json"])
    if tag == "estimator":
        return _build(value, device, source)
    raise ValueError(f"Unknown tagged value {tag!r}: the file is not ours.")


def _torch_optimizer(name: str) -> type:
    cls = getattr(torch.optim, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ValueError(f"The file names torch.optim.{name}, which does not exist.")
    return cls


# -- estimators ----------------------------------------------------------------
def _public_classes() -> dict[str, type]:
    """The only classes a file may name: sk_replearn's public estimators."""
    # Read when a file is loaded: the package's public names, whose modules
    # import this one (the one import here that points upward).
    import sk_replearn
    from sk_replearn import views

    return {
        name: obj
        for mod in (sk_replearn, views)
        for name in mod.__all__
        if isinstance(obj := getattr(mod, name), type)
        and issubclass(obj, BaseEstimator)
    }


#: Parameters that say where and how a model runs, not what it is: changed
#: after fit, they are saved as they are now.
_WHERE_IT_RUNS = frozenset({"device", "precision", "compile", "accelerator"})


def estimator_to_plain(estimator, name: str = "estimator") -> dict:
    """An sk_replearn estimator as plain data: class name, params, fitted state.

    ``callbacks`` and ``accelerator`` are stored as None (with a warning when
    set): they say how a fit runs, not what it learned. Fitted attributes
    are stored as data; a fitted network as its module's ``state_dict``, its
    optimizer's state and its history. Private attributes that are not data
    (caches) are left out.
    """
    cls = type(estimator)
    if _public_classes().get(cls.__name__) is not cls:
        raise TypeError(
            f"{name} is {with_article(f'{cls.__module__}.{cls.__qualname__}')}; "
            "save() stores only sk_replearn's public estimators. Pickle it with "
            "joblib.dump instead (trusted files only)."
        )
    if cls.__name__ == "PretrainedTransformer" and is_fitted(estimator):
        shown = _shown(getattr(estimator, "model", None))
        # Of the estimator itself, "PretrainedTransformer is a fitted
        # PretrainedTransformer" said its name twice.
        subject = (
            "This PretrainedTransformer is fitted"
            if name == cls.__name__
            else f"{name} is a fitted PretrainedTransformer"
        )
        raise TypeError(
            f"{subject} (model={shown}), and its "
            "network comes from elsewhere: save() stores no code, so it cannot "
            "rebuild that network, whatever model names. Its fit trains "
            "nothing: keep model and weights and fit it again, or pickle "
            "what holds it with joblib.dump (which runs code when loaded: "
            "trusted files only)."
        )
    changed = [
        (k, was, now)
        for k, was, now in getattr(estimator, "_changed_since_fit", list)()
        if k.rsplit("__", 1)[-1] not in _WHERE_IT_RUNS  # a representation__device too
    ]
    if changed:
        what = ", ".join(f"{k}={now} (fitted with {was})" for k, was, now in changed)
        raise ValueError(
            f"Cannot save {name}: set_params changed {what} since fit, so the "
            "file would pair the fitted network with parameters it was not "
            "fitted with (and load rebuilds the network from them). Set them "
            "back, or fit again, before saving."
        )
    params = estimator.get_params(deep=False)
    plain_params = {}
    for key, value in params.items():
        if key in _RUNTIME_PARAMS:
            if value:
                warn_user(
                    f"{key}={value!r} is not saved (it is how a fit runs, not what "
                    f"it learned); the loaded {cls.__name__} has {key}=None.",
                    UserWarning,
                )
            plain_params[key] = None
        else:
            plain_params[key] = to_plain(value, f"{cls.__name__}.{key}")
    state = None
    if is_fitted(estimator):
        state = {}
        for key, value in vars(estimator).items():
            if key in params or key == "history_":
                continue
            if key == "net_":
                state[key] = _net_to_plain(value)
            elif isinstance(value, BaseEstimator) and any(
                value is p for p in params.values()
            ):
                same = next(k for k, p in params.items() if p is value)
                state[key] = {_TAG: "same_as", "param": same}
            elif key.startswith("_"):
                try:
                    state[key] = to_plain(value, f"{cls.__name__}.{key}")
                except TypeError:
                    continue  # a private cache, rebuilt when needed
            else:
                state[key] = to_plain(value, f"{cls.__name__}.{key}")
    return {
        _TAG: "estimator",
        "class": cls.__name__,
        "params": plain_params,
        "state": state,
    }


def _load_weights(net, state: dict, refusal: str) -> None:
    """Load ``state`` into the net's module, or raise ``refusal`` as a ValueError.

    Weights of other shapes than the parameters build come from a version
    of sk_replearn with other defaults; torch's size-mismatch error is
    appended to ``refusal``, which says what to do.
    """
    try:
        trained_module(net).load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{refusal} ({str(exc).splitlines()[0][:200]})") from exc


def _net_to_plain(net) -> dict:
    return {
        "module": {
            k: v.detach().cpu() for k, v in trained_module(net).state_dict().items()
        },
        "optimizer": to_plain(net.optimizer_.state_dict(), "optimizer state"),
        "history": to_plain(list(net.history), "history"),
    }


def _n_samples(history: list) -> int:
    """Training samples of a fit, read off its last epoch's batches."""
    if not history:
        return 1
    batches = history[-1].get("batches", [])
    n = sum(
        b.get("train_batch_size", 0) + b.get("valid_batch_size", 0) for b in batches
    )
    return max(int(n), 1)


#: Parameters added after files were first saved, with the value that
#: rebuilds what a file written without them holds (the behaviour before the
#: parameter existed): files of GPT and BERT from before the token
#: convolution hold a model without it; the fine-tuners' heads started
#: with a CentredLayerNorm whatever the strategy before ``head_norm``.
_ADDED_PARAMS = {"conv_kernel_size": None, "head_norm": "layer"}


def _barlow_twins_hidden_as_saved(params: dict, module_state: dict) -> dict:
    """``hidden_dim`` that rebuilds a Barlow Twins projector as its file holds it.

    ``hidden_dim=None`` gave hidden layers of ``projection_dim`` until it
    gave the encoder's width: a file from before holds a first projector
    layer ``(projection_dim, width)``, which None no longer builds.
    """
    weight = module_state.get("projector.layers.0.weight")
    if params.get("hidden_dim") is None and weight is not None:
        hidden, width = weight.shape
        if hidden != width:
            return {"hidden_dim": int(hidden)}
    return {}


#: Defaults whose network changed after files were first saved: for a class,
#: a function of the file's parameters and module weights giving the
#: parameters that rebuild the network the file holds.
_CHANGED_DEFAULTS = {"BarlowTwinsTransformer": _barlow_twins_hidden_as_saved}


def _other_version(source: str | None, what: str) -> ValueError:
    """The error for a file whose estimator this version cannot rebuild."""
    from sk_replearn import __version__

    where = "The file" if source is None else repr(source)
    return ValueError(
        f"{where} {what}: it was probably written by another version of "
        f"sk_replearn than this one ({__version__}), and it was not loaded. "
        "Load it with the version of sk_replearn that saved it, or fit the "
        "model again with this one."
    )


def _build(spec: dict, device, source: str | None = None) -> BaseEstimator:
    """Rebuild an estimator from :func:`estimator_to_plain`'s data.

    ``device`` (None: as saved) is the ``device`` of the estimator and of
    every estimator in its parameters and fitted attributes; ``source`` is
    the file, named in the errors.
    """
    cls = _public_classes().get(spec.get("class"))
    if cls is None:
        raise ValueError(
            f"The file names the class {spec.get('class')!r}, which is not an "
            "sk_replearn estimator; it was not loaded."
        )
    saved = spec.get("params")
    if not isinstance(saved, dict):
        raise _other_version(
            source,
            f"holds the estimator {cls.__name__} without its parameters ('params')",
        )
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(saved) - set(accepted))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        raise _other_version(
            source,
            f"holds the estimator {cls.__name__} with the parameter(s) "
            f"{', '.join(map(repr, unknown))}, which {cls.__name__} does not have",
        )
    params = {k: _decode(v, device, source) for k, v in saved.items()}
    for name, before in _ADDED_PARAMS.items():
        if name in accepted and name not in params:  # an older file
            params[name] = before
    as_saved = _CHANGED_DEFAULTS.get(spec["class"])
    state = spec.get("state")
    if (
        as_saved is not None
        and state is not None
        and isinstance(state.get("net_"), dict)
        and "module" in state["net_"]
    ):
        params.update(as_saved(params, state["net_"]["module"]))
    if device is not None and "device" in params:
        params["device"] = device
    estimator = cls(**params)
    if state is None:
        return estimator
    for key, value in state.items():
        if key == "net_":
            continue
        if isinstance(value, dict) and value.get(_TAG) == "same_as":
            setattr(estimator, key, params[value["param"]])
        else:
            setattr(estimator, key, _decode(value, device, source))
    if "net_" in state:
        payload = state["net_"]
        missing = [
            part
            for part in ("module", "optimizer", "history")
            if not isinstance(payload, dict) or part not in payload
        ]
        if missing:
            raise _other_version(
                source,
                f"holds the estimator {cls.__name__} with a network entry that "
                f"lacks {', '.join(map(repr, missing))}",
            )
        history = from_plain(payload["history"])
        net = estimator._restore_net(_n_samples(history))
        _load_weights(
            net,
            payload["module"],
            f"The file's {spec['class']} holds a network of other shapes than "
            "its parameters build here (a version of sk_replearn with other "
            "defaults wrote it); it was not loaded.",
        )
        net.optimizer_.load_state_dict(from_plain(payload["optimizer"]))
        net.history = History(history)
        estimator.net_ = net
        estimator.history_ = net.history
    return estimator
