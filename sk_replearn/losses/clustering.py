"""The loss of online clustering: SwAV's swapped prediction of Sinkhorn codes.

SwAV (Caron et al. 2020) compares views through their soft assignments
("codes") to learned prototypes instead of comparing their features: the code
of one view, computed by the Sinkhorn-Knopp algorithm so that every prototype
gets an equal share of the batch, is the target of the prediction made from
every other view. The equal-share constraint is what keeps the codes (and so
the representation) from collapsing onto one prototype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ._checks import check_positive, upcast

__all__ = ["SwAVLoss", "sinkhorn_knopp"]


def _all_reduce(x: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Sum (or maximum) of ``x`` over the processes, in place; ``x`` if alone."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(x, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return x


@torch.no_grad()
def sinkhorn_knopp(
    scores: torch.Tensor, epsilon: float = 0.05, n_iterations: int = 3
) -> torch.Tensor:
    """Soft, equipartitioned assignments of a batch to prototypes.

    Solves SwAV's entropy-regularised transport problem (Caron et al. 2020,
    eq. 3 and appendix A.1) approximately: starting from ``Q = exp(S /
    epsilon)`` transposed to ``(K, B)``, ``n_iterations`` rounds of
    Sinkhorn-Knopp scaling make every row (prototype) sum to ``1 / K`` and
    then every column (sample) to ``1 / B``; the result is multiplied by
    ``B`` so that each sample's code sums to 1. The last step normalises
    the columns, so the codes always sum to 1 exactly; the prototypes' shares
    tend to ``B / K`` as the iterations go on (three are the paper's choice).

    With :mod:`torch.distributed` initialised, the sums run over the global
    batch of every process (``B`` is the global batch size), as in the
    paper's implementation, and each process gets the codes of its rows.

    Parameters
    ----------
    scores : torch.Tensor of shape (B, K)
        Similarities of the (normalised) embeddings to the ``K`` prototypes.
    epsilon : float, default=0.05
        Entropy regularisation (> 0): lower gives harder assignments.
    n_iterations : int, default=3
        Rounds of row and column scaling (>= 1).

    Returns
    -------
    torch.Tensor of shape (B, K)
        The codes, float32 (or float64 for float64 input), rows summing to 1.

    References
    ----------
    .. [1] M. Caron, I. Misra, J. Mairal, P. Goyal, P. Bojanowski and A.
       Joulin, "Unsupervised Learning of Visual Features by Contrasting
       Cluster Assignments", NeurIPS 2020 (SwAV).
    .. [2] M. Cuturi, "Sinkhorn Distances: Lightspeed Computation of Optimal
       Transport", NeurIPS 2013.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses.clustering import sinkhorn_knopp
    >>> _ = torch.manual_seed(0)
    >>> q = sinkhorn_knopp(torch.randn(6, 3), n_iterations=50)
    >>> torch.allclose(q.sum(1), torch.ones(6))  # each sample's code sums to 1
    True
    >>> torch.allclose(q.sum(0), torch.full((3,), 2.0), atol=1e-3)  # shares B / K
    True
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (B, K); got shape {tuple(scores.shape)}.")
    check_positive("epsilon", epsilon)
    if int(n_iterations) < 1:
        raise ValueError(f"n_iterations must be >= 1, got {n_iterations!r}.")
    # The same scalings in the log domain: exp(score / epsilon) overflows or
    # underflows for scores that are not cosines; log-sum-exp does neither.
    # (The paper's first step, dividing by the total, is a constant that the
    # first row scaling removes.)
    log_q = (upcast(scores) / epsilon).T  # (K, B)
    n_samples = torch.tensor(float(log_q.shape[1]), device=log_q.device)
    log_b = _all_reduce(n_samples.to(log_q.dtype)).log()  # the global batch
    log_k = math.log(log_q.shape[0])
    for _ in range(int(n_iterations)):
        log_q = log_q - _global_logsumexp(log_q) - log_k  # rows to 1 / K
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - log_b
    return (log_q + log_b).exp().T  # (B, K): each code sums to 1


def _global_logsumexp(x: torch.Tensor) -> torch.Tensor:
    """``log(sum(exp(x), dim=1))`` over the columns of every process, ``(K, 1)``."""
    top = _all_reduce(x.amax(dim=1, keepdim=True), "max")  # (K, 1)
    return top + _all_reduce((x - top).exp().sum(dim=1, keepdim=True)).log()


class SwAVLoss(nn.Module):
    """SwAV's swapped prediction: each global view's code, predicted from the others.

    For the prototype scores ``s_v`` of every view ``v`` (the first
    ``n_global`` are the global views, the rest local crops), the code
    ``q_a = sinkhorn_knopp(s_a)`` of each global view ``a`` is the target
    of every other view's prediction ``softmax(s_b / τ)``:

    .. math::

        \\ell = \\frac{1}{n_g (V - 1)} \\sum_{a < n_g} \\sum_{b \\neq a}
        -\\frac{1}{B} \\sum_i \\sum_k q_{a,ik}
        \\log \\mathrm{softmax}(s_{b,i} / \\tau)_k ,

    the codes detached (no gradient flows through the assignment).

    Parameters
    ----------
    temperature : float, default=0.1
        Temperature ``τ`` (> 0) of the predictions' softmax.
    epsilon : float, default=0.05
        Entropy regularisation of the Sinkhorn-Knopp codes (> 0).
    sinkhorn_iterations : int, default=3
        Sinkhorn-Knopp iterations (>= 1).

    References
    ----------
    .. [1] M. Caron, I. Misra, J. Mairal, P. Goyal, P. Bojanowski and A.
       Joulin, "Unsupervised Learning of Visual Features by Contrasting
       Cluster Assignments", NeurIPS 2020 (SwAV), eq. (1)-(3).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses.clustering import SwAVLoss
    >>> _ = torch.manual_seed(0)
    >>> scores = [torch.randn(8, 5) for _ in range(4)]  # 2 global + 2 local
    >>> loss = SwAVLoss()(scores, n_global=2)
    >>> loss.shape, bool(loss > 0)
    (torch.Size([]), True)
    """

    def __init__(
        self,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
    ) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.epsilon = check_positive("epsilon", epsilon)
        if int(sinkhorn_iterations) < 1:
            raise ValueError(
                f"sinkhorn_iterations must be >= 1, got {sinkhorn_iterations!r}."
            )
        self.sinkhorn_iterations = int(sinkhorn_iterations)

    def codes(
        self, scores: torch.Tensor, queue_scores: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Sinkhorn codes ``(B, K)`` of ``scores``, the queue's rows helping.

        Parameters
        ----------
        scores : torch.Tensor of shape (B, K)
            Prototype scores of a global view of the batch.
        queue_scores : torch.Tensor of shape (Q, K) or None
            Scores of earlier batches' embeddings: with a small batch they
            make the equal-share constraint hold over ``B + Q`` samples
            (SwAV's queue); their codes are dropped.
        """
        n = len(scores)
        if queue_scores is not None:
            scores = torch.cat([scores, queue_scores.to(scores.dtype)])
        q = sinkhorn_knopp(scores.detach(), self.epsilon, self.sinkhorn_iterations)
        return q[:n]

    def forward(
        self,
        scores: Sequence[torch.Tensor],
        n_global: int = 2,
        queue_scores: Sequence[torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """Mean cross-entropy of the swapped predictions.

        Parameters
        ----------
        scores : sequence of torch.Tensor of shape (B, K)
            Prototype scores of every view, the ``n_global`` global views
            first.
        n_global : int, default=2
            How many of the views (the first) give codes.
        queue_scores : sequence of (torch.Tensor of shape (Q, K) or None), optional
            For each global view, the scores of its queue (see :meth:`codes`).

        Returns
        -------
        torch.Tensor of shape ()
        """
        if len(scores) < 2 or any(
            s.ndim != 2 or s.shape != scores[0].shape or s.shape[0] == 0 for s in scores
        ):
            raise ValueError(
                "scores must be at least 2 tensors of the same shape (B, K), "
                f"B >= 1; got shapes {[tuple(s.shape) for s in scores]}."
            )
        if (
            isinstance(n_global, bool)
            or int(n_global) != n_global
            or not 1 <= n_global <= len(scores)
        ):
            raise ValueError(
                f"n_global must be an int in [1, {len(scores)}] (the number of "
                f"views); got {n_global!r}."
            )
        n_global = int(n_global)
        queue_scores = queue_scores or [None] * n_global
        k = scores[0].shape[1]
        if len(queue_scores) < n_global or any(
            q is not None and (q.ndim != 2 or q.shape[1] != k) for q in queue_scores
        ):
            raise ValueError(
                f"queue_scores must hold one tensor (Q, {k}) or None for each of "
                f"the {n_global} global views; got "
                f"{[None if q is None else tuple(q.shape) for q in queue_scores]}."
            )
        log_p = [F.log_softmax(upcast(s) / self.temperature, dim=1) for s in scores]
        total = 0.0
        for a in range(int(n_global)):
            q = self.codes(scores[a], queue_scores[a])  # (B, K)
            for b, lp in enumerate(log_p):
                if b != a:
                    total = total - (q * lp).sum(dim=1).mean()
        return total / (int(n_global) * (len(scores) - 1))

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, epsilon={self.epsilon}, "
            f"sinkhorn_iterations={self.sinkhorn_iterations}"
        )
