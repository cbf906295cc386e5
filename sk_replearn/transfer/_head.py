"""The network a fine-tuner trains: the pre-trained encoder and a new head.

:func:`build_head` makes the task head (``"linear"``, ``"mlp"`` or the
user's module, whose widths :func:`_check_head_shape` checks);
:class:`FineTuneModule` joins encoder and head, its frozen blocks kept in
evaluation mode; :func:`param_groups` gives each block of the encoder its
own learning rate.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..nn._user_modules import probe_zeros
from ..nn.heads import CentredLayerNorm, CentredScale
from ..nn.surgery import Block

#: A head's input normalisation, by ``head_norm`` (None: the identity,
#: kept as a module so that the head's layers keep their indices).
_HEAD_NORMS = {
    "layer": CentredLayerNorm,
    "scale": CentredScale,
    None: lambda in_features: nn.Identity(),
}
#: Width of the hidden layer of head="mlp".
_MLP_HIDDEN = 256


def build_head(
    head, in_features: int, out_features: int, norm: str | None = "layer"
) -> nn.Module:
    """The new task head (network surgery) on ``in_features`` features.

    ``"linear"`` and ``"mlp"`` start with the normalisation ``norm`` names
    (``"layer"``, ``"scale"`` or None, see the fine-tuners' ``head_norm``).
    The default is a :class:`CentredLayerNorm`,
    since pre-trained features come at any scale and offset: each feature
    is centred on a running mean of the batch means, with the gradient of
    centring on the batch's own mean, then each sample is normalised over
    its features. No feature is divided by its own spread, which with a few
    labels inflates the features that hardly vary (a batch normalisation,
    MAE's linear probe, does). A layer normalisation alone lets the
    features of a Vision Transformer drift in a direction all samples share
    until fine-tuning stalls; centring on the batch mean in the forward pass
    as well puts the batch's noise into every prediction, which costs a
    regression most. Held-out accuracy, mean of five draws of the labels
    (R² for FreeSolv), one pre-trained representation and the same draws in
    each row, with the head's normalisation:

    =========================================  =======  =====  =====  =====
    fine-tuning                                default  batch  layer  batch
                                                        mean          norm
    =========================================  =======  =====  =====  =====
    SimCLR (CNN), digits, 20 labels            0.819    0.821  0.816  0.796
    SimCLR (CNN), MNIST-1D, 40 labels          0.806    0.806  0.811  0.773
    MAE (ViT) from MNIST, digits, 100 labels   0.901    0.906  0.871  0.912
    the same ViT from scratch                  0.538    0.807  0.147  0.819
    BERT on peptides, all labels (one fit)     0.868    0.852  0.877  0.858
    BERT on FreeSolv, regression (one fit)     0.906    0.822  0.912  0.792
    =========================================  =======  =====  =====  =====

    ("batch mean": centred on the batch's own mean in the forward pass.)
    """
    if isinstance(head, str):
        first = _HEAD_NORMS[norm](in_features)
        if head == "linear":
            return nn.Sequential(first, nn.Linear(in_features, out_features))
        return nn.Sequential(
            first,
            nn.Linear(in_features, _MLP_HIDDEN),
            nn.ReLU(),
            nn.Linear(_MLP_HIDDEN, out_features),
        )
    if isinstance(head, nn.Module):
        # A module is callable too, but as a network: copy it (each fit and
        # each clone trains its own, as encoder= does), and check its widths.
        module = copy.deepcopy(head)
        _check_head_shape(head, module, in_features, out_features)
        return module
    module = head(in_features, out_features)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"head={head!r} must return a torch.nn.Module when called as "
            f"head(in_features, out_features); got {type(module).__name__}."
        )
    _check_head_shape(head, module, in_features, out_features)
    return module


def _check_head_shape(head, module: nn.Module, in_features: int, out_features: int):
    """A user's head maps ``(B, in_features)`` to ``(B, out_features)`` (2 rows)."""
    expected = f"(batch, {in_features}) to (batch, {out_features})"
    training = module.training
    module.eval()  # no running statistics touched, no dropout drawn
    try:
        with torch.no_grad():
            out = module(probe_zeros(module, 2, in_features))
    except Exception as err:  # the user's module: any error, reported as ours
        raise ValueError(
            f"head={head!r} built a module that fails on the encoder's "
            f"{in_features} features ({type(err).__name__}: {err}); it must map "
            f"{expected}."
        ) from err
    finally:
        module.train(training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (2, out_features):
        raise ValueError(
            f"head={head!r} must map {expected}; on 2 rows its module returned {shape}."
        )


class FineTuneModule(nn.Module):
    """Encoder plus head, with frozen blocks kept in evaluation mode.

    Parameters
    ----------
    encoder : TransferEncoder
    head : torch.nn.Module
    frozen : list of Block
        Blocks whose weights do not train; their batch-norm statistics stay
        fixed too (they are kept in eval mode by :meth:`train`).

    Attributes
    ----------
    features_input : bool
        When True, :meth:`forward` takes encoder outputs instead of raw
        input (used to train a head on pre-computed frozen features).
    views : callable or None
        Augmentation applied in training mode to the standardised batch,
        between the encoder's input standardisation and its body.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, frozen: list[Block]):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.frozen_modules = [m for b in frozen for m in b.modules]
        self.features_input = False
        self.views = None

    def train(self, mode: bool = True) -> FineTuneModule:
        """As :meth:`torch.nn.Module.train`, frozen blocks staying in eval mode."""
        super().train(mode)
        for m in self.frozen_modules:
            m.eval()
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The (fine-tuned) representation of a raw batch."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Head outputs of a raw batch (or of features, see ``features_input``)."""
        if self.features_input:
            return self.head(x)
        return self.head(self.encoder(x, self.views if self.training else None))


def param_groups(
    module: FineTuneModule, blocks: list[Block], lrs: list[float | None]
) -> list[tuple[str, dict]]:
    """skorch ``optimizer__param_groups``: each block's weights at its lr.

    ``lrs[i]`` is the learning rate of ``blocks[i]``, None when frozen
    (its weights stop requiring gradients). The head keeps the net's lr.
    """
    names = {id(p): name for name, p in module.named_parameters()}
    groups = []
    for block, lr in zip(blocks, lrs):
        for p in block.params:
            if lr is None:
                p.requires_grad_(False)
            else:
                groups.append((names[id(p)], {"lr": lr}))
    return groups
