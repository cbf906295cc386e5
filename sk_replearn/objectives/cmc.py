"""Contrastive Multiview Coding: one encoder a view, InfoNCE between views.

A sample is cut into ``V`` views, groups of its (flattened) values, such as
the channels of a colour space, the sensors of a recording or the halves of
an image (:class:`MultiViewEncoder`); each view has its own encoder and
projection head, and :class:`~sk_replearn.losses.multiview.MultiViewInfoNCELoss`
makes the views of one sample agree and those of different samples differ.
The representation is the views' encodings side by side (or one view's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..losses.multiview import MultiViewInfoNCELoss
from ..nn import Bottleneck, ProjectionHead, build_encoder
from ..nn.build import builder_kwargs
from ..views import make_views
from .base import Objective
from .two_view import TwoViewObjective

__all__ = ["CMCObjective", "MultiViewEncoder"]


class MultiViewEncoder(nn.Module):
    """Cut a batch into views and encode each with its own encoder.

    View ``v`` is the values ``x.flatten(1)[:, views[v]]``, reshaped to
    ``(B, *view_shapes[v])``; one gather for all the views.

    Parameters
    ----------
    encoders : sequence of torch.nn.Module
        One encoder a view, ``encoders[v]`` mapping ``(B, *view_shapes[v])``
        to ``(B, encoders[v].out_features)``.
    views : sequence of sequence of int
        The flat indices of each view's values in a sample.
    view_shapes : sequence of tuple of int
        The shape of one sample of each view, of product ``len(views[v])``.
    output_view : int or None, default=None
        What :meth:`forward` returns: None, every view's encoding, in view
        order; an int, that view's alone.

    Attributes
    ----------
    encoders : torch.nn.ModuleList
        The encoders.
    out_features : int
        Width of :meth:`forward`'s output (it follows ``output_view``).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import MLPEncoder
    >>> from sk_replearn.objectives.cmc import MultiViewEncoder
    >>> enc = MultiViewEncoder(
    ...     [MLPEncoder((2,), hidden_sizes=(3,)), MLPEncoder((4,), hidden_sizes=(5,))],
    ...     views=[[0, 1], [2, 3, 4, 5]], view_shapes=[(2,), (4,)])
    >>> enc(torch.randn(7, 6)).shape, enc.out_features
    (torch.Size([7, 8]), 8)
    >>> [tuple(v.shape) for v in enc.split(torch.randn(7, 6))]
    [(7, 2), (7, 4)]
    >>> enc.output_view = 1
    >>> enc(torch.randn(7, 6)).shape, enc.out_features
    (torch.Size([7, 5]), 5)
    """

    def __init__(
        self,
        encoders: Sequence[nn.Module],
        views: Sequence[Sequence[int]],
        view_shapes: Sequence[tuple[int, ...]],
        output_view: int | None = None,
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(encoders)
        self.view_shapes = [tuple(int(s) for s in shape) for shape in view_shapes]
        self.sizes = [len(v) for v in views]
        columns = torch.tensor([int(i) for v in views for i in v], dtype=torch.long)
        # Derived from the estimator's parameters: rebuilt, not saved.
        self.register_buffer("columns", columns, persistent=False)
        self.output_view = output_view

    @property
    def out_features(self) -> int:
        if self.output_view is None:
            return sum(e.out_features for e in self.encoders)
        return self.encoders[self.output_view].out_features

    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The views ``(B, *view_shapes[v])`` of a batch ``(B, ...)``."""
        flat = x.flatten(1)[:, self.columns]  # (B, sum of view sizes)
        parts = torch.split(flat, self.sizes, dim=1)  # V x (B, size_v)
        # unflatten, not reshape(len(x), ...): the batch size stays symbolic,
        # so torch.export of the encoder keeps a dynamic batch dimension
        return [p.unflatten(1, s) for p, s in zip(parts, self.view_shapes)]

    def encode_views(self, views: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each view through its own encoder: V tensors ``(B, out_v)``."""
        return [enc(v) for enc, v in zip(self.encoders, views)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encodings ``(B, out_features)`` of the views of ``x``."""
        views = self.split(x)
        if self.output_view is not None:
            v = self.output_view
            return self.encoders[v](views[v])  # (B, out_v)
        return torch.cat(self.encode_views(views), dim=1)  # (B, sum of out_v)


class CMCObjective(Objective):
    """CMC: InfoNCE between the projections of a sample's views.

    Each view has its own encoder (``build_encoder`` by the view's shape,
    ended by a linear layer to ``n_components`` when given) and its own
    projection head; the loss is computed on the projections, the
    representation is taken before them (as SimCLR's). The views of the
    standardised batch are augmented, each by ``augmentation`` (by default
    not at all), before they are encoded.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    views : sequence of sequence of int
        The flat indices of each view's values (at least 2 views).
    view_shapes : sequence of tuple of int
        The shape of one sample of each view, of product ``len(views[v])``:
        ``(d,)`` for a vector, ``(C, L)`` for a signal, ``(C, H, W)`` for an
        image.
    encoder : str or type, default="auto"
        See :func:`sk_replearn.nn.build_encoder`; "auto" is resolved for each
        view's shape.
    encoder_kwargs : dict or None, default=None
        Keyword arguments of every view's encoder.
    augmentation : "auto", callable or None, default=None
        See :func:`sk_replearn.views.make_views`, for each view's shape;
        None leaves the views as they are.
    n_components : int or None, default=None
        Width of each view's encoding; None keeps the encoder's own width.
    projection_dim : int, default=128
        Output width of each view's 2-layer projection head.
    hidden_dim : int or None, default=None
        Hidden width of the heads; None is the view's encoding width.
    temperature : float, default=0.07
        InfoNCE temperature.
    graph : {"full", "core"}, default="full"
        Which pairs of views are contrasted.
    core_view : int, default=0
        The core view of ``graph="core"``.
    output_view : int or None, default=None
        What :meth:`encode` returns: every view's encoding, or one view's.

    Attributes
    ----------
    backbone : MultiViewEncoder
        The views and their encoders; ``backbone.out_features`` is the
        representation's width.
    projectors : torch.nn.ModuleList
        One projection head a view.
    criterion : MultiViewInfoNCELoss
        The loss.

    References
    ----------
    .. [1] Y. Tian, D. Krishnan and P. Isola, "Contrastive Multiview
       Coding", arXiv:1906.05849, 2019 (ECCV 2020).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.cmc import CMCObjective
    >>> left = [r * 8 + c for r in range(8) for c in range(4)]
    >>> right = [r * 8 + c for r in range(8) for c in range(4, 8)]
    >>> obj = CMCObjective((1, 8, 8), [left, right], [(1, 8, 4), (1, 8, 4)],
    ...                    n_components=16, projection_dim=8)
    >>> x = torch.randn(5, 1, 8, 8)
    >>> obj.loss(obj(x), x).shape, obj.encode(x).shape
    (torch.Size([]), torch.Size([5, 32]))
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        views: Sequence[Sequence[int]],
        view_shapes: Sequence[tuple[int, ...]],
        *,
        encoder: str | type = "auto",
        encoder_kwargs: dict | None = None,
        augmentation: str | Callable | None = None,
        n_components: int | None = None,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        temperature: float = 0.07,
        graph: str = "full",
        core_view: int = 0,
        output_view: int | None = None,
    ) -> None:
        super().__init__(tuple(input_shape))
        self.criterion = MultiViewInfoNCELoss(temperature, graph, core_view)
        encoders = [
            self._view_encoder(v, shape, encoder, encoder_kwargs, n_components)
            for v, shape in enumerate(view_shapes)
        ]
        self.backbone = MultiViewEncoder(encoders, views, view_shapes, output_view)
        self.projectors = nn.ModuleList(
            ProjectionHead(e.out_features, hidden_dim, projection_dim) for e in encoders
        )
        self.augmentations = [_augmentation(augmentation, s) for s in view_shapes]

    @staticmethod
    def _view_encoder(v, shape, encoder, encoder_kwargs, n_components) -> nn.Module:
        """View ``v``'s encoder; a build error says which view it is about."""
        try:
            kwargs = builder_kwargs(encoder_kwargs, "encoder_kwargs", ["input_shape"])
            net = build_encoder(encoder, tuple(shape), **kwargs)
        except ValueError as exc:
            raise ValueError(f"The encoder of view {v} (shape {shape}): {exc}") from exc
        return net if n_components is None else Bottleneck(net, n_components)

    def draw_views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The (augmented) views ``(B, *view_shapes[v])`` of the standardised batch."""
        views = self.backbone.split(self.normalize(x))
        return [aug(v) for aug, v in zip(self.augmentations, views)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The projections of the views of ``x``: V tensors ``(B, projection_dim)``."""
        encodings = self.backbone.encode_views(self.draw_views(x))  # V x (B, out_v)
        return [head(h) for head, h in zip(self.projectors, encodings)]

    def loss(self, output: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The multi-view InfoNCE of the projections."""
        return self.criterion(output)

    # The representation and its transferable copy are the two-view
    # objectives': the backbone (here every view's encoder) on the
    # standardised batch.
    encode = TwoViewObjective.encode
    transfer_encoder = TwoViewObjective.transfer_encoder


def _augmentation(augmentation, view_shape):
    """:func:`make_views` for one view; its errors name ``augmentation``.

    In CMC, ``views`` are the column groups: an error about the augmentation
    must not send the user to them.
    """
    try:
        return make_views(augmentation, view_shape)
    except (ValueError, TypeError) as err:
        message = str(err).replace("views=", "augmentation=")
        raise type(err)(message) from err
