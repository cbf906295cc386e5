"""Loading the network of a PretrainedTransformer, and its weights.

:func:`_load_network` builds a fresh copy of the network a ``model``
names: from torchvision (:func:`_torchvision_model`) or timm
(:func:`_timm_model`), with weights named by the library or read from a
file, from a file written by :func:`torch.export.save`, or from the user's
module or factory; :func:`_hf_model` loads a Hugging Face model and its
tokenizer. :func:`load_weights` reads a state dict file without running
code. The optional libraries are imported on use (:func:`_import`).
"""

from __future__ import annotations

import copy
import os
import pickle
import zipfile

import torch
from torch import nn

from .._util import did_you_mean
from ..nn._exported import ExportedModule
from ..nn._user_modules import call_factory

#: Normalisation of torchvision's ImageNet weights (and timm's default).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SOURCES = ("torchvision:", "timm:")


def _load_network(model, weights) -> tuple[nn.Module, dict]:
    """A fresh copy of the network and its preprocessing hints.

    The hints are ``mean``, ``std`` (the weights' normalisation) and
    ``size`` (their resolution), set only when known.
    """
    if isinstance(model, str) and model.startswith(_SOURCES):
        kind, _, name = model.partition(":")
        if not name:
            raise ValueError(
                f"model={model!r} names no network; e.g. '{kind}:resnet18'."
            )
        build = _torchvision_model if kind == "torchvision" else _timm_model
        return build(name, weights)
    if isinstance(model, (str, os.PathLike)):
        network = _exported(model)
    elif isinstance(model, torch.jit.ScriptModule):
        raise ValueError(
            f"model={type(model).__name__}(...) is a TorchScript module, which "
            "PretrainedTransformer does not run (its weights cannot be frozen "
            "or trained as a module's): pass the Python module, or a program "
            "of torch.export.save."
        )
    elif isinstance(model, nn.Module):
        network = copy.deepcopy(model)
    elif callable(model):
        network = call_factory(model, "model")
    else:  # pragma: no cover - the parameter constraints refuse it first
        raise TypeError(f"model={model!r} is not a network.")
    if weights is not None:
        load_weights(network, _weights_file(weights, model))
    return network, {}


def _refuse_in_memory_text_model(model) -> None:
    """Refuse a Hugging Face text model given as a module.

    It reads token ids its tokenizer makes, which only ``"hf:<folder>"``
    brings along; as a module it failed on the probe batch (float zeros into
    an embedding) or on strings (read as numbers).
    """
    cls = model if isinstance(model, type) else type(model)  # a class builds one
    hugging_face = any(  # a subclass, or a model of remote code, too
        base.__module__.split(".")[0] in ("transformers", "transformers_modules")
        for base in getattr(cls, "__mro__", ())
    )
    if hugging_face and getattr(cls, "main_input_name", None) == "input_ids":
        raise ValueError(
            f"model={cls.__name__}(...) is a Hugging Face text model, "
            "whose input is token ids from its tokenizer: save both "
            "(model.save_pretrained(folder), tokenizer.save_pretrained(folder)) "
            "and pass model='hf:<folder>', which tokenizes strings itself."
        )


def _exported(path) -> nn.Module:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            f"model={path!r} is neither 'torchvision:<name>', 'timm:<name>' nor an "
            "existing file written by torch.export.save (e.g. of an encoder from "
            "export_encoder()); pass an nn.Module or a factory for other networks."
        )
    kind = _other_torch_file(path)  # torch.export.load would log pages first
    if kind == "torch.save":
        raise ValueError(
            f"model={path!r} is a file of torch.save (a state dict or a pickled "
            "module), not a program of torch.export.save. Build the network in "
            "Python and pass it as model=, with weights=<this file> for a state "
            "dict (or a factory that loads it)."
        )
    if kind == "torch.jit":
        raise ValueError(
            f"model={path!r} is a TorchScript file (torch.jit.save), which "
            "PretrainedTransformer does not run: pass the network as a Python "
            "module, or save it with torch.export.save."
        )
    try:
        return ExportedModule.from_file(path)
    except Exception as exc:
        raise ValueError(
            f"model={path!r} could not be read as a program saved by "
            f"torch.export.save: {exc}"
        ) from exc


def _other_torch_file(path: str) -> str | None:
    """``"torch.save"`` or ``"torch.jit"`` for a file of those, which
    torch.export.load cannot read; None otherwise (a program, or unknown).

    torch.export.save's zip archive holds an ``archive_format`` record,
    TorchScript's a ``constants.pkl`` and a ``code`` folder, torch.save's a
    ``data.pkl`` alone; torch.save's legacy format is a bare pickle.
    """
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            return "torch.save" if f.read(1) == b"\x80" else None  # pickle's PROTO
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    base = {name.rsplit("/", 1)[-1] for name in names}
    if "archive_format" in base:
        return None
    if "constants.pkl" in base or any("/code/" in name for name in names):
        return "torch.jit"
    return "torch.save" if "data.pkl" in base else None


def _weights_file(weights, model) -> str:
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(
            f"weights={path!r} is not a file. For model={_short(model)} weights "
            "must be a local file holding a state dict (torch.save(module."
            "state_dict(), path)); names of a library's weights apply to "
            "'torchvision:<name>' and 'timm:<name>' models."
        )
    return path


def _short(obj) -> str:
    return type(obj).__name__ if isinstance(obj, nn.Module) else repr(obj)


def load_weights(network: nn.Module, path) -> None:
    """Load a state dict file into ``network``, strictly, without running code.

    Parameters
    ----------
    network : torch.nn.Module
        Changed in place.
    path : str or path
        A file written by ``torch.save(module.state_dict(), path)`` (or a
        dict holding one under ``"state_dict"`` or ``"model"``).

    Raises
    ------
    ValueError
        A file that holds more than tensors (refused by
        ``weights_only=True``: loading it would run code), or weights that do
        not match the architecture, the missing and unexpected keys named.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from sk_replearn.transfer.pretrained import load_weights
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    >>> load_weights(torch.nn.Linear(3, 2), path)
    """
    path = os.fspath(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"weights={path!r} holds more than tensors (a pickled object whose "
            "loading would run code), so it was refused (torch.load with "
            "weights_only=True). Save the weights with torch.save(module."
            "state_dict(), path)."
        ) from exc
    except Exception as exc:
        raise ValueError(f"weights={path!r} could not be read: {exc}") from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(
            f"weights={path!r} does not hold a state dict (a dict of tensors); "
            "save one with torch.save(module.state_dict(), path)."
        )
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} (the network has {tuple(own[k].shape)})"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", wrong),
        ):
            if keys:
                more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
                parts.append(f"{label}: {', '.join(keys[:5])}{more}")
        raise ValueError(
            f"weights={path!r} do not match the architecture of "
            f"{type(network).__name__}: {'; '.join(parts)}."
        )
    network.load_state_dict(state)


def _import(library: str, extra: str = "vision", prefix: str | None = None):
    try:
        return __import__(library)
    except ImportError as exc:
        note = (
            "; torchvision needs the torch version it was built for"
            if library == "torchvision" or "torchvision" in str(exc)
            else ""
        )
        raise ImportError(
            f"model='{prefix or library}:...' needs {library}, which is not "
            f"installed (or does not import: {exc}). Install it with pip "
            f"install sk_replearn[{extra}]{note}."
        ) from exc


def _download_error(model: str, weights, exc: Exception) -> ValueError:
    return ValueError(
        f"the weights {weights!r} of {model!r} could not be downloaded ({exc}). "
        "On a machine without network access, download the file elsewhere, save "
        "its state dict, and pass weights='path/to/file.pth' (a local file is "
        "read with torch.load(weights_only=True))."
    )


_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


def _is_file_like(weights) -> bool:
    """Whether ``weights`` names a local file rather than a library's weights."""
    if isinstance(weights, os.PathLike):
        return True
    return (
        os.path.isfile(weights)
        or os.path.sep in weights
        or weights.lower().endswith(_WEIGHT_SUFFIXES)
    )


def _names_default(weights) -> bool:
    """Whether ``weights`` asks for a library's default weights: "default" in
    any case (torchvision's "DEFAULT", timm's "default")."""
    return isinstance(weights, str) and weights.lower() == "default"


def _torchvision_model(name: str, weights) -> tuple[nn.Module, dict]:
    tv = _import("torchvision")
    models = tv.models
    if name not in models.list_models():
        raise ValueError(
            f"model='torchvision:{name}' is not a torchvision model."
            f"{did_you_mean(name, models.list_models())}"
        )
    hints: dict = {}
    if weights is None:
        return models.get_model(name, weights=None), hints
    if _is_file_like(weights):
        network = models.get_model(name, weights=None)
        load_weights(network, _weights_file(weights, f"torchvision:{name}"))
        return network, {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    try:
        enum = models.get_model_weights(name)
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"torchvision:{name} has no weights by name (weights={weights!r}); "
            "use weights=None for a random start, or a local weights file."
        ) from exc
    try:
        entry = enum.DEFAULT if _names_default(weights) else enum[weights]
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"weights={weights!r} is not a weights name of torchvision:{name}; "
            f"use 'DEFAULT', one of {[w.name for w in enum]}, or a local file."
        ) from exc
    try:
        network = models.get_model(name, weights=entry)
    except Exception as exc:
        raise _download_error(f"torchvision:{name}", weights, exc) from exc
    preset = entry.transforms()
    mean, std = getattr(preset, "mean", None), getattr(preset, "std", None)
    crop = getattr(preset, "crop_size", None)
    hints = {"mean": tuple(mean) if mean else None, "std": tuple(std) if std else None}
    if crop:
        hints["size"] = tuple(crop) if len(crop) == 2 else (crop[0], crop[0])
    return network, hints


def _timm_model(name: str, weights) -> tuple[nn.Module, dict]:
    timm = _import("timm")
    if not timm.list_models(name) and name not in timm.list_models():
        raise ValueError(f"model='timm:{name}' is not a timm model.")
    file_weights = weights is not None and _is_file_like(weights)
    by_name = weights is not None and not file_weights
    # timm's default weights are the network's name without a tag
    tagged = name if not by_name or _names_default(weights) else f"{name}.{weights}"
    try:
        network = timm.create_model(tagged, pretrained=by_name)
    except Exception as exc:
        if by_name:
            raise _download_error(f"timm:{name}", weights, exc) from exc
        raise
    if weights is None:
        return network, {}
    if file_weights:
        load_weights(network, _weights_file(weights, f"timm:{name}"))
    cfg = getattr(network, "pretrained_cfg", None) or {}
    hints = {
        "mean": tuple(cfg.get("mean", IMAGENET_MEAN)),
        "std": tuple(cfg.get("std", IMAGENET_STD)),
    }
    size = cfg.get("input_size")
    if size and not file_weights:
        hints["size"] = tuple(size[1:])
    return network, hints


def _hf_model(name: str):
    """The tokenizer and the base model of a Hugging Face name or folder."""
    transformers = _import("transformers", extra="hf", prefix="hf")
    if not name:
        raise ValueError("model='hf:' names no model; e.g. 'hf:path/to/folder'.")
    local = os.path.isdir(name)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            name, local_files_only=local
        )
        network = transformers.AutoModel.from_pretrained(name, local_files_only=local)
    except OSError as exc:
        raise ValueError(
            f"model='hf:{name}' could not be loaded ({exc}). On a machine without "
            "network access, save the model and its tokenizer with save_pretrained "
            "into a folder elsewhere and pass model='hf:path/to/folder'."
        ) from exc
    return tokenizer, network
