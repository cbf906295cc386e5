"""Non-contrastive learners that predict one view's code from the other's:
BYOL (against a momentum teacher) and SimSiam (against a stop-gradient).

DINO (:mod:`.dino`) and the redundancy-reduction methods, Barlow Twins and
VICReg (:mod:`.redundancy`), are imported here too, where pickles made
before they had their own modules look for them.
"""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval

from .._docstrings import fill_doc
from ..base import store_params
from ..objectives.noncontrastive import BYOLObjective, SimSiamObjective
from .dino import DINOTransformer
from .redundancy import BarlowTwinsTransformer, VICRegTransformer
from .two_view import TWO_VIEW_DOCS, _auto_epochs_doc, _TwoViewTransformer

__all__ = [
    "BYOLTransformer",
    "BarlowTwinsTransformer",
    "DINOTransformer",
    "SimSiamTransformer",
    "VICRegTransformer",
]


@fill_doc(
    {
        **TWO_VIEW_DOCS,
        "max_epochs": _auto_epochs_doc(180_000),
        "hidden_dim": (
            "int or None",
            "Hidden width of the projection head and of the predictor; None "
            "uses the encoder's width.",
        ),
    },
    hidden_default="the encoder's width",
)
class BYOLTransformer(_TwoViewTransformer):
    """BYOL representation: predict an EMA target's embedding of the other view.

    No negatives. An online network (encoder, projector, predictor) is
    trained so that its prediction for one view matches the projection of
    the other view by a target network, a slowly moving average of the
    online encoder and projector that receives no gradient. The predictor
    and the moving target keep the two branches from agreeing on a
    constant. ``transform`` returns the online encoder's output. Both
    views pass through each network as one batch, so that batch
    normalisation pools their statistics, as SimCLR's implementation does
    (BYOL's runs each view alone): on MNIST-1D, per-view passes probed
    0.871 against 0.868 (mean of seeds 0 to 2, one thread), in the same
    time.

    Parameters
    ----------
    {params n_components..hidden_dim}
    momentum : float, default=0.99
        Momentum ``τ`` of the target at the start of training,
        ``ξ ← τ ξ + (1 - τ) θ`` after each step; it rises to 1 on BYOL's
        cosine schedule. The paper's 0.996 suits hundreds of thousands of
        steps; fewer steps need a faster-moving target.
    {params input_shape..accelerator}

    Attributes
    ----------
    {attributes net_ n_components_ training max_epochs_ collapse_std_ input}

    See Also
    --------
    SimSiamTransformer : The same without the moving average.
    DINOTransformer : Self-distillation with a centred, sharpened teacher.

    References
    ----------
    .. [1] J.-B. Grill et al., "Bootstrap Your Own Latent: A New Approach to
       Self-Supervised Learning", NeurIPS 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.methods import BYOLTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> byol = BYOLTransformer(input_shape=(1, 8, 8), max_epochs=2, random_state=0)
    >>> byol.fit_transform(X[:200]).shape
    (200, 256)
    """

    _objective = BYOLObjective
    #: It learns slowly, as SimSiam: on MNIST-1D (one thread, seeds 0, 1, 2)
    #: 30 epochs probed 0.860, 0.868 and 0.877, 34 epochs 0.878, 0.866 and
    #: 0.848, 40 epochs 0.871, 0.885 and 0.869, 45 epochs 0.896, 0.898 and
    #: 0.889, 60 epochs 0.895, 0.907 and 0.885 (benchmarks/bench_ssl.py). 45
    #: epochs took 41 s on 2 cores (seed 0: 0.893) where 30 took 28 s.
    _auto_samples_seen = 180_000
    _parameter_constraints: dict = {
        **_TwoViewTransformer._parameter_constraints,
        "momentum": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(
        self,
        n_components: int | None = None,
        *,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        views="auto",
        projection_dim: int = 256,
        hidden_dim: int | None = None,
        momentum: float = 0.99,
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
        return {"momentum": self.momentum}


@fill_doc(
    {**TWO_VIEW_DOCS, "max_epochs": _auto_epochs_doc(200_000)},
    hidden_default="the encoder's width",
)
class SimSiamTransformer(_TwoViewTransformer):
    """SimSiam representation: a predictor and a stop-gradient, nothing else.

    Both views go through the same encoder and 3-layer projector; a
    predictor maps one view's projection to the other's, which is treated
    as a constant (stop-gradient). The paper shows that the stop-gradient
    alone prevents collapse: no negatives, no momentum encoder, no large
    batches. ``transform`` returns the encoder's output. Both views pass
    through each network as one batch, so that batch normalisation pools
    their statistics (SimSiam's implementation runs each view alone): the
    predictor's statistics then carry some gradient to the stop-gradient
    side's projection. On MNIST-1D, per-view passes probed 0.900 against
    0.895 (mean of seeds 0 to 2, one thread), and took 7% longer.

    Parameters
    ----------
    {params n_components..hidden_dim}
    predictor_dim : int or None, default=None
        Bottleneck width of the 2-layer predictor; None uses
        ``projection_dim // 4`` (the paper's 2048 -> 512 -> 2048).
    {params input_shape..accelerator}

    Attributes
    ----------
    {attributes net_ n_components_ training max_epochs_ collapse_std_ input}

    See Also
    --------
    BYOLTransformer : The same with a momentum target.

    References
    ----------
    .. [1] X. Chen and K. He, "Exploring Simple Siamese Representation
       Learning", CVPR 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.methods import SimSiamTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> simsiam = SimSiamTransformer(input_shape=(1, 8, 8), max_epochs=2,
    ...                              random_state=0)
    >>> simsiam.fit_transform(X[:200]).shape
    (200, 256)
    """

    _objective = SimSiamObjective
    #: Its steps are cheap (no second network) and it learns slowly: 50 epochs on
    #: MNIST-1D probed 0.895 (seed 0) against 0.868 after 30, in 35 s on 2 cores
    #: (benchmarks/bench_ssl.py). 40 epochs probed as well (mean 0.885 against
    #: 0.883 on five seeds) but did worse on 4 labels a class (0.630 against
    #: 0.693, benchmarks/bench_labels.py; on seeds 0-2, 0.620 against 0.677 on
    #: average); 45 epochs did too (0.641). Those runs predate the signal
    #: networks' channels-last layout; the benchmark's 50 epochs since: 0.638.
    _auto_samples_seen = 200_000
    _parameter_constraints: dict = {
        **_TwoViewTransformer._parameter_constraints,
        "predictor_dim": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_components: int | None = None,
        *,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        views="auto",
        projection_dim: int = 256,
        hidden_dim: int | None = None,
        predictor_dim: int | None = None,
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
        return {"predictor_dim": self.predictor_dim}
