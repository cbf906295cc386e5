"""Online clustering representation learner: SwAV."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval

from .._docstrings import fill_doc
from .._warn import warn_user
from ..base import store_params
from ..objectives.clustering import SwAVObjective
from .two_view import (
    LOCAL_VIEWS,
    TWO_VIEW_DOCS,
    _auto_epochs_doc,
    _TwoViewTransformer,
)

__all__ = ["SwAVTransformer"]


@fill_doc(
    {**TWO_VIEW_DOCS, "max_epochs": _auto_epochs_doc(100_000, 140_000)},
    hidden_default="the encoder's width",
)
class SwAVTransformer(_TwoViewTransformer):
    """SwAV representation: views predict each other's cluster assignments.

    Online clustering (Caron et al. 2020): every view of a sample is mapped
    to scores against ``n_prototypes`` learned prototypes. The code of each
    global view, a soft assignment computed by three Sinkhorn-Knopp
    iterations so that every prototype receives an equal share of the
    batch, is predicted from every other view (the "swapped" prediction);
    the equal shares keep the assignments from collapsing onto one
    prototype, without negatives or a momentum encoder. Small local crops
    (multi-crop) join the predictions but give no codes. ``transform``
    returns the encoder's output, before the projection head.

    Parameters
    ----------
    {params n_components..hidden_dim}
    n_prototypes : int, default=300
        Number of prototypes ``K`` (at least 2), the clusters of the online
        clustering.
        The paper uses 3,000 for ImageNet and finds the number matters
        little as long as it is well above the number of classes.
    temperature : float, default=0.1
        Temperature ``τ`` of the predictions' softmax (> 0).
    epsilon : float, default=0.03
        Entropy regularisation of the Sinkhorn-Knopp codes (> 0): lower
        gives harder assignments. The paper uses 0.05; on MNIST-1D (see
        Notes) the harder codes of 0.03 learned far more.
    sinkhorn_iterations : int, default=3
        Sinkhorn-Knopp iterations (>= 1).
    {params n_local_views..n_local_views}
    queue_length : int, default=0
        Embeddings of earlier batches kept per global view and used in the
        codes' equal-share constraint once the queue is full: for batches
        much smaller than ``n_prototypes`` (the paper's queue of 3,840 for
        batches of 256 and 3,000 prototypes). 0 turns it off. A queue
        longer than the embeddings a fit queues (training samples times
        epochs) never fills and is never used: ``fit`` warns.
    freeze_prototypes_epochs : int, default=1
        Epochs at the start of training during which the prototypes are not
        updated, as in the paper.
    {params input_shape..accelerator}

    Attributes
    ----------
    {attributes net_ n_components_ training max_epochs_ collapse_std_ input}

    See Also
    --------
    DINOTransformer : Self-distillation, also with multi-crop.
    SimCLRTransformer : Contrast views of a sample against other samples.

    Notes
    -----
    The defaults were chosen on MNIST-1D (4,000 training signals, the
    default ResNet and views, 60 epochs; linear probe on the 1,000 test
    signals): 100 prototypes with ``epsilon=0.05`` probed 0.77 (0.88
    without local views), 300 prototypes with ``epsilon=0.05`` 0.80, and
    300 with ``epsilon=0.03`` 0.92 (0.92 without local views too).

    References
    ----------
    .. [1] M. Caron, I. Misra, J. Mairal, P. Goyal, P. Bojanowski and A.
       Joulin, "Unsupervised Learning of Visual Features by Contrasting
       Cluster Assignments", NeurIPS 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.methods import SwAVTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> swav = SwAVTransformer(input_shape=(1, 8, 8), max_epochs=2,
    ...                        random_state=0)
    >>> swav.fit_transform(X[:200]).shape
    (200, 256)
    """

    _objective = SwAVObjective
    #: Multi-crop makes its steps dear and it learns fast: 25 epochs on MNIST-1D
    #: probed 0.918 to 0.923 (30: 0.940, in 49 s) in 35 s on 2 cores
    #: (benchmarks/bench_ssl.py).
    _auto_samples_seen = 100_000
    #: Without local views (1-D signals), steps cost two thirds as much: 35
    #: epochs on MNIST-1D probed 0.932, 0.924 and 0.945 (seeds 0, 1, 2) in 32 s
    #: on 2 cores, against 0.915, 0.918 and 0.927 in 35 s for 25 epochs with
    #: two local views; 30 epochs 0.926, 0.925 and 0.931 in 26-29 s.
    _auto_signal_samples_seen = 140_000
    _parameter_constraints: dict = {
        **_TwoViewTransformer._parameter_constraints,
        # one prototype takes every assignment: the loss is 0, nothing learned
        "n_prototypes": [Interval(Integral, 2, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "sinkhorn_iterations": [Interval(Integral, 1, None, closed="left")],
        "n_local_views": LOCAL_VIEWS,
        "queue_length": [Interval(Integral, 0, None, closed="left")],
        "freeze_prototypes_epochs": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components: int | None = None,
        *,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        views="auto",
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        n_prototypes: int = 300,
        temperature: float = 0.1,
        epsilon: float = 0.03,
        sinkhorn_iterations: int = 3,
        n_local_views="auto",
        queue_length: int = 0,
        freeze_prototypes_epochs: int = 1,
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
        """Also warn of a queue that this fit would never fill (nor use)."""
        super()._check_params_against_data(n_samples)
        if not self.queue_length or (self.warm_start and hasattr(self, "net_")):
            return  # a warm start continues the queue it has
        per_epoch = self._samples_per_epoch(n_samples)
        queued = per_epoch * self._epochs()
        if self.queue_length > queued:
            warn_user(
                f"queue_length={self.queue_length} is more than the {queued} "
                f"embeddings this fit queues ({per_epoch} samples an epoch for "
                f"{self._epochs()} epochs): the queue never fills, so it is never "
                f"used. Use a queue_length of at most {queued}, or 0 for no queue.",
                UserWarning,
            )

    def _objective_params(self) -> dict:
        return {
            "n_prototypes": self.n_prototypes,
            "temperature": self.temperature,
            "epsilon": self.epsilon,
            "sinkhorn_iterations": self.sinkhorn_iterations,
            "n_local_views": self._n_local_views(),
            "queue_length": self.queue_length,
            "freeze_prototypes_steps": self.freeze_prototypes_epochs
            * self._steps_per_epoch(),
        }
