"""The files: :func:`save` and :func:`load`, their format marks, and
writing a file whole or not at all (:func:`_atomic_save`); a file cut off
or damaged is named so when read (:func:`_read`)."""

from __future__ import annotations

import os
import secrets
import zipfile

import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._fingerprint import _digest_of
from .._util import is_int
from ._codec import _build, _other_version, estimator_to_plain

_FORMAT = "sk_replearn-estimator"
_CHECKPOINT_FORMAT = "sk_replearn-checkpoint"
_VERSION = 1


def save(estimator, path) -> None:
    """Save a fitted sk_replearn estimator to ``path``, as data only.

    The file holds the class name, the parameters (``callbacks`` and
    ``accelerator`` as None), the fitted attributes, the module's weights
    and a checksum of them all, which :func:`load` checks;
    ``torch.load(path, weights_only=True)`` reads it and
    :func:`load` rebuilds the estimator from it. Nothing in it is code: a
    parameter that is a class or a function (``encoder=MyNet``) cannot be
    saved, and ``save`` says so.

    Parameters
    ----------
    estimator : fitted sk_replearn estimator
        A neural estimator, fine-tuner, or :class:`~sk_replearn.PCATransformer`
        / :class:`~sk_replearn.KMeansTransformer`.
    path : str or path-like
        The file to write (conventionally ``*.pt``).

    Raises
    ------
    TypeError
        If a parameter or fitted attribute is not data.
    ValueError
        If ``set_params`` changed a parameter of what a neural estimator or
        fine-tuner built (a width, ``head``, ``strategy``, ``optimizer``, a
        fine-tuner's ``representation__n_components``, ...) since ``fit``:
        the file would pair the fitted network with parameters that do not
        build it. Set the parameter back, or fit again.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sk_replearn import PCATransformer
    >>> from sk_replearn.persistence import load, save
    >>> X = np.random.default_rng(0).normal(size=(20, 4))
    >>> pca = PCATransformer(n_components=2).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "pca.pt")
    >>> save(pca, path)
    >>> np.allclose(load(path).transform(X), pca.transform(X))
    True
    """
    check_is_fitted(estimator)
    payload = {
        "format": _FORMAT,
        "version": _VERSION,
        "estimator": estimator_to_plain(estimator, type(estimator).__name__),
    }
    _atomic_save(payload, path)


def load(path, *, device=None) -> BaseEstimator:
    """Load an estimator written by :func:`save`.

    The file is read with ``torch.load(weights_only=True)``, so it can hold
    only tensors and plain data: a file with anything else (a pickle that
    would run code) is refused. The module is rebuilt from the saved
    parameters and its weights loaded into it.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    device : str, torch.device or None, default=None
        Device to put the model on (sets the ``device`` parameter of the
        estimator and of the estimators in it, such as a fine-tuner's
        ``representation``), e.g. ``"cpu"`` for a model trained on a GPU;
        None keeps the saved one.

    Returns
    -------
    estimator : fitted estimator
        Equal in every output to the one saved.

    Raises
    ------
    ValueError
        If the file is not an sk_replearn file, holds more than data, is
        damaged (cut off, or what it holds does not match the checksum
        written with it), or holds an estimator that this version of
        sk_replearn cannot rebuild (parameters it does not have, or none: a
        file of another version).
    OSError
        If the file cannot be opened (``FileNotFoundError``,
        ``PermissionError``, ``IsADirectoryError``).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sk_replearn import KMeansTransformer
    >>> from sk_replearn.persistence import load, save
    >>> X = np.random.default_rng(0).normal(size=(20, 3))
    >>> km = KMeansTransformer(n_clusters=2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "km.pt")
    >>> save(km, path)
    >>> load(path).n_clusters
    2
    """
    payload = _read(path, _FORMAT)
    spec = payload.get("estimator")
    if not isinstance(spec, dict):
        raise _other_version(os.fspath(path), "holds no estimator ('estimator')")
    return _build(spec, device, os.fspath(path))


#: The errors of a file that could not be opened, which :func:`_read` raises
#: as they are.
_NOT_OPENED = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def _read(path, fmt: str) -> dict:
    """The payload of an sk_replearn file of format ``fmt``, checked.

    An OSError of a file that cannot be opened is raised as it is; a file
    that opens but is not such a file (cut off, damaged, another kind of
    file, a pickle) raises a ValueError naming it.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        # No such file, a folder, no permission: said as it is. torch's zip
        # reader raises a bare OSError (EINVAL) too, for a file cut off past
        # its first kilobyte (an interrupted copy or download).
        if isinstance(exc, _NOT_OPENED) or not os.path.isfile(path):
            raise
        raise _damaged(path, exc) from exc
    except Exception as exc:  # torch.load fails as many ways as files can be odd
        # (a text file: KeyError; an empty one: EOFError; a pickle: Unpickling)
        if _cut_off_zip(path):  # cut within its first kilobyte: a RuntimeError
            raise _damaged(path, exc) from exc
        raise ValueError(
            f"{os.fspath(path)!r} is not a file written by sk_replearn, or holds "
            f"more than data (e.g. a pickle that would run code); it was not "
            f"loaded. ({type(exc).__name__}: {(str(exc) or '-').splitlines()[0][:200]})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise ValueError(f"{os.fspath(path)!r} is not a {fmt} file.")
    version = payload.get("version", 0)
    if not is_int(version):
        raise ValueError(
            f"{os.fspath(path)!r} is not a {fmt} file that can be read: its "
            f"format version is {version!r}, not a whole number."
        )
    if version > _VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written by a newer sk_replearn (format "
            f"version {payload['version']}); upgrade sk_replearn to load it."
        )
    # Files written before checksums hold none and are read as they are.
    if "checksum" in payload and payload["checksum"] != _checksum(payload):
        raise ValueError(
            f"{os.fspath(path)!r} is damaged: what it holds does not match the "
            "checksum written with it (a disk or copy error changed it after "
            "it was written); it was not loaded. Restore it from a copy, or "
            "save the estimator again."
        )
    return payload


def _damaged(path, exc: Exception) -> ValueError:
    """The error for a file that begins as save() writes one but is cut off."""
    return ValueError(
        f"{os.fspath(path)!r} is damaged: torch cannot read it as the zip "
        "archive save() writes (a file cut off by an interrupted copy or "
        "download reads so); it was not loaded. Restore it from a copy, or "
        f"save the estimator again. ({type(exc).__name__}: "
        f"{(str(exc) or '-').splitlines()[0][:200]})"
    )


def _cut_off_zip(path) -> bool:
    """Whether ``path`` begins as a zip archive but lacks the end of one."""
    try:
        with open(path, "rb") as file:
            begins_as_zip = file.read(4) == b"PK\x03\x04"
        return begins_as_zip and not zipfile.is_zipfile(path)
    except OSError:
        return False


def _checksum(payload: dict) -> str:
    """A digest of everything in ``payload`` but its own ``"checksum"``.

    ``torch.load`` does not check the CRCs of the zip file it reads, so a
    flipped bit in a weight would load silently; :func:`_read` compares
    this digest to the one :func:`_atomic_save` wrote.
    """
    return _digest_of({k: v for k, v in payload.items() if k != "checksum"})


def _atomic_save(payload: dict, path) -> None:
    """Write to a temporary file and rename it: never a half-written file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"Cannot save to {path!r}: the folder {folder!r} does not exist; "
            "create it first."
        )
    payload = {**payload, "checksum": _checksum(payload)}
    # A name of its own, created only if no file has it (never a file of
    # the user's, nor another thread's write to the same path), beside the
    # file so that the rename is atomic; opened as any file, with the
    # permissions the umask gives (mkstemp's would be the owner's alone).
    tmp = f"{path}.{secrets.token_hex(8)}.tmp"
    try:
        with open(tmp, "xb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
