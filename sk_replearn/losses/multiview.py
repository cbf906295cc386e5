"""The multi-view contrastive loss of Contrastive Multiview Coding (CMC).

Each of ``V`` views of a sample is embedded by its own network; InfoNCE is
computed between the embeddings of pairs of views (the positive of a
sample's view ``a`` is the same sample's view ``b``, its negatives the other
samples' view ``b``), over the pairs of a *graph* of views.
:class:`MultiViewInfoNCELoss` averages the package's two-view
:class:`~sk_replearn.losses.InfoNCELoss` over those pairs; under
:mod:`torch.distributed` the negatives come from the global batch, gathered
as SimCLR's :class:`~sk_replearn.losses.NTXentLoss` gathers them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._util import is_int
from ._checks import check_pair, check_positive, matmul32, normalize
from .contrastive import InfoNCELoss, _world, gather_batch

__all__ = ["GRAPHS", "MultiViewInfoNCELoss", "view_pairs"]

#: The graphs of views the loss knows: every pair, or each view with a core one.
GRAPHS = ("full", "core")


def view_pairs(n_views: int, graph: str = "full", core_view: int = 0):
    """The ordered pairs ``(anchor, positive)`` of views the loss contrasts.

    CMC's two graphs of ``V`` views (Tian et al., ECCV 2020, Sec. 3.3): ``"full"``
    contrasts every pair of views, ``V (V - 1)`` ordered pairs; ``"core"``
    contrasts the ``core_view`` with each other view, ``2 (V - 1)`` ordered
    pairs. Each pair comes in both directions (each view once the anchor),
    as the paper's ``L(V1, V2) = L_contrast^{V1,V2} + L_contrast^{V2,V1}``.

    Parameters
    ----------
    n_views : int
        Number ``V`` of views (>= 2).
    graph : {"full", "core"}, default="full"
        Which pairs of views are contrasted.
    core_view : int, default=0
        The core view of ``graph="core"``, in ``[0, V)``; ignored for "full".

    Returns
    -------
    list of tuple of int
        ``(a, b)``: view ``a``'s embeddings are the anchors, view ``b``'s the
        candidates.

    Raises
    ------
    ValueError
        For fewer than 2 views, an unknown graph or a core view out of range.

    Examples
    --------
    >>> from sk_replearn.losses.multiview import view_pairs
    >>> view_pairs(3)
    [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    >>> view_pairs(3, "core", core_view=1)
    [(1, 0), (0, 1), (1, 2), (2, 1)]
    """
    if not is_int(n_views):  # int() would round 2.7 down to 2 views
        raise ValueError(f"n_views={n_views!r} must be an int, the number of views.")
    n_views = int(n_views)
    if n_views < 2:
        raise ValueError(
            f"CMC contrasts views with each other and needs at least 2; got {n_views}."
        )
    if graph not in GRAPHS:
        raise ValueError(f"graph={graph!r} is not one of {list(GRAPHS)}.")
    if graph == "full":
        return [(a, b) for a in range(n_views) for b in range(n_views) if a != b]
    if not is_int(core_view):  # int() would read 1.5 as view 1
        raise ValueError(
            f"core_view={core_view!r} must be an int, the index of the core view "
            f"in [0, {n_views - 1}]."
        )
    if not 0 <= int(core_view) < n_views:
        raise ValueError(
            f"core_view={core_view!r} is out of range for {n_views} views; pass "
            f"an index in [0, {n_views - 1}]."
        )
    c = int(core_view)
    return [pair for v in range(n_views) if v != c for pair in ((c, v), (v, c))]


class MultiViewInfoNCELoss(nn.Module):
    """InfoNCE between the embeddings of several views (CMC).

    For views ``z_1 ... z_V`` of the same ``N`` samples, the loss of the
    ordered pair of views ``(a, b)`` is the two-view InfoNCE with in-batch
    negatives (:class:`~sk_replearn.losses.InfoNCELoss` without a queue):
    each ``z_a[i]`` is scored against every ``z_b[j]`` by cosine similarity
    over ``τ``, its positive is ``z_b[i]``,

    .. math::

        \\ell^{a,b}_i = -\\log \\frac{\\exp(\\mathrm{sim}(z_a[i], z_b[i]) / \\tau)}
        {\\sum_j \\exp(\\mathrm{sim}(z_a[i], z_b[j]) / \\tau)}.

    The loss is the mean of ``l^{a,b}_i`` over the samples and the ordered
    pairs of :func:`~sk_replearn.losses.multiview.view_pairs` (``graph``): the
    paper's sum over pairs, divided by their number so that its scale does not
    grow with ``V``. For two views either graph gives the symmetric InfoNCE
    ``(InfoNCE(z_1, z_2) + InfoNCE(z_2, z_1)) / 2``.

    The paper draws its negatives from a memory bank of past embeddings
    (and reports that more negatives help); here they are the other samples
    of the batch, as in SimCLR. In training under :mod:`torch.distributed`
    with ``W > 1`` processes the candidates of each view are gathered from
    every process (:func:`~sk_replearn.losses.gather_batch`,
    differentiable), so that, as for NT-Xent, the mean of the processes'
    losses and the weights' gradient are those of one process on the
    concatenated batch.

    Parameters
    ----------
    temperature : float, default=0.07
        Softmax temperature ``τ`` (> 0); the paper's 0.07.
    graph : {"full", "core"}, default="full"
        ``"full"``: every pair of views; ``"core"``: each view with
        ``core_view``.
    core_view : int, default=0
        The core view of ``graph="core"``.

    References
    ----------
    .. [1] Y. Tian, D. Krishnan and P. Isola, "Contrastive Multiview
       Coding", arXiv:1906.05849, 2019 (ECCV 2020), eq. (2) to (5).
    .. [2] A. van den Oord, Y. Li and O. Vinyals, "Representation Learning
       with Contrastive Predictive Coding", arXiv:1807.03748, 2018 (InfoNCE).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses import InfoNCELoss
    >>> from sk_replearn.losses.multiview import MultiViewInfoNCELoss
    >>> _ = torch.manual_seed(0)
    >>> z1, z2, z3 = torch.randn(8, 16), torch.randn(8, 16), torch.randn(8, 16)
    >>> loss = MultiViewInfoNCELoss(temperature=0.1)
    >>> loss([z1, z2, z3]).shape
    torch.Size([])
    >>> two = (InfoNCELoss(0.1)(z1, z2) + InfoNCELoss(0.1)(z2, z1)) / 2
    >>> bool(torch.isclose(loss([z1, z2]), two))
    True
    """

    def __init__(
        self, temperature: float = 0.07, graph: str = "full", core_view: int = 0
    ) -> None:
        super().__init__()
        self.pair_loss = InfoNCELoss(check_positive("temperature", temperature))
        if graph not in GRAPHS:
            raise ValueError(f"graph={graph!r} is not one of {list(GRAPHS)}.")
        # Checked here as far as it can be without the number of views (the
        # call checks the rest), so that a bad loss fails where it is built.
        if not is_int(core_view) or core_view < 0:
            raise ValueError(
                f"core_view={core_view!r} is out of range: pass the index of the "
                "core view, an int >= 0 below the number of views."
            )
        self.graph, self.core_view = graph, int(core_view)

    @property
    def temperature(self) -> float:
        """The softmax temperature, that of every pair's InfoNCE."""
        return self.pair_loss.temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.pair_loss.temperature = check_positive("temperature", value)

    def forward(self, zs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Mean InfoNCE over the samples and the graph's ordered pairs of views.

        Parameters
        ----------
        zs : sequence of torch.Tensor of shape (N, D)
            One embedding per view; row ``i`` of each comes from sample ``i``.
            At least 2 views and ``N >= 2`` (with one sample there are no
            negatives), on every process of a multi-process fit too.

        Returns
        -------
        torch.Tensor of shape ()
        """
        zs = list(zs)
        pairs = view_pairs(len(zs), self.graph, self.core_view)
        for v, z in enumerate(zs[1:], start=1):
            check_pair(zs[0], z, f"the embeddings of views 0 and {v}")
        n = zs[0].shape[0]
        if n < 2:
            raise ValueError(
                "MultiViewInfoNCELoss uses the other samples of the batch as "
                f"negatives and needs N >= 2; got N={n}."
            )
        rank, world = _world() if self.training else (0, 1)
        if world == 1:
            losses = [self.pair_loss(zs[a], zs[b]) for a, b in pairs]
            return torch.stack(losses).mean()
        # Anchors are this rank's rows, candidates every rank's: the global
        # batch's negatives, with the positive at this rank's offset.
        z = [normalize(v) for v in zs]  # V x (N, D)
        candidates = {b: gather_batch(z[b]) for b in {b for _, b in pairs}}  # (WN, D)
        targets = torch.arange(n, device=z[0].device) + rank * n  # (N,)
        losses = [
            F.cross_entropy(matmul32(z[a], candidates[b].T) / self.temperature, targets)
            for a, b in pairs
        ]  # each over logits (N, WN)
        return torch.stack(losses).mean()

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, graph={self.graph!r}, "
            f"core_view={self.core_view}"
        )
