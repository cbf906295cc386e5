"""``save`` and ``load`` as methods of every sk_replearn estimator."""

from __future__ import annotations

import os

from sklearn.utils.validation import check_is_fitted

from .._util import with_article
from . import _files

__all__ = ["SaveLoadMixin"]


class SaveLoadMixin:
    """:meth:`save` and :meth:`load` through :mod:`sk_replearn.persistence`."""

    def save(self, path) -> None:
        """Save the fitted estimator to ``path``, as data that runs no code.

        The file holds the parameters, the fitted attributes and, for a
        neural estimator, the network's weights (and optimizer state and
        history), in a format ``torch.load(path, weights_only=True)`` reads,
        with a checksum of it all; :meth:`load` rebuilds the network from
        the parameters and loads the weights into it.
        ``callbacks`` and ``accelerator`` are saved as None (they say how a
        fit runs, not what it learned). A parameter that is code, such as an
        ``encoder`` class or a ``head`` function, cannot be saved: ``save``
        raises a TypeError. Pickling (``joblib.dump``) works too, but
        loading a pickle runs code: use it only for files you trust, and
        prefer ``save``/``load`` to exchange models.

        Parameters
        ----------
        path : str or path-like
            The file to write, conventionally ``*.pt``.

        Raises
        ------
        TypeError
            If a parameter or fitted attribute is not data.
        ValueError
            If ``set_params`` changed a parameter of what the estimator
            built (a width, a fine-tuner's ``head`` or
            ``representation__n_components``, ...) since ``fit``: set it
            back, or fit again.

        See Also
        --------
        sk_replearn.persistence.save : The same for any sk_replearn estimator.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from sk_replearn import AutoencoderTransformer
        >>> X = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
        >>> ae = AutoencoderTransformer(n_components=2, max_epochs=1,
        ...                             random_state=0).fit(X)
        >>> path = os.path.join(tempfile.mkdtemp(), "ae.pt")
        >>> ae.save(path)
        >>> same = AutoencoderTransformer.load(path)
        >>> np.array_equal(same.transform(X), ae.transform(X))
        True
        """
        check_is_fitted(self)
        _files.save(self, path)

    @classmethod
    def load(cls, path, *, device=None):
        """Load an estimator written by :meth:`save`.

        The file is read with ``torch.load(weights_only=True)``: it can hold
        tensors and plain data only, so loading it never runs code; a file
        holding anything else is refused with a ValueError.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.
        device : str, torch.device or None, default=None
            Device for the network (sets the ``device`` parameter), e.g.
            ``"cpu"`` for a model trained on a GPU; None keeps the saved one.

        Returns
        -------
        estimator : fitted estimator of this class
            Its outputs equal the saved estimator's.

        Raises
        ------
        ValueError
            If the file is not an sk_replearn file, holds more than data, or
            is damaged (cut off, or what it holds does not match its
            checksum).
        TypeError
            If it holds an estimator of another class.
        OSError
            If the file cannot be opened (``FileNotFoundError``, ...).

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from sk_replearn import AutoencoderTransformer
        >>> X = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
        >>> path = os.path.join(tempfile.mkdtemp(), "ae.pt")
        >>> AutoencoderTransformer(max_epochs=1, random_state=0).fit(X).save(path)
        >>> AutoencoderTransformer.load(path, device="cpu").n_features_in_
        6
        """
        estimator = _files.load(path, device=device)
        if not isinstance(estimator, cls):
            name = type(estimator).__name__
            raise TypeError(
                f"{os.fspath(path)!r} holds {with_article(name)}, not "
                f"{with_article(cls.__name__)}; load "
                f"it with {name}.load or sk_replearn.persistence.load."
            )
        return estimator
