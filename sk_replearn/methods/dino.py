"""DINO: self-distillation with no labels, a student matching a momentum
teacher's centred, sharpened distribution over prototypes (Caron et al., 2021)."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from .._docstrings import fill_doc
from ..base import store_params
from ..objectives.noncontrastive import DINOObjective
from .two_view import LOCAL_VIEWS, TWO_VIEW_DOCS, _auto_epochs_doc, _TwoViewTransformer

__all__ = ["DINOTransformer"]

_Unit = Interval(Real, 0, 1, closed="both")
_Positive = Interval(Real, 0, None, closed="neither")


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
