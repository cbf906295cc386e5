"""How a fine-tuner's parameters are cloned and set around a fitted
representation.

:class:`FineTunerParamsMixin` keeps a fitted ``representation`` fitted
through ``clone`` (a grid search then pre-trains nothing again) and makes a
nested ``set_params`` that changes what it learns replace it by an unfitted
clone, which ``fit`` pre-trains.
"""

from __future__ import annotations

import copy

from sklearn.base import clone

from .._fingerprint import _NOT_FINGERPRINTED
from ..base import is_fitted
from ._encoder import _own_copy

__all__ = ["FineTunerParamsMixin"]

#: Parameters of a representation whose change keeps it fitted.
_KEEP_FITTED = frozenset({*_NOT_FINGERPRINTED, "transform_layer"})


def _same_value(a, b) -> bool:
    """Whether a parameter's value ``b`` is its present value ``a``."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays and the like: compared by identity
        return False


class FineTunerParamsMixin:
    """``clone`` and ``set_params`` of
    :class:`~sk_replearn.transfer.base.BaseFineTuner`."""

    def __sklearn_clone__(self):
        """Clone the parameters, but keep a fitted representation fitted.

        ``sklearn.base.clone`` would return an unfitted copy of a fitted
        representation, so a grid search would pre-train it again on each
        fold. The clone gets a copy of it, fitted, so a grid search over the
        fine-tuner's own parameters pre-trains nothing again; a
        ``set_params`` on the clone (``representation__lr=...``, as a grid
        over the representation's parameters does) replaces the copy (see
        :meth:`set_params`), never the caller's object. An unfitted
        representation is cloned as usual. As ``clone`` does, the clone keeps the output
        container of ``set_output`` and the metadata requests.
        """
        rep = self.representation
        if rep is None or not is_fitted(rep):
            return super().__sklearn_clone__()
        params = {
            k: clone(v, safe=False)
            for k, v in self.get_params(deep=False).items()
            if k != "representation"
        }
        new = type(self)(representation=_own_copy(rep), **params)
        for attr in ("_metadata_request", "_sklearn_output_config"):
            if hasattr(self, attr):
                setattr(new, attr, copy.deepcopy(getattr(self, attr)))
        return new

    def set_params(self, **params):
        """Set the parameters, as scikit-learn's ``set_params`` does.

        A nested parameter of a *fitted* representation
        (``representation__n_components=8``, as a grid over it sets) that
        changes what it learns would leave its fitted weights out of step
        with its parameters, and ``fit`` would reuse them as they are. Such
        a change replaces the representation by an unfitted clone with the
        new values, which ``fit`` pre-trains; the fitted object is left as
        it was. Parameters of how it runs (``verbose``, ``device``, ...)
        and ``transform_layer`` are set on it in place, as usual. With
        ``representation=None``, a nested parameter sets up the default it
        stands for (an unfitted ``AutoencoderTransformer``) with the value.

        Parameters
        ----------
        **params : dict
            Estimator parameters, ``representation__<name>`` for the
            representation's.

        Returns
        -------
        self : estimator
            The estimator.
        """
        nested = {
            k.split("__", 1)[1]: v
            for k, v in params.items()
            if k.startswith("representation__")
        }
        rep = params.get("representation", self.representation)
        replacement = None
        if nested and rep is None:  # the default it stands for, set up
            replacement = self._default_representation()
        elif nested and is_fitted(rep):
            current = rep.get_params(deep=True)
            if any(
                k.rsplit("__", 1)[-1] not in _KEEP_FITTED
                and not _same_value(current.get(k), v)
                for k, v in nested.items()
            ):
                replacement = clone(rep)
        if replacement is not None:
            params = {
                k: v
                for k, v in params.items()
                if k != "representation" and not k.startswith("representation__")
            }
            params["representation"] = replacement.set_params(**nested)
        return super().set_params(**params)
