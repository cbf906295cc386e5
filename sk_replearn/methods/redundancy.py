"""Redundancy reduction: Barlow Twins (the cross-correlation of two views'
codes driven to the identity; Zbontar et al., 2021) and VICReg (variance,
invariance and covariance terms; Bardes et al., 2022)."""

from __future__ import annotations

from numbers import Real

from sklearn.utils._param_validation import Interval

from .._docstrings import fill_doc
from ..base import store_params
from ..objectives.noncontrastive import BarlowTwinsObjective, VICRegObjective
from .two_view import TWO_VIEW_DOCS, _auto_epochs_doc, _TwoViewTransformer

__all__ = ["BarlowTwinsTransformer", "VICRegTransformer"]


@fill_doc(
    {**TWO_VIEW_DOCS, "max_epochs": _auto_epochs_doc(160_000)},
    hidden_default="the encoder's width",
)
class BarlowTwinsTransformer(_TwoViewTransformer):
    """Barlow Twins representation: decorrelate, and agree across views.

    The cross-correlation matrix between the batch-standardised projections
    of the two views is driven to the identity: its diagonal to 1 (the two
    views agree on every feature) and its off-diagonal to 0 (features carry
    no redundant information), which rules out collapse without negatives.
    ``transform`` returns the encoder's output. Both views pass through the
    network as one batch, so that the projector's batch normalisation pools
    their statistics (the authors' implementation runs each view alone).

    Parameters
    ----------
    {params n_components..hidden_dim}
    lambd : float, default=5e-3
        Weight ``λ`` (>= 0) of the off-diagonal, redundancy-reduction term
        (spelled as torch spells λ: ``lambda`` is a Python keyword). The
        paper's value, set for 8,192 dimensions: the off-diagonal term
        sums ``D² − D`` entries against the diagonal's ``D``, so at the
        default ``projection_dim=512`` it weighs about 16 times less than
        in the paper; ``λ = 5e-3 · 8192 / D`` (0.08 at 512) keeps the
        paper's ratio.
    {params input_shape..accelerator}

    Attributes
    ----------
    {attributes net_ n_components_ training max_epochs_ collapse_std_ input}

    See Also
    --------
    SimSiamTransformer : Agreement only, with a stop-gradient.

    Notes
    -----
    The projector's output is wide, as in the paper, but its two hidden
    layers default to the encoder's width, as the other methods' heads do,
    where the paper makes them as wide as the output. On MNIST-1D (4,000
    training signals, the default ResNet, 256 wide, and views, 40 epochs;
    linear probe on the 1,000 test signals, two threads), hidden layers of
    256 probed 0.932, 0.935 and 0.925 (seeds 0, 1, 2), with a fastest
    epoch of 0.92 to 1.05 s; hidden layers of 512, the former default,
    0.928, 0.928 and 0.923, with 1.02 to 1.05 s; of 128, 0.932, 0.938 and
    0.927. With 4 labels a class (five draws) a ``LogisticRegression`` on
    the features scored 0.823 against 0.752 with hidden layers of 512
    (``benchmarks/bench_labels.py``; 0.797 in its run since, when the signal
    networks had begun to compute channels-last). The wide output earns its cost: three
    layers of 256 probed 0.902 and 0.908 (seeds 0, 1), and 30 epochs of the
    former default 0.908 (seed 0).

    References
    ----------
    .. [1] J. Zbontar, L. Jing, I. Misra, Y. LeCun and S. Deny, "Barlow
       Twins: Self-Supervised Learning via Redundancy Reduction", ICML 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.methods import BarlowTwinsTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> barlow = BarlowTwinsTransformer(input_shape=(1, 8, 8), max_epochs=2,
    ...                                 random_state=0)
    >>> barlow.fit_transform(X[:200]).shape
    (200, 256)
    """

    _objective = BarlowTwinsObjective
    _min_validation = 2  # its loss compares the samples of a batch
    #: 40 epochs on MNIST-1D probed 0.926 to 0.932 against 0.907 after 30, in
    #: 43 s on 2 cores, with the former 512-wide hidden layers
    #: (benchmarks/bench_ssl.py); 0.925 to 0.935 with the present ones.
    _auto_samples_seen = 160_000
    _parameter_constraints: dict = {
        **_TwoViewTransformer._parameter_constraints,
        "lambd": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components: int | None = None,
        *,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        views="auto",
        projection_dim: int = 512,
        hidden_dim: int | None = None,
        lambd: float = 5e-3,
        input_shape: tuple[int, ...] | None = None,
        max_epochs: int | str = "auto",
        batch_size: int = 128,
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

    def _objective_params(self) -> dict:
        return {"lambd": self.lambd}


@fill_doc(TWO_VIEW_DOCS, hidden_default="``projection_dim``")
class VICRegTransformer(_TwoViewTransformer):
    """VICReg representation: invariance, variance and covariance, no negatives.

    The two views' embeddings (after a 3-layer expander) are pulled
    together by a mean squared error, while a hinge keeps the standard
    deviation of every dimension above 1 along the batch and a penalty on
    the off-diagonal covariance decorrelates the dimensions: collapse is
    ruled out by the variance term alone, without negatives, momentum
    encoders or batch-wise normalisation of the loss. ``transform`` returns
    the encoder's output. Both views pass through the network as one
    batch, so that batch normalisation pools their statistics (the
    authors' implementation runs each view alone).

    Parameters
    ----------
    {params n_components..hidden_dim}
    invariance_weight : float, default=25.0
        Weight ``λ`` (>= 0) of the invariance (mean squared error) term.
    variance_weight : float, default=25.0
        Weight ``μ`` (>= 0) of the variance (std hinge) term, the sum of
        both branches' hinges as the paper's equation writes it (and
        solo-learn computes it). The authors' code, whose runs set the
        paper's 25 / 25 / 1, halves that sum: ``variance_weight=25`` here
        is their 50, and 12.5 here is their 25.
    covariance_weight : float, default=1.0
        Weight ``ν`` (>= 0) of the covariance (decorrelation) term. At
        least one of the three weights must be above 0.
    {params input_shape..accelerator}

    Attributes
    ----------
    {attributes net_ n_components_ training max_epochs_ collapse_std_ input}

    See Also
    --------
    BarlowTwinsTransformer : Decorrelation through the cross-correlation.

    References
    ----------
    .. [1] A. Bardes, J. Ponce and Y. LeCun, "VICReg: Variance-Invariance-
       Covariance Regularization for Self-Supervised Learning", ICLR 2022.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.methods import VICRegTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> vicreg = VICRegTransformer(input_shape=(1, 8, 8), max_epochs=2,
    ...                            random_state=0)
    >>> vicreg.fit_transform(X[:200]).shape
    (200, 256)
    """

    _objective = VICRegObjective
    _min_validation = 2  # its loss compares the samples of a batch
    _parameter_constraints: dict = {
        **_TwoViewTransformer._parameter_constraints,
        "invariance_weight": [Interval(Real, 0, None, closed="left")],
        "variance_weight": [Interval(Real, 0, None, closed="left")],
        "covariance_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components: int | None = None,
        *,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        views="auto",
        projection_dim: int = 512,
        hidden_dim: int | None = None,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        input_shape: tuple[int, ...] | None = None,
        max_epochs: int | str = "auto",
        batch_size: int = 128,
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

    def _check_params_against_data(self, n_samples: int) -> None:
        super()._check_params_against_data(n_samples)
        weights = (self.invariance_weight, self.variance_weight, self.covariance_weight)
        if not any(weights):
            # A loss of 0 at every step: the fit would train nothing.
            raise ValueError(
                "invariance_weight, variance_weight and covariance_weight are "
                "all 0: the loss is 0 and the encoder learns nothing; set at "
                "least one above 0 (the paper's are 25, 25 and 1)."
            )

    def _objective_params(self) -> dict:
        return {
            "invariance_weight": self.invariance_weight,
            "variance_weight": self.variance_weight,
            "covariance_weight": self.covariance_weight,
        }
