"""Online clustering objective: SwAV.

The network maps every view to scores against learned prototypes; the
Sinkhorn-Knopp codes of the global views (:mod:`sk_replearn.losses.clustering`)
are the targets that the other views predict. Multi-crop local views, a
queue of earlier embeddings for small batches and the paper's frozen
prototypes at the start of training are options of the objective.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.clustering import SwAVLoss
from ..nn import ProjectionHead
from .two_view import TwoViewObjective

__all__ = ["SwAVObjective"]


class SwAVObjective(TwoViewObjective):
    """SwAV: swapped prediction of equipartitioned cluster codes.

    backbone -> 2-layer projection head -> L2 normalisation -> scores
    against ``n_prototypes`` unit-norm prototypes. The backbone runs once
    per size (the global views together, the local views together), the
    head once on all views, as in SwAV's implementation.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    **two_view
        ``encoder``, ``encoder_kwargs``, ``views``, ``total_steps``,
        ``n_components`` and ``n_local_views``: see
        :class:`~sk_replearn.objectives.two_view.TwoViewObjective`.
    projection_dim : int, default=128
        Width of the normalised embedding the prototypes live in.
    hidden_dim : int or None, default=None
        Hidden width of the projection head; None is the encoder's width.
    n_prototypes : int, default=100
        Number of prototypes ``K``.
    temperature : float, default=0.1
        Temperature of the predictions' softmax.
    epsilon : float, default=0.05
        Entropy regularisation of the Sinkhorn-Knopp codes.
    sinkhorn_iterations : int, default=3
        Sinkhorn-Knopp iterations.
    queue_length : int, default=0
        Embeddings of earlier batches kept per global view (0: no queue).
        Once full, their scores join the batch's in the Sinkhorn-Knopp
        step, so that the equal-share constraint holds over more samples
        than a small batch has.
    freeze_prototypes_steps : int, default=0
        The prototypes get no gradient during the first steps (the paper
        freezes them for the first epoch).

    Attributes
    ----------
    projector : ProjectionHead
        The head to the embedding.
    prototypes : torch.nn.Linear
        ``K`` prototypes, its weight ``(K, projection_dim)``, kept unit-norm.
    queue : torch.Tensor of shape (2, queue_length, projection_dim)
        Buffer: the queued embeddings of each global view, newest first.
    queued : torch.Tensor of shape ()
        Buffer (long): embeddings queued so far (capped at ``queue_length``).

    References
    ----------
    .. [1] M. Caron, I. Misra, J. Mairal, P. Goyal, P. Bojanowski and A.
       Joulin, "Unsupervised Learning of Visual Features by Contrasting
       Cluster Assignments", NeurIPS 2020 (SwAV).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.clustering import SwAVObjective
    >>> obj = SwAVObjective((1, 40), n_prototypes=16, n_local_views=2)
    >>> x = torch.randn(8, 1, 40)
    >>> obj.loss(obj(x), x).shape
    torch.Size([])
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        *,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        n_prototypes: int = 100,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        queue_length: int = 0,
        freeze_prototypes_steps: int = 0,
        **two_view,
    ) -> None:
        super().__init__(input_shape, **two_view)
        self.projector = ProjectionHead(
            self.backbone.out_features, hidden_dim, projection_dim
        )
        self.prototypes = nn.Linear(projection_dim, n_prototypes, bias=False)
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        self.criterion = SwAVLoss(temperature, epsilon, sinkhorn_iterations)
        self.queue_length = max(int(queue_length), 0)
        self.freeze_prototypes_steps = max(int(freeze_prototypes_steps), 0)
        self.register_buffer("queue", torch.zeros(2, self.queue_length, projection_dim))
        self.register_buffer("queued", torch.zeros((), dtype=torch.long))
        # Each process keeps its own queue, as SwAV's does (Sinkhorn sums the
        # processes' queues): DistributedDataParallel must not overwrite it
        # with process 0's, as it does the buffers it broadcasts.
        self._ddp_params_and_buffers_to_ignore = ["queue", "queued"]

    def forward_views(self, v1, v2, local=None):
        """Prototype scores of every view and the global views' embeddings.

        Returns ``(scores, z)``: ``scores`` a tuple of ``2 + n_local_views``
        tensors ``(B, n_prototypes)``, the global views first; ``z`` the
        normalised embeddings ``(2, B, projection_dim)`` of the global views
        (what the queue keeps).
        """
        features = self.backbone_views(v1, v2, local)  # (V B, D)
        z = F.normalize(self.projector(features), dim=1)  # (V B, P)
        weight = self.prototypes.weight
        if not self.training:
            weight = F.normalize(weight, dim=1)  # leaves the parameter alone
        else:
            with torch.no_grad():  # unit-norm prototypes at every step
                weight.copy_(F.normalize(weight, dim=1))
            if int(self.step) < self.freeze_prototypes_steps:
                # Frozen: a zero gradient, which DistributedDataParallel needs
                # in backward (every parameter must get one); after_backward
                # then takes it away, so that the optimiser skips them.
                weight = weight.detach() + 0.0 * weight
        scores = F.linear(z, weight)  # (VB, K)
        n_views = 2 + (0 if local is None else self.n_local_views)
        return scores.chunk(n_views), z[: 2 * len(v1)].detach().view(2, len(v1), -1)

    def after_backward(self) -> None:
        """While the prototypes are frozen, take their (zero) gradient away.

        Called by the training loop between ``backward`` and the optimiser's
        step, as SwAV's code sets their gradient to None: the optimiser
        then skips them. A zero gradient counted as a step of Adam's, whose
        bias correction then made the first steps after the freeze 1.3 to
        2 times too large.
        """
        # forward has counted the step being trained: it is step - 1.
        if self.training and int(self.step) <= self.freeze_prototypes_steps:
            self.prototypes.weight.grad = None

    def loss(self, output, x: torch.Tensor) -> torch.Tensor:
        """SwAV's swapped prediction; queues the global embeddings in training."""
        scores, z = output
        queue_scores = None
        if self.queue_length and int(self.queued) >= self.queue_length:
            weight = F.normalize(self.prototypes.weight.detach(), dim=1)
            queue_scores = [q @ weight.T for q in self.queue]  # 2 x (Q, K)
        loss = self.criterion(list(scores), n_global=2, queue_scores=queue_scores)
        if self.training and self.queue_length:
            self._enqueue(z)
        return loss

    @torch.no_grad()
    def _enqueue(self, z: torch.Tensor) -> None:
        """Put the batch's embeddings ``(2, B, P)`` at the front of the queue."""
        n = min(z.shape[1], self.queue_length)
        newest_first = torch.cat([z[:, :n].to(self.queue.dtype), self.queue], dim=1)
        self.queue.copy_(newest_first[:, : self.queue_length])
        self.queued.add_(n).clamp_(max=self.queue_length)
