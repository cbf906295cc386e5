"""Contrastive Multiview Coding (CMC): one encoder a view, InfoNCE between views.

The views are the user's groups of columns of X (``views=``), or the arrays
of X given as a list (one per view). The estimator resolves them once
against the data in ``fit`` (``views_``, ``view_shapes_``) and trains
:class:`~sk_replearn.objectives.cmc.CMCObjective`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import Interval, StrOptions

from .._docstrings import fill_doc
from ..base import store_params
from ..losses.multiview import GRAPHS
from ..objectives.cmc import CMCObjective
from ._cmc_views import CMCViewsMixin
from .two_view import IN_BATCH_NEGATIVES_DOC, TWO_VIEW_DOCS, _TwoViewTransformer

__all__ = ["CMCTransformer"]

#: CMC's own description of the shared parameters.
CMC_DOCS = {
    **TWO_VIEW_DOCS,
    "batch_size": IN_BATCH_NEGATIVES_DOC,
    "n_components": """\
Width of each view's encoding: an int ends every view's encoder with a
linear layer to ``n_components`` features
(:class:`~sk_replearn.nn.Bottleneck`); None keeps the encoders' own
widths (256 for the default CNN on an image, 128 for the default MLP on
a vector or ResNet on a signal). ``transform`` returns the views'
encodings side by side, ``n_views * n_components`` columns, or one
view's (``transform_view``).""",
    "encoder": """\
The encoder of every view (each view has its own, of its own shape).
"auto" picks by the view's shape: an MLP for a vector, a small ResNet
for a signal ``(C, L)``, a CNN for an image ``(C, H, W)``. A class is
called as ``encoder(input_shape=view_shape, **encoder_kwargs)``; a module
instance (or a factory of no arguments) is copied for every view, so it
must take every view's shape.""",
    "transform_layer": """\
Which block's output ``transform`` returns, as the other estimators
count blocks (see :class:`SimCLRTransformer`). CMC's encoder runs one
network per view side by side, and the blocks of the views' networks do
not line up (each has the depth its view's shape gives it), so the
encoder of all the views counts as one block: 0 and -1 (the default)
both return the views' encodings, and ``FineTuner(freeze_layers=1)``
freezes all of it. Any other value raises a ValueError saying so. To
read inside one view's network, take it from :meth:`export_encoder`.""",
}


@fill_doc(CMC_DOCS, hidden_default="the view's encoding width")
class CMCTransformer(CMCViewsMixin, _TwoViewTransformer):
    """CMC representation: the views of a sample agree, other samples differ.

    Contrastive Multiview Coding learns from data that come in several
    *views*: the colour channels of an image (luminance and chrominance),
    several sensors or modalities recording the same event, the column
    groups of a multi-view table, or parts of a sample such as the left and
    right halves of an image. Each view has its own encoder and projection
    head; InfoNCE ``-log exp(z_a·z_b₊/τ) / Σⱼ exp(z_a·z_bⱼ/τ)`` between the
    projections of two views pulls a sample's views together and pushes the
    other samples' views away, for every pair of views (``graph="full"``) or
    every view with a core view (``graph="core"``). What the views share is
    what the representation learns; ``transform`` returns the encoders'
    outputs, before the heads, side by side.

    The views are groups of columns of a 2-D ``X`` (``views``), which is
    what a :class:`~sklearn.pipeline.Pipeline` and
    :class:`~sklearn.model_selection.GridSearchCV` pass and slice by rows.
    For convenience ``fit`` and ``transform`` also take ``X`` as a list or
    tuple of arrays, one per view, each ``(n_samples, ...)`` with at least
    two dimensions (a numpy array, tensor or DataFrame; a view of one
    column as ``(n_samples, 1)``): they are
    flattened and joined side by side, and each array's columns become a
    view (an N-D array ``(n, C, H, W)`` keeps its shape). A list of 1-D
    arrays or of nested lists is read as scikit-learn reads a list, its
    items as samples (with a warning where there are fewer items than
    values in each, as per-view data would be). This equals
    passing ``np.hstack`` of the flattened arrays with ``views`` set to the
    consecutive groups (``views_``), which is the form to use in a
    pipeline, since cross-validation cannot slice a list of arrays by rows.

    Parameters
    ----------
    {params n_components..n_components}
    views : "auto" or list of array-like, default="auto"
        The views, one group of columns each (at least 2 groups), as indices
        (negative ones from the end) into the columns of 2-D ``X`` (or into the
        flattened samples of N-D ``X``), boolean masks of the columns, or column
        names of a DataFrame. A view's values are taken in column order; the
        groups may not overlap, and columns in no group are not used. "auto"
        makes two views: for a table, the first ``d // 2`` columns and the rest;
        for images ``(C, H, W)`` and signals ``(C, L)`` with several channels,
        the first ``C // 2`` channels and the rest (for Lab images, L and ab,
        the paper's views); for one channel, the first half of the width (or
        length) and the rest. When ``X`` is a list of arrays, its arrays are the
        views and ``views`` must be "auto".
    view_shapes : "auto" or list of (tuple of int or None), default="auto"
        The shape of one sample of each view, which picks its encoder: a
        tuple such as ``(1, 8, 4)`` (its product the view's number of
        columns), or None for a flat vector. "auto": when ``input_shape`` is
        an image or signal and a view's columns form a box of it (a block
        of channels, rows, columns or steps, also strided, as the even
        columns of an image), the box's shape, else a flat vector; for X as
        a list of arrays, the shape of each N-D array.
    graph : {"full", "core"}, default="full"
        Which pairs of views are contrasted: every pair (``V (V - 1) / 2``
        pairs of ``V`` views), or each view with ``core_view``
        (``V - 1``). The same for two views.
    core_view : int, default=0
        The core view of ``graph="core"``, an index into the views.
    transform_view : int or None, default=None
        What ``transform`` returns: None, every view's encoding, side by
        side in view order; an int, that view's encoding alone (to encode
        data of which only that view is informative, the other columns
        still given). Each view has its own encoder, so the encodings of two
        views are in coordinates of their own and cannot be compared with
        each other; the loss compares the views after each one's projection
        head (``net_.module_.projectors[view]``, which maps a view's
        encoding to the space where its views meet).
    augmentation : "auto", views object, callable or None, default=None
        A random augmentation of each view, applied to the standardised
        views before they are encoded for the loss (in training, and in
        ``score`` with a fixed seed; never in ``transform``): "auto" is the
        family of :mod:`sk_replearn.views` that fits each view's shape, with
        its defaults; a views object (e.g. ``ImageViews(crop_scale=None,
        noise_std=0.3)``) or a callable is applied to every view and must
        fit each view's shape. None: the views themselves, which differ from
        each other already. In ``benchmarks/bench_cmc.py``, "auto" raised
        the probe on the halves of MNIST-1D signals from 0.725 to 0.831, but
        on the halves of the digits lowered it from 0.987 to 0.969 (crops of
        a 8×4 half lose too much; Gaussian noise alone gave 0.984, both at
        ``lr=1e-3``).
    {params encoder..hidden_dim}
    temperature : float, default=0.5
        Temperature ``τ`` of the InfoNCE softmax (> 0). The paper uses 0.07
        with a memory bank of 16384 negatives; with the batch's negatives a
        higher one did better on the digits halves of
        ``benchmarks/bench_cmc.py`` (probe 0.987 at 0.5, 0.971 at 0.1, 0.969
        at 0.07, with ``lr=1e-3``). ``lr=3e-3`` made the probe steadier
        over seeds (0.987, 0.984, 0.984 for ``random_state`` 0, 1, 2,
        against 0.987, 0.980, 0.973).
    {params input_shape..accelerator}

    Attributes
    ----------
    views_ : list of list of int
        The columns of each view, sorted (into the flattened samples).
    view_shapes_ : list of tuple of int
        The shape of one sample of each view.
    {attributes net_ n_components_ training max_epochs_ collapse_std_ input}

    See Also
    --------
    SimCLRTransformer : Two random augmentations of a sample, one encoder.

    References
    ----------
    .. [1] Y. Tian, D. Krishnan and P. Isola, "Contrastive Multiview
       Coding", arXiv:1906.05849, 2019 (ECCV 2020).

    Examples
    --------
    Two views of each 8×8 digit, its left and right four pixel columns, as
    the columns of the flattened images (each view an image of 8×4):

    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.methods import CMCTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> cols = np.arange(64).reshape(8, 8)
    >>> cmc = CMCTransformer(16, views=[cols[:, :4].ravel(), cols[:, 4:].ravel()],
    ...                      input_shape=(1, 8, 8), max_epochs=2, random_state=0)
    >>> cmc.fit_transform(X[:200]).shape
    (200, 32)
    >>> cmc.view_shapes_
    [(1, 8, 4), (1, 8, 4)]
    >>> cmc.get_feature_names_out()[[0, 16]].tolist()
    ['cmctransformer_view0_0', 'cmctransformer_view1_0']

    The same views given as a list of arrays, one per view:

    >>> images = X[:200].reshape(-1, 1, 8, 8)
    >>> halves = [images[..., :4], images[..., 4:]]
    >>> cmc = CMCTransformer(16, max_epochs=2, random_state=0).fit(halves)
    >>> cmc.transform(halves).shape, cmc.view_shapes_
    ((200, 32), [(1, 8, 4), (1, 8, 4)])
    """

    _objective = CMCObjective
    _min_validation = 2  # its loss compares the samples of a batch
    _parameter_constraints: dict = {
        **_TwoViewTransformer._parameter_constraints,
        "views": [StrOptions({"auto"}), list, tuple],
        "view_shapes": [StrOptions({"auto"}), list, tuple],
        "graph": [StrOptions(set(GRAPHS))],
        "core_view": [Interval(Integral, 0, None, closed="left")],
        "transform_view": [Interval(Integral, 0, None, closed="left"), None],
        "augmentation": [StrOptions({"auto"}), callable, None],
        "temperature": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        n_components: int | None = None,
        *,
        views="auto",
        view_shapes="auto",
        graph: str = "full",
        core_view: int = 0,
        transform_view: int | None = None,
        augmentation=None,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        temperature: float = 0.5,
        input_shape: tuple[int, ...] | None = None,
        max_epochs: int | str = "auto",
        batch_size: int = 256,
        num_workers: int = 0,
        lr: float = 3e-3,
        optimizer="adamw",
        weight_decay: float = 1e-4,
        lr_schedule: str | None = "cosine",
        warmup_epochs: int = 0,
        callbacks: list | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        device="auto",
        precision: str = "32",
        compile: bool = False,
        verbose: int = 0,
        random_state=None,
        warm_start: bool = False,
        checkpoint_dir=None,
        transform_layer: int = -1,
        accelerator=None,
    ) -> None:
        store_params(self, locals())

    def fit(self, X, y=None):
        """Train one encoder a view, contrasting the views of every sample of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
(n_samples, *input_shape), or list of array-like
            Training samples, whose columns ``views`` groups; or one array
            ``(n_samples, ...)`` per view.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.

        Warns
        -----
        CollapseWarning
            If the learned representation of (a sample of) X has collapsed.
        """
        return super().fit(X, y)

    def transform(self, X):
        """Encode X: the views' encodings side by side, or one view's.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
(n_samples, *input_shape), or list of array-like
            Samples to encode, as in ``fit``: with the columns of the fitted
            views, or one array per view when ``fit`` got a list.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components_), dtype float32
            The encodings of the views (``transform_view=None``), in view
            order, or of view ``transform_view``.
        """
        return super().transform(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Output feature names by view: ``cmctransformer_view<v>_<j>``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; checked against ``feature_names_in_`` when given.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of :meth:`transform`'s output: column ``j``
            of view ``v``'s encoding.
        """
        names = super().get_feature_names_out(input_features)
        module = self._module()
        self._inner_layer(module)  # a transform_layer that is no block: say so
        encoders = module.backbone.encoders
        shown = (
            range(len(encoders))
            if self.transform_view is None
            else [self.transform_view]
        )
        prefix = type(self).__name__.lower()
        names = [
            f"{prefix}_view{v}_{j}"
            for v in shown
            for j in range(encoders[v].out_features)
        ]
        return np.asarray(names, dtype=object)

    @property
    def _n_features_out(self) -> int:
        return self._module().backbone.out_features

    #: ``transform_view`` only says which encodings ``transform`` returns.
    _WARM_APPLIED = _TwoViewTransformer._WARM_APPLIED | {"transform_view"}

    def set_params(self, **params):
        """Set the parameters, as scikit-learn's ``set_params`` does.

        ``transform_view`` needs no refit: on a fitted estimator,
        ``n_components_`` follows it.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : CMCTransformer
            The estimator.
        """
        super().set_params(**params)
        if "transform_view" in params and hasattr(self, "net_"):
            try:
                self.n_components_ = self._n_features_out
            except ValueError:  # no such view: transform will say so
                pass
        return self

    # -- private helpers -----------------------------------------------------
    def _objective_params(self) -> dict:
        return {
            "temperature": self.temperature,
            "graph": self.graph,
            "core_view": self.core_view,
            "output_view": self.transform_view,
        }

    def _build_objective(self) -> CMCObjective:
        augmentation = self.augmentation
        if isinstance(augmentation, BaseEstimator):
            augmentation = clone(augmentation)
        return CMCObjective(
            self.input_shape_,
            self.views_,
            self.view_shapes_,
            encoder=self.encoder,
            encoder_kwargs=self.encoder_kwargs,
            augmentation=augmentation,
            n_components=self.n_components,
            projection_dim=self.projection_dim,
            hidden_dim=self.hidden_dim,
            **self._objective_params(),
        )

    def _module(self):
        """The fitted objective, encoding the views ``transform_view`` asks for."""
        module = super()._module()
        module.backbone.output_view = self._check_view_index(
            "transform_view", self.transform_view, len(self.views_)
        )
        return module
