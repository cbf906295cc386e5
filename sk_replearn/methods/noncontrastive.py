"""Non-contrastive learners: BYOL, SimSiam, Barlow Twins, DINO and VICReg."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from .._docstrings import fill_doc
from ..base import store_params
from ..objectives.noncontrastive import (
    BarlowTwinsObjective,
    BYOLObjective,
    DINOObjective,
    SimSiamObjective,
    VICRegObjective,
)
from .two_view import (
    LOCAL_VIEWS,
    TWO_VIEW_DOCS,
    _auto_epochs_doc,
    _TwoViewTransformer,
)

__all__ = [
    "BYOLTransformer",
    "BarlowTwinsTransformer",
    "DINOTransformer",
    "SimSiamTransformer",
    "VICRegTransformer",
]

_Unit = Interval(Real, 0, 1, closed="both")
_Positive = Interval(Real, 0, None, closed="neither")


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
        "momentum": [_Unit],
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


@fill_doc(
    {
        **TWO_VIEW_DOCS,
        "max_epochs": _auto_epochs_doc(120_000, 132_000),
        "projection_dim": (
            "int",
            "Output width of the projection head (at least 2): the number of "
            "the soft classes whose distributions the loss compares.",
        ),
    },
    hidden_default="the encoder's width",
)
class DINOTransformer(_TwoViewTransformer):
    """DINO representation: self-distillation with no labels.

    A student network matches the output distribution of a teacher, a
    moving average of the student, over ``projection_dim`` learned
    prototypes: the teacher sees one view, the student the other, and the
    loss is their cross-entropy. The teacher's outputs are centred (a
    running mean subtracted) and sharpened (a low ``teacher_temp``); the
    two effects pull in opposite directions and together avoid collapse.
    Two global views go to both networks and ``n_local_views`` small crops
    (multi-crop) to the student only, which so learns to infer the whole
    from a part. ``transform`` returns the student encoder's output. The
    head's hidden layers use batch normalisation and ReLU, as the other
    heads here do (DINO's use GELU without batch normalisation), and its
    prototype layer trains from the first epoch (DINO freezes it then).

    Parameters
    ----------
    {params n_components..hidden_dim}
    bottleneck_dim : int, default=64
        Width of the L2-normalised bottleneck before the prototypes.
    teacher_temp : float, default=0.02
        Temperature ``τ_t`` of the teacher's softmax (> 0); lower is
        sharper. The paper's 0.04 to 0.07 were tuned on ImageNet with
        65,536 prototypes; on small data and 1,024 prototypes the sharper
        teacher learned faster (see Notes).
    warmup_teacher_temp : float or None, default=None
        Teacher temperature at the start of training (> 0); it moves
        linearly to ``teacher_temp`` over the first
        ``warmup_teacher_temp_epochs``. The paper warms up from 0.04 to
        0.07 over 30 epochs: a too soft teacher early on lets training
        collapse. None starts at ``teacher_temp``, whatever its value:
        no warm-up.
    warmup_teacher_temp_epochs : "auto" or int, default="auto"
        Length of the warm-up, in epochs, at most ``max_epochs``. "auto"
        is 30% of ``max_epochs``, rounded (the paper's 30 of 100 epochs),
        so that a short training is not all warm-up; a fit of one epoch
        has none, and starts at ``teacher_temp``.
    student_temp : float, default=0.1
        Temperature ``τ_s`` of the student's softmax (> 0).
    center_momentum : float or "auto", default="auto"
        Momentum of the running mean (center) of the teacher's outputs.
        "auto": 0.8 for 1-D signals, whose steps have no local views by
        default (see Notes), 0.9 (the paper's) otherwise.
    momentum : float, default=0.99
        Momentum of the teacher at the start of training; it rises to 1 on a
        cosine schedule. The paper's 0.996 suits hundreds of thousands of
        steps; fewer steps need a faster-moving teacher (see Notes).
    {params n_local_views..n_local_views}
    {params input_shape..accelerator}

    Attributes
    ----------
    {attributes net_ n_components_ training max_epochs_ collapse_std_ input}

    See Also
    --------
    BYOLTransformer : Regression onto a moving-average target.

    Notes
    -----
    The defaults were measured on MNIST-1D (4,000 training signals, the
    default ResNet and views, 60 epochs; linear probe on the 1,000 test
    signals): without local views and at ``lr=1e-3`` 0.857; two local views
    0.852; with them, ``projection_dim=256`` 0.837, ``momentum=0.99`` 0.842,
    a warm-up of the teacher temperature from 0.04 to 0.07 (with
    ``momentum=0.99``) 0.828, ``teacher_temp=0.02`` 0.876, batches of 128
    0.860, and ``lr=3e-3``, the default, 0.906. Batches of 128 with
    ``momentum=0.99`` then probed 0.904 to 0.914 in 60 epochs but 0.864 to
    0.897 in 30; a sharper teacher, ``teacher_temp=0.02`` (the default),
    brought 30 epochs to 0.899 to 0.909 (two seeds, one and two threads), so
    ``max_epochs="auto"`` gave DINO the 30 epochs of the other methods on
    these 4,000 signals, half the former fit time; where labels are few the
    shorter fit costs more (a ``LogisticRegression`` on 4 labels a class,
    five draws: 0.667 against 0.699 after 60 epochs at 0.04). Without local
    views a step does three quarters of the work: 32 epochs probed 0.915,
    0.903 and 0.904 (seeds 0, 1, 2) at one thread but 0.898 at two (in 62 s,
    1.5 times SimCLR's 41.9 s), 30 epochs 0.897, 0.890 and 0.892, 36 epochs
    0.915 and 0.892; one local view, 30 epochs, 0.899 and 0.896; two, 27
    epochs, 0.892 and 0.898. The defaults of then gave 0.906, 0.899 and
    0.908, and 0.906 at two threads (``benchmarks/bench_ssl.py``): about the
    same mean, with no run below 0.899, so they kept two local views. On the
    digits, which get 60 epochs either way, a ``LogisticRegression`` on 2
    labels a class scored 0.837 with those defaults (0.843 with
    ``teacher_temp=0.04``) against 0.796 for batches of 256 at ``lr=1e-3``
    (``python -m sk_replearn``).

    On 1-D signals "auto" then dropped the local views and took
    ``center_momentum=0.8`` and 33 epochs: a step without local crops does
    8/11 of the work (the student's global views forward and backward, the
    teacher's forward), and a faster-moving center made up for the crops.
    On MNIST-1D at two threads, seeds 0, 1 and 2, the linear probe read
    0.925, 0.914 and 0.905 in 41, 40 and 45 s, against 0.906, 0.911 and
    0.901 in 59, 57 and 61 s with two local views, ``center_momentum=0.9``
    and 30 epochs; a ``LogisticRegression`` on 4 labels a class (five
    draws) 0.677, 0.706 and 0.659 against 0.658, 0.655 and 0.617. At one
    thread, without local views and in 30 epochs, ``center_momentum=0.8``
    probed 0.904, 0.904 and 0.902, 0.7 gave 0.906, 0.904 and 0.887, 0.6
    0.900 and 0.908 (seeds 0, 1); with two local views 0.8 brought 30
    epochs to 0.909 and 0.916 but 26 epochs only to 0.903 and 0.894. With
    two local views and 24 epochs, nothing else made up for the shorter
    fit: 0.887 and 0.886 as they were, 0.884 and 0.888 at ``lr=5e-3``,
    0.864 and 0.852 at ``momentum=0.98``, 0.881 and 0.880 at 0.995, 0.882
    and 0.877 at ``teacher_temp=0.015``, 0.875 and 0.871 at
    ``student_temp=0.07``; batches of 256 (30 epochs, each a fifth
    shorter) 0.844 at ``lr=3e-3`` and 0.864 at ``lr=6e-3``. On the digits
    ``center_momentum=0.8`` gave 0.833 and 0.827 on 2 labels a class
    against 0.837 and 0.838, so images keep 0.9 and their local views.

    References
    ----------
    .. [1] M. Caron, H. Touvron, I. Misra, H. Jégou, J. Mairal, P. Bojanowski
       and A. Joulin, "Emerging Properties in Self-Supervised Vision
       Transformers", ICCV 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.methods import DINOTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> dino = DINOTransformer(input_shape=(1, 8, 8), max_epochs=2, random_state=0)
    >>> dino.fit_transform(X[:200]).shape
    (200, 256)
    """

    _objective = DINOObjective
    # its evaluation loss centres the teacher on the batch's own mean
    _min_validation = 2
    #: Without local views on 1-D signals, a tenth more samples (see Notes).
    _auto_signal_samples_seen = 132_000
    _parameter_constraints: dict = {
        **_TwoViewTransformer._parameter_constraints,
        # a softmax over one output is 1 whatever the input: nothing to learn
        "projection_dim": [Interval(Integral, 2, None, closed="left")],
        "bottleneck_dim": [Interval(Integral, 1, None, closed="left")],
        "teacher_temp": [_Positive],
        "warmup_teacher_temp": [_Positive, None],
        "warmup_teacher_temp_epochs": [
            StrOptions({"auto"}),
            Interval(Integral, 0, None, closed="left"),
        ],
        "n_local_views": LOCAL_VIEWS,
        "student_temp": [_Positive],
        "center_momentum": [_Unit, StrOptions({"auto"})],
        "momentum": [_Unit],
    }

    def __init__(
        self,
        n_components: int | None = None,
        *,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        views="auto",
        projection_dim: int = 1024,
        hidden_dim: int | None = None,
        bottleneck_dim: int = 64,
        teacher_temp: float = 0.02,
        warmup_teacher_temp: float | None = None,
        warmup_teacher_temp_epochs="auto",
        student_temp: float = 0.1,
        center_momentum: float | str = "auto",
        momentum: float = 0.99,
        n_local_views="auto",
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
        return {
            "bottleneck_dim": self.bottleneck_dim,
            "teacher_temp": self.teacher_temp,
            "warmup_teacher_temp": self.warmup_teacher_temp,
            "warmup_teacher_temp_steps": self._warmup_teacher_temp_epochs()
            * self._steps_per_epoch(),
            "student_temp": self.student_temp,
            "center_momentum": self._center_momentum(),
            "momentum": self.momentum,
            "n_local_views": self._n_local_views(),
        }

    def _center_momentum(self) -> float:
        if self.center_momentum == "auto":
            return 0.8 if self._is_signal() else 0.9
        return float(self.center_momentum)

    def _warmup_teacher_temp_epochs(self) -> int:
        if self.warmup_teacher_temp_epochs == "auto":
            return round(0.3 * self._epochs())
        return min(int(self.warmup_teacher_temp_epochs), self._epochs())


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
