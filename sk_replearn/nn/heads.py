"""Projection, prediction and classification heads.

One parametrised MLP serves every method: SimCLR's and MoCo v2's projector
(2 layers), BYOL's projector and predictor (2 layers), SimSiam's and
Barlow Twins' projector (3 layers, ``last_bn=True`` for SimSiam), and a
linear task head (1 layer).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._util import is_int

__all__ = [
    "Bottleneck",
    "CentredLayerNorm",
    "CentredScale",
    "ProjectionHead",
    "Prototypes",
]


class ProjectionHead(nn.Module):
    """MLP head mapping embeddings to the space where a loss is computed.

    ``num_layers - 1`` blocks of ``Linear -> BatchNorm1d -> ReLU`` followed by
    a final ``Linear`` (optionally followed by a ``BatchNorm1d`` without
    affine parameters). SimCLR [1]_ showed that computing the contrastive
    loss on such a projection, and keeping the representation *before* it,
    gives markedly better features than using the encoder output directly.

    Parameters
    ----------
    in_features : int
        Width of the incoming embedding.
    hidden_features : int, optional
        Width of the hidden layers; defaults to ``in_features`` (SimCLR's
        choice). Unused when ``num_layers=1``.
    out_features : int, default=128
        Width of the output.
    num_layers : int, default=2
        Number of linear layers. ``1`` gives a single ``Linear``, i.e. a
        linear classification or regression head.
    batch_norm : bool, default=True
        Put a ``BatchNorm1d`` after each hidden linear layer (their bias is
        then dropped, as the normalisation cancels it).
    last_bn : bool, default=False
        Put a ``BatchNorm1d(affine=False)`` after the output layer, as the
        projectors of SimSiam [2]_ and MoCo v3.

    Attributes
    ----------
    layers : torch.nn.Sequential
        The stacked layers.
    in_features, out_features : int
        The input and output widths.

    References
    ----------
    .. [1] T. Chen, S. Kornblith, M. Norouzi and G. Hinton. "A Simple
       Framework for Contrastive Learning of Visual Representations."
       ICML 2020.
    .. [2] X. Chen and K. He. "Exploring Simple Siamese Representation
       Learning." CVPR 2021.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import ProjectionHead
    >>> head = ProjectionHead(64, hidden_features=128, out_features=32)
    >>> head(torch.randn(4, 64)).shape
    torch.Size([4, 32])
    >>> ProjectionHead(64, out_features=10, num_layers=1).layers
    Sequential(
      (0): Linear(in_features=64, out_features=10, bias=True)
    )
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int = 128,
        num_layers: int = 2,
        batch_norm: bool = True,
        last_bn: bool = False,
    ) -> None:
        super().__init__()
        hidden_features = in_features if hidden_features is None else hidden_features
        sizes = {
            "in_features": in_features,
            "hidden_features": hidden_features,
            "out_features": out_features,
            "num_layers": num_layers,
        }
        for name, value in sizes.items():
            if not is_int(value) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive int.")
        in_features, hidden_features, out_features, num_layers = (
            int(v) for v in sizes.values()
        )
        self.in_features = in_features
        self.out_features = out_features
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(width, hidden_features, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_features))
            layers.append(nn.ReLU(inplace=True))
            width = hidden_features
        layers.append(nn.Linear(width, out_features, bias=not last_bn))
        if last_bn:
            layers.append(nn.BatchNorm1d(out_features, affine=False))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project a batch of embeddings.

        Parameters
        ----------
        x : torch.Tensor of shape (B, in_features)

        Returns
        -------
        torch.Tensor of shape (B, out_features)
        """
        return self.layers(x)


class Prototypes(nn.Module):
    """DINO's last layer: cosine similarities to ``out_dim`` learned prototypes.

    The weight-normalised linear layer with its norm fixed to 1 of DINO,
    applied to the L2-normalised bottleneck: logits in ``[-1, 1]``.

    Parameters
    ----------
    in_features : int
        Width of the embeddings.
    out_dim : int
        Number of prototypes.

    References
    ----------
    .. [1] M. Caron et al., "Emerging Properties in Self-Supervised Vision
       Transformers", ICCV 2021 (DINO).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import Prototypes
    >>> logits = Prototypes(8, 5)(torch.randn(3, 8))
    >>> logits.shape, bool(logits.abs().max() <= 1)
    (torch.Size([3, 5]), True)
    """

    def __init__(self, in_features: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_dim, in_features))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, in_features)`` to logits ``(B, out_dim)`` in ``[-1, 1]``."""
        return F.linear(F.normalize(z, dim=1), F.normalize(self.weight, dim=1))


class Bottleneck(nn.Module):
    """An encoder followed by a linear layer to ``n_components`` features.

    How the two-view estimators realise ``n_components``: the linear layer
    is part of the encoder (the projection head sits on top of it, and a
    momentum copy of the encoder copies it too), so the representation is
    trained, not a projection fitted afterwards.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps ``(B, *input_shape)`` to ``(B, encoder.out_features)``.
    n_components : int
        Width of the output.

    Attributes
    ----------
    out_features : int
        ``n_components``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import Bottleneck, MLPEncoder
    >>> enc = Bottleneck(MLPEncoder((6,), hidden_sizes=(8,)), 3)
    >>> enc(torch.randn(4, 6)).shape, enc.out_features
    (torch.Size([4, 3]), 3)
    """

    def __init__(self, encoder: nn.Module, n_components: int) -> None:
        super().__init__()
        if not is_int(n_components) or n_components < 1:
            raise ValueError(
                f"n_components={n_components!r} must be an int >= 1 (the width "
                "of the representation). For the encoder's own width, leave "
                "out the Bottleneck (an estimator's n_components=None does)."
            )
        self.encoder = encoder
        self.linear = nn.Linear(encoder.out_features, int(n_components))
        self.out_features = int(n_components)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, *input_shape)`` to ``(B, n_components)``."""
        return self.linear(self.encoder(x))


class _RunningCentre(nn.Module):
    """Centring on a running mean of the training batches' means.

    What :class:`CentredLayerNorm` and :class:`CentredScale` share: the
    ``t``-th training batch weighs ``max(momentum, 1 / t)`` in the running
    mean; the centred value is ``x - running_mean`` with, in training, the
    gradient of ``x - batch_mean``.
    """

    def __init__(
        self, num_features: int, momentum: float = 0.1, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.num_features, self.momentum, self.eps = num_features, momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))

    def _centre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` centred, and this batch's weight in the running statistics
        (None where they were not updated: evaluation, a lone sample).
        """
        if not (self.training and x.shape[0] > 1):
            return x - self.running_mean.to(x.dtype), None
        batch_mean = x.mean(dim=0)
        with torch.no_grad():
            self.num_batches_tracked += 1
            # max(momentum, 1 / t) without a device-to-host copy
            weight = self.num_batches_tracked.reciprocal().clamp(min=self.momentum)
            weight = weight.to(self.running_mean)
            self.running_mean.lerp_(batch_mean.detach().to(self.running_mean), weight)
        running = self.running_mean.to(x.dtype)
        # The value of x - running, the gradient of x - batch_mean.
        return x - batch_mean + (batch_mean - running).detach(), weight

    def extra_repr(self) -> str:
        return f"{self.num_features}, momentum={self.momentum}, eps={self.eps}"


class CentredLayerNorm(_RunningCentre):
    """Centre every feature on its mean, then normalise every sample.

    The input normalisation of the fine-tuners' task heads where the
    encoder trains (``head_norm="layer"``; :class:`CentredScale` is the
    other). Each feature is centred on a running mean of the training
    batches' means (the first batch's mean is taken whole), then each
    sample is scaled to zero mean and unit variance over its features, a
    layer normalisation without learned scale. In training the gradient is
    the one of centring on the batch's own mean, as a batch normalisation
    centres: it has no component that moves every sample of the batch in
    one shared direction, a drift that a layer normalisation alone lets
    grow on a Vision Transformer's features until it swamps each sample's
    own signal. The forward pass uses the running mean, so a prediction
    carries no noise from the batch it was computed in, and no feature is
    divided by its own spread, so with a few labels a feature that hardly
    varies is not inflated to the size of the others (what a batch
    normalisation does).

    Parameters
    ----------
    num_features : int
        Width of the input.
    momentum : float, default=0.1
        Weight of a new batch mean in the running mean. The t-th batch
        weighs ``max(momentum, 1 / t)``: the first batches are averaged
        cumulatively, so a short training still ends with their mean.
    eps : float, default=1e-5
        Added to the variance of each sample before its square root.

    Attributes
    ----------
    running_mean : torch.Tensor of shape (num_features,)
        The features' mean every sample is centred on.
    num_batches_tracked : torch.Tensor
        Training batches averaged into ``running_mean``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import CentredLayerNorm
    >>> norm = CentredLayerNorm(4)
    >>> x = torch.randn(8, 4) + torch.tensor([100.0, -50.0, 0.0, 3.0])
    >>> out = norm(x)  # the first batch: centred on its own mean
    >>> out.shape, bool(out.mean(dim=1).abs().max() < 1e-5)
    (torch.Size([8, 4]), True)
    >>> bool(torch.allclose(norm.eval()(x), out, atol=1e-5))  # running mean
    True
    >>> bool(torch.allclose(norm(x[:1]), out[:1], atol=1e-5))  # its own
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, num_features)`` to the same shape, centred and normalised."""
        centred, _ = self._centre(x)
        return F.layer_norm(centred, (self.num_features,), eps=self.eps)


class CentredScale(_RunningCentre):
    """Centre every feature on its mean, then divide all by one running scale.

    The input normalisation of a fine-tuner's task head where the head must
    see every linear function of the features (``head_norm="scale"``). Each
    feature is centred on a running mean of the training batches' means, as
    in :class:`CentredLayerNorm`, and every value is divided by one number:
    the square root of a running mean of the batches' mean square about
    their mean (over the samples and the features). The map is affine and
    the same for every sample, so a linear layer after it is a linear
    function of the features (a linear probe), where a normalisation of
    each sample keeps only its direction (of one feature, nothing; of two,
    a sign). One scale for all the features divides none by its own
    spread, which with a few labels inflates the features that hardly vary
    (what a batch normalisation does).

    Parameters
    ----------
    num_features : int
        Width of the input.
    momentum : float, default=0.1
        Weight of a new batch's statistics in the running ones. The t-th
        batch weighs ``max(momentum, 1 / t)``: the first batches are averaged
        cumulatively, so a short training still ends with their statistics.
    eps : float, default=1e-5
        Added to the mean square before its square root: features of a
        spread well below ``sqrt(eps)`` (about 3e-3) are scaled up by less
        than their spread asks (multiply them by a constant first).

    Attributes
    ----------
    running_mean : torch.Tensor of shape (num_features,)
        The features' mean every sample is centred on.
    running_sq : torch.Tensor of shape ()
        The mean square of the centred features: the scale's square.
    num_batches_tracked : torch.Tensor
        Training batches averaged into the running statistics.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import CentredScale
    >>> norm = CentredScale(2)
    >>> x = torch.tensor([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]])
    >>> norm(x)  # the first batch: its own statistics
    tensor([[-0.1723, -1.7235],
            [ 0.0000,  0.0000],
            [ 0.1723,  1.7235]])
    >>> bool(torch.allclose(norm.eval()(x), norm(x)))  # the running ones
    True
    """

    def __init__(
        self, num_features: int, momentum: float = 0.1, eps: float = 1e-5
    ) -> None:
        super().__init__(num_features, momentum, eps)
        self.register_buffer("running_sq", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, num_features)`` to the same shape, centred and scaled."""
        centred, weight = self._centre(x)
        if weight is not None:  # the batch's spread about its own mean
            with torch.no_grad():
                # in float32: float16 squares overflow past a spread of 256
                xf = x.float()
                spread = (xf - xf.mean(dim=0)).square().mean()
                self.running_sq.lerp_(spread.to(self.running_sq), weight)
        scale = (self.running_sq.float() + self.eps).rsqrt()
        return (centred.float() * scale).to(x.dtype)
