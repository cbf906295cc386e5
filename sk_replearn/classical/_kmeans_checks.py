"""The checks of KMeansTransformer's input and parameters against its data.

:class:`KMeansChecksMixin` gives
:class:`~sk_replearn.classical.kmeans.KMeansTransformer` the checks that
``fit``, ``partial_fit`` and ``score`` run before computing: X's spread
about the offset the distances are computed from (too wide overflows
float32, too narrow underflows it), the sample weights, and
``n_clusters``, ``init`` and ``n_init`` against the shape of X.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import _check_sample_weight, check_array

from .._validation import positive_strides
from .._warn import warn_user
from ..data._precision import FLOAT32_MAX, _float32_square_limit
from ._kmeans_blocks import _fit_offset

#: The least spread about the offset that ``fit`` takes (see ``_check_range``).
_SPREAD_FLOOR = 1e-15


class KMeansChecksMixin:
    """The checks of X, its sample weights and the parameters against X.

    Mixed into :class:`~sk_replearn.classical.kmeans.KMeansTransformer`
    ahead of :class:`~sk_replearn.base.BaseRepresentation`, whose
    ``_validate_X`` calls the :meth:`_check_range` given here. It reads the
    estimator's parameters, ``_device()`` and ``input_shape_``, and sets
    ``_offset`` and ``_n_init``.
    """

    def _check_range(self, X: np.ndarray, *, reset: bool) -> None:
        """Refuse X whose shifted values float32 cannot square and sum.

        The distances are computed from ``X - _offset``, so a large common
        offset, such as timestamps in nanoseconds, is fine; values spread
        too widely about it overflow float32, and values spread too narrowly
        (below 1e-15 from the offset, squares below 1e-30) underflow it:
        their squared distances lose their digits and round to 0, and every
        sample fell into one cluster, reported as "duplicate points". With
        ``reset`` (``fit``), the offset is computed here from this X and
        stored once X passes, for :meth:`_to_device` to shift X by.
        """
        offset32 = _fit_offset(X) if reset and X.size else self._offset
        if not np.isfinite(offset32).all():  # float64 X beyond float32's range
            raise ValueError(
                f"X holds values up to {float(np.abs(X).max()):.3g}, beyond the "
                f"range of float32 ({FLOAT32_MAX:.3g}), the "
                f"precision in which {type(self).__name__} computes; rescale X "
                "(e.g. with StandardScaler)."
            )
        if X.size:
            self._check_spread(X, offset32.astype(np.float64), reset=reset)
        if reset:
            self._offset = offset32

    def _check_spread(self, X: np.ndarray, offset: np.ndarray, *, reset: bool):
        name, d = type(self).__name__, X.shape[1]
        limit = _float32_square_limit(d)
        # A bound first, from X's extremes (a third of the time of the
        # columns' own, on 200,000 x 64): no value lies farther than it from
        # its column's offset; only near a limit are the columns read.
        hi, lo = float(X.max()), float(X.min())
        bound = max(hi - offset.min(), offset.max() - lo)
        if bound <= limit and (not reset or bound >= _SPREAD_FLOOR):
            return
        spread = float(
            np.maximum(
                np.abs(X.max(axis=0) - offset), np.abs(X.min(axis=0) - offset)
            ).max()
        )
        mean = "their mean" if reset else "the mean of the data fit saw"
        if spread > limit:
            raise ValueError(
                f"X holds values up to {spread:.3g} from {mean}: squared and "
                f"summed over its {d} features they overflow float32 (above "
                f"{limit:.3g}), the precision in which {name} computes; rescale "
                "X (e.g. with StandardScaler)."
            )
        if reset and 0 < spread < _SPREAD_FLOOR:
            raise ValueError(
                f"X's values lie at most {spread:.3g} from their mean: their "
                f"squared distances (at most {spread**2:.1g}) fall to the bottom "
                f"of the range of float32, in which {name} computes, where they "
                "lose their digits or round to 0; rescale X (e.g. with "
                "StandardScaler)."
            )

    @staticmethod
    def _check_weights(sample_weight, X: np.ndarray) -> np.ndarray | None:
        """Validated float64 sample weights (n,), or None for equal weights.

        Weights of 1 everywhere are the same as none, and take the same
        code (and random draws) as ``sample_weight=None``.
        """
        if sample_weight is None:
            return None
        sw = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        return None if np.all(sw == 1) else sw

    def _check_params_vs_data(self, X: np.ndarray) -> np.ndarray | None:
        """Check n_clusters and init against X; resolve ``_n_init``."""
        n, d = X.shape
        k = self.n_clusters
        if self._device().type == "mps":
            raise ValueError(
                f"device={self.device!r}: KMeansTransformer sums in float64, "
                "which Apple MPS lacks; use device='cpu' (or 'cuda')."
            )
        if k > n:
            raise ValueError(
                f"n_clusters={k} is larger than the number of samples, "
                f"n_samples={n}; use n_clusters <= n_samples."
            )
        is_array = not isinstance(self.init, str)
        if self.n_init == "auto":
            self._n_init = 10 if not is_array and self.init == "random" else 1
        else:
            self._n_init = self.n_init
        if not is_array:
            return None
        if self._n_init != 1:
            warn_user(
                "Explicit initial center position passed: performing only one "
                f"init in {type(self).__name__} instead of n_init={self._n_init}.",
                RuntimeWarning,
            )
            self._n_init = 1
        init = np.asarray(self.init)
        if init.ndim > 2:
            if init.shape[1:] != tuple(self.input_shape_):
                raise ValueError(
                    f"init has shape {init.shape}, but N-D initial centers must "
                    f"have shape (n_clusters, *input_shape) = "
                    f"{(k, *self.input_shape_)}, or pass them flat, "
                    f"({k}, {d})."
                )
            init = init.reshape(init.shape[0], -1)
        init = positive_strides(
            check_array(init, dtype=[np.float64, np.float32], input_name="init")
        )
        if init.shape != (k, d):
            raise ValueError(
                f"init has shape {init.shape}, but the initial centers must have "
                f"shape (n_clusters, n_features) = ({k}, {d})."
            )
        return init
