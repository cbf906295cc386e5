"""Networks trained elsewhere, as encoders: cut, pooled, adapted, exported.

A network pre-trained on large data (a torchvision or timm classifier, a
module saved with :func:`torch.export.save`, any ``nn.Module``) becomes an
encoder ``(B, *input_shape) -> (B, D)`` here, as DeCAF (Donahue et al.
2014) and "CNN features off-the-shelf" (Razavian et al. 2014) use one:

- :func:`strip_classifier` replaces a classification network's last layer
  by the identity, so that it gives its penultimate features;
- :class:`PretrainedBackbone` runs the network (up to a named ``layer``, read
  by a forward hook; the rest of the forward pass is skipped) and pools its
  output to one vector per sample (:func:`pool_features`);
- :class:`ImagePreprocess` adapts small arrays to the network: rescaling,
  channel repeat, resizing, normalisation with the weights' statistics;
- :class:`HFTextBackbone` pools a Hugging Face text model's hidden states
  over the real tokens of padded ids;
- :class:`ExportedModule` holds a :func:`torch.export.load` ed program as a
  trainable, picklable module.

The last three are defined in the private ``_preprocess.py``,
``_hf_text.py`` and ``_exported.py``, and public from here; the cut's
forward hook and the lookup of a layer by name are in ``_cut.py``.

Nothing here knows about scikit-learn or devices.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._cut import _as_tensor, _has_params, _names, _output_of, _submodule
from ._exported import ExportedModule
from ._hf_text import HFTextBackbone
from ._preprocess import ImagePreprocess
from ._user_modules import first_floating, probe_zeros
from .surgery import Block

__all__ = [
    "POOLINGS",
    "ExportedModule",
    "HFTextBackbone",
    "ImagePreprocess",
    "PretrainedBackbone",
    "pool_features",
    "strip_classifier",
]

#: Values of the ``pooling`` of :class:`~sk_replearn.nn.pretrained.PretrainedBackbone`.
POOLINGS = ("avg", "max", "cls", "flatten")
#: Names that torchvision and most model zoos give a classifier's last layer.
CLASSIFIER_NAMES = ("fc", "classifier", "head", "heads", "last_linear")


def strip_classifier(model: nn.Module) -> str | None:
    """Replace a classification network's output layer by the identity.

    The network then gives its penultimate features (512 for a ResNet-18)
    instead of its class scores, as off-the-shelf features are read. A timm
    model drops its classifier with its own ``reset_classifier(0)``;
    otherwise the last top-level child named one of ``fc``, ``classifier``,
    ``head``, ``heads`` or ``last_linear`` that is a ``Linear`` (or a
    ``Sequential`` ending in one, whose last ``Linear`` alone is replaced)
    becomes ``nn.Identity()``.

    Parameters
    ----------
    model : torch.nn.Module
        Changed in place.

    Returns
    -------
    str or None
        The name of the replaced layer, or None when the network has no
        classifier layer by those names (it is left as it is).

    Examples
    --------
    >>> from torch import nn
    >>> from sk_replearn.nn.pretrained import strip_classifier
    >>> net = nn.Sequential()
    >>> net.add_module("features", nn.Linear(4, 3))
    >>> net.add_module("fc", nn.Linear(3, 10))
    >>> strip_classifier(net), net.fc
    ('fc', Identity())
    """
    if callable(getattr(model, "reset_classifier", None)) and hasattr(
        model, "default_cfg"
    ):  # a timm model: it knows where its head is
        if getattr(model, "num_classes", None) == 0:
            return None  # built without a classifier (num_classes=0)
        name = model.default_cfg.get("classifier")
        model.reset_classifier(0)
        return name if isinstance(name, str) else "classifier"
    names = [n for n, _ in model.named_children()]
    for name in reversed(names):
        if name not in CLASSIFIER_NAMES:
            continue
        child = getattr(model, name)
        if isinstance(child, nn.Linear):
            setattr(model, name, nn.Identity())
            return name
        if isinstance(child, nn.Sequential) and len(child):
            for i in reversed(range(len(child))):
                if isinstance(child[i], nn.Linear):
                    child[i] = nn.Identity()
                    return f"{name}.{i}"
        return None
    return None


def pool_features(
    out: torch.Tensor, pooling: str, signal_maps: bool = False
) -> torch.Tensor:
    """One vector per sample from a network's output, ``(B, D)``.

    Parameters
    ----------
    out : torch.Tensor of shape (B, D), (B, T, D), (B, C, L) or (B, C, H, W)
        A 2-D output is returned as it is. A 3-D output is read as tokens
        ``(B, T, D)`` (a transformer's): ``"avg"`` and ``"max"`` pool over
        the tokens, ``"cls"`` takes the first; with ``signal_maps`` as a
        1-D convolution's feature map ``(B, C, L)``, pooled over its length.
        A 4-D feature map ``(B, C, H, W)`` is pooled over space (``"avg"``:
        global average pooling, ``"max"``). ``"flatten"`` keeps every value.
    pooling : {"avg", "max", "cls", "flatten"}
    signal_maps : bool, default=False
        Whether a 3-D output is a 1-D feature map ``(B, C, L)`` rather than
        tokens (:meth:`PretrainedBackbone.infer_width` finds out).

    Returns
    -------
    torch.Tensor of shape (B, D')

    Raises
    ------
    ValueError
        For an output of another number of dimensions, or ``"cls"`` on a
        feature map.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.pretrained import pool_features
    >>> pool_features(torch.ones(2, 8, 3, 3), "avg").shape
    torch.Size([2, 8])
    >>> pool_features(torch.arange(6.0).reshape(1, 3, 2), "cls")
    tensor([[0., 1.]])
    """
    if out.dim() == 2:
        return out
    if pooling == "flatten" and out.dim() >= 2:
        return out.flatten(1)
    if out.dim() == 3 and not signal_maps:  # tokens (B, T, D)
        if pooling == "cls":
            return out[:, 0]
        return out.mean(1) if pooling == "avg" else out.amax(1)
    if out.dim() in (3, 4):  # feature maps (B, C, L) or (B, C, H, W)
        if pooling == "cls":
            raise ValueError(
                "pooling='cls' takes the first token of a transformer's output "
                f"(B, T, D), but the network returned a feature map of shape "
                f"{tuple(out.shape)}; use pooling='avg' or 'max'."
            )
        space = tuple(range(2, out.dim()))
        return out.mean(space) if pooling == "avg" else out.amax(space)
    raise ValueError(
        f"the network returned an output of shape {tuple(out.shape)}; a 2-D "
        "(B, D), 3-D tokens (B, T, D) or 4-D feature map (B, C, H, W) output is "
        "needed. Cut the network at another layer (layer=...)."
    )


#: Layers whose 3-D output is a 1-D feature map (B, C, L), not tokens.
_SIGNAL_MAP_LAYERS = (
    nn.Conv1d,
    nn.BatchNorm1d,
    nn.InstanceNorm1d,
    nn.MaxPool1d,
    nn.AvgPool1d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveAvgPool1d,
)


class PretrainedBackbone(nn.Module):
    """A network cut at a layer and pooled: ``(B, *shape) -> (B, D)``.

    Parameters
    ----------
    model : torch.nn.Module
        The network (used as given: copy it first to keep the original).
    layer : str or None, default=None
        The name of a sub-module, as ``model.named_modules()`` gives it,
        whose output is returned; the layers after it are not run. None
        returns the network's output.
    pooling : {"avg", "max", "cls", "flatten"}, default="avg"
        How the output becomes a vector (:func:`pool_features`).
    blocks : list of (str or list of str) or None, default=None
        The network's blocks for the transfer strategies, from input to
        output, each a sub-module name or a list of names. None takes the
        top-level children that hold weights (descending through a module
        that is the only one holding weights, such as a wrapper's body), up
        to the one that holds ``layer`` (the children after it, which do not
        run, join the last block).

    Attributes
    ----------
    out_features : int
        Set by :meth:`infer_width`.
    signal_maps : bool
        Whether a 3-D output is a 1-D convolution's feature map ``(B, C, L)``
        (pooled over its length) rather than tokens ``(B, T, D)``: set by
        :meth:`infer_width` from the last layer with weights that ran (a
        ``Conv1d`` or a 1-D norm or pooling layer on it), False before.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sk_replearn.nn.pretrained import PretrainedBackbone
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3))
    >>> cut = PretrainedBackbone(net, layer="1")
    >>> cut.infer_width((1, 8, 8))
    4
    >>> cut(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2, 4])
    >>> len(cut.transfer_blocks())
    1
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str | None = None,
        pooling: str = "avg",
        blocks: Sequence | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} must be one of {list(POOLINGS)}.")
        self.model = model
        self.layer = layer
        self.pooling = pooling
        self.signal_maps = False
        self.blocks = None if blocks is None else [_names(b) for b in blocks]
        if layer is not None:
            self._target()  # a wrong name fails here, listing the valid ones
        if self.blocks is not None:
            for group in self.blocks:
                for name in group:
                    _submodule(model, name, "blocks")

    def _target(self) -> nn.Module:
        return _submodule(self.model, self.layer, "layer")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled output of ``layer`` (or of the network) for a batch.

        A network whose weights are in another floating dtype than ``x`` (a
        bf16 or fp16 checkpoint) runs on ``x`` cast to that dtype, and its
        features come back in ``x``'s dtype.
        """
        weights = first_floating(self.model)
        if weights is not None and x.is_floating_point() and x.dtype != weights.dtype:
            return self._features(x.to(weights.dtype)).to(x.dtype)
        return self._features(x)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        maps = getattr(self, "signal_maps", False)  # (pickles of before it)
        return pool_features(self._unpooled(x), self.pooling, maps)

    def _unpooled(self, x: torch.Tensor) -> torch.Tensor:
        """The output of ``layer`` (or of the network) before pooling."""
        if self.layer is None:
            return _as_tensor(self.model(x), f"{type(self.model).__name__}")
        out = _output_of(self._target(), lambda: self.model(x))
        if out is None:
            raise ValueError(
                f"layer={self.layer!r} did not run in the forward pass of "
                f"{type(self.model).__name__}; cut at a layer the forward uses."
            )
        return _as_tensor(out, f"layer {self.layer!r}")

    def infer_width(self, input_shape: Sequence[int]) -> int:
        """Set and return ``out_features`` by one forward pass on zeros.

        The network runs in eval mode (batch-norm statistics untouched) on
        a batch of 2 zero samples of shape ``input_shape``.
        """
        batch = getattr(self.model, "static_batch", None)  # an ExportedModule's
        if batch is not None:  # no input_shape can meet it; transform's batches vary
            raise ValueError(
                f"The program was exported for batches of {batch} samples only: "
                "export it with a dynamic batch axis, torch.export.export(model, "
                "(x,), dynamic_shapes=({0: torch.export.Dim('batch', min=1)},)), "
                "as the user guide's export of an encoder does."
            )
        x = probe_zeros(self, 2, *input_shape)
        was_training = self.training
        self.eval()
        last = []  # the layers with weights (or 1-D pooling) that ran, in order
        hooks = [
            m.register_forward_hook(lambda m, args, out: last.append(m))
            for m in self.model.modules()
            if isinstance(m, _SIGNAL_MAP_LAYERS)
            or (
                next(m.children(), None) is None  # a layer, not a container
                and next(m.parameters(recurse=False), None) is not None
            )
        ]
        try:
            with torch.no_grad():  # x is in the weights' dtype: no cast
                out = self._unpooled(x)
                # a 1-D convolution's map is pooled over its length, not its
                # channels, as tokens would be
                self.signal_maps = bool(last) and isinstance(
                    last[-1], _SIGNAL_MAP_LAYERS
                )
                out = pool_features(out, self.pooling, self.signal_maps)
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(
                f"{type(self.model).__name__} failed on a zero batch of shape "
                f"{tuple(x.shape)}: {exc}. Give samples of the shape the network "
                "takes (input_shape=...), or adapt them with preprocess "
                "(channels, image_size)."
            ) from exc
        finally:
            for hook in hooks:
                hook.remove()
            self.train(was_training)
        self.out_features = int(out.shape[1])
        return self.out_features

    def transfer_blocks(self) -> list:
        """The network's blocks, as :func:`~sk_replearn.nn.surgery.encoder_blocks`
        reads them: a list of :class:`~sk_replearn.nn.surgery.Block`.

        ``blocks`` when given; else one per weighted child of the network
        (below wrappers of one child), a child without weights (dropout,
        activation) joining the block before it, and the children after
        ``layer``, which never run, joining the last."""
        if self.blocks is not None:
            groups = [
                [_submodule(self.model, n, "blocks") for n in g] for g in self.blocks
            ]
            return _with_the_rest([Block.of(*g) for g in groups], self.model)
        root = self.model
        while True:  # descend through wrappers with a single weighted child
            weighted = [c for c in root.children() if _has_params(c)]
            if len(weighted) != 1 or list(root.parameters(recurse=False)):
                break
            root = weighted[0]
        children = list(root.named_children())
        last = None
        if self.layer is not None:  # the children after the cut do not run
            target = self._target()
            for i, (_, child) in enumerate(children):
                if child is target or any(m is target for m in child.modules()):
                    last = i
        after = []
        if last is not None:
            children, after = children[: last + 1], children[last + 1 :]
        # A layer without weights (dropout, an activation, pooling) belongs
        # to the weighted layer before it (the first, for leading ones), so
        # that it runs in eval mode when that block is frozen.
        groups: list[list[nn.Module]] = []
        leading: list[nn.Module] = []
        for _, child in children:
            if _has_params(child):
                groups.append([*leading, child])
                leading = []
            elif groups:
                groups[-1].append(child)
            else:
                leading.append(child)
        blocks = [Block.of(*g) for g in groups]
        if blocks and after:
            # Layers after the cut never run; they join the last block so
            # that every weight has one and the count is of the layers used.
            blocks[-1] = Block.of(*blocks[-1].modules, *(c for _, c in after))
        loose = list(root.parameters(recurse=False))
        if loose:
            if blocks:
                blocks[0].params += loose
            else:
                blocks = [Block(params=loose)]
        return blocks


def _with_the_rest(blocks: list, model: nn.Module) -> list:
    """``blocks`` with every weight they leave out placed where it runs.

    A module that no block holds joins the block of the nearest module
    before it (in ``model.named_modules()`` order) that a block holds, or
    the first block if none comes before it: a stem left out of a list
    (``conv1``, ``bn1``) or a ViT's class token and position embedding
    (the model's own parameters) feed the first block, the layers after a
    listed one its block. A whole module joins, so that a re-drawn block
    re-initialises it as its kind does (a norm's scale to 1). (They went
    to one extra block on top, trained at the top's rate and re-drawn by
    ``reinit_layers=1`` from N(0, 0.02), norm scales included.)
    """
    if not blocks:
        return blocks
    owner = {id(m): i for i, b in enumerate(blocks) for m in b.modules}
    held = {id(p) for b in blocks for p in b.params}
    current = 0

    def place(module: nn.Module) -> None:
        nonlocal current
        if id(module) in owner:
            current = owner[id(module)]
            return  # a listed module: all its weights are held
        params = list(module.parameters())
        if params and module is not model and not any(id(p) in held for p in params):
            blocks[current].modules.append(module)
            blocks[current].params += params
            held.update(id(p) for p in params)
            return
        loose = [p for p in module.parameters(recurse=False) if id(p) not in held]
        blocks[current].params += loose
        held.update(id(p) for p in loose)
        for child in module.children():
            place(child)

    place(model)
    return blocks
