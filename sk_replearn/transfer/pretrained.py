"""Features of a network pre-trained elsewhere: PretrainedTransformer.

The network comes from torchvision, timm, a file written by
:func:`torch.export.save` (such as an encoder exported by this package's
``export_encoder``), or is any ``nn.Module``. :class:`PretrainedTransformer`
runs it frozen, batched, cut at a layer and pooled; as the
``representation`` of :class:`~sk_replearn.FineTuner` it is fine-tuned with
every transfer strategy. Loading the network and its weights (torchvision,
timm, Hugging Face, files) lives in ``_loading.py``, the preprocessing put
before the network in ``_pretrained_preprocess.py``, and the tokenisation
of a Hugging Face text model in ``_pretrained_text.py``.
"""

from __future__ import annotations

import copy
import os
import weakref
from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._seeding import seed_from_random_state
from ..base import BaseRepresentation, fit_context
from ..methods.base import _check_finite_output, seeded
from ..nn.pretrained import (
    POOLINGS,
    PretrainedBackbone,
    strip_classifier,
)
from ..nn.surgery import TransferEncoder
from ._loading import (
    _load_network,
    _refuse_in_memory_text_model,
    load_weights,
)
from ._pretrained_preprocess import (  # _Function: pickles made before name it here
    PretrainedPreprocessMixin,
    _first_conv_channels,
    _Function,  # noqa: F401
    _prep_shape,
)
from ._pretrained_text import PretrainedTextMixin

__all__ = ["PretrainedTransformer", "load_weights"]


class PretrainedTransformer(
    PretrainedTextMixin, PretrainedPreprocessMixin, BaseRepresentation
):
    """Off-the-shelf features of a network pre-trained elsewhere.

    A network trained on large data gives features that serve tasks it
    was never trained for (DeCAF [1]_; "CNN features off-the-shelf" [2]_):
    this transformer runs one frozen on X, batch by batch, and returns its
    penultimate features (a classifier's class scores are dropped), or the
    pooled output of any named layer (network surgery). Pass it to
    :class:`~sk_replearn.FineTuner` to fine-tune the network instead, with
    every strategy (full, frozen, ``freeze_layers``, ``reinit_layers``,
    ``layer_decay``) acting on its blocks.

    Parameters
    ----------
    model : nn.Module, callable, str or path
        The network:

        - an ``nn.Module`` (copied at ``fit``, never changed in place) or a
          function of no arguments that returns one (called at ``fit``,
          under ``random_state``);
        - ``"torchvision:<name>"`` (e.g. ``"torchvision:resnet18"``) or
          ``"timm:<name>"``, built by that library (optional extras:
          ``pip install sk_replearn[vision]``);
        - the path of a ``.pt2`` file written by :func:`torch.export.save`,
          e.g. an encoder of this package's ``export_encoder()``;
        - ``"hf:<name or folder>"``: a Hugging Face ``transformers`` text
          model with its tokenizer (``AutoModel``, ``AutoTokenizer``; a
          folder written by ``save_pretrained`` is read offline). X is then
          an iterable of strings, as scikit-learn's text vectorizers take,
          and ``pooling`` is ``"avg"`` (mean over the real tokens),
          ``"max"`` or ``"cls"``. Optional extra: ``sk_replearn[hf]``.
    weights : str, path or None, default=None
        A local file holding a state dict (read with
        ``torch.load(weights_only=True)``, so a file that would run code is
        refused), or, for ``"torchvision:"`` and ``"timm:"`` models, the
        library's own weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"`` for
        torchvision; a tag such as ``"a1_in1k"`` for timm), which the
        library downloads (``"default"``, in either case, is each library's
        default weights); None keeps the network's own weights (random for
        a freshly built library model).
    layer : str or None, default=None
        The sub-module whose output is the representation, by its name in
        ``model.named_modules()`` (e.g. ``"layer3"`` of a ResNet,
        ``"encoder.layer.5"`` of a Hugging Face BERT); the layers after it
        are not run. None is the network's output, its classifier removed.
        A ``.pt2`` program runs whole: export it already cut.
    pooling : {"avg", "max", "cls", "flatten"}, default="avg"
        How the output becomes one vector per sample: feature maps
        ``(B, C, H, W)`` are pooled over space, tokens ``(B, T, D)`` over
        the tokens (``"cls"``: the first token); ``"flatten"`` keeps every
        value; a 2-D output is used as it is. A 3-D output is read as a 1-D
        convolution's feature map ``(B, C, L)``, pooled over its length,
        where the last layer with weights to run is a ``Conv1d`` or a 1-D
        norm or pooling layer; else as tokens.
    preprocess : "auto", callable or None, default="auto"
        Adapts image samples ``(C, H, W)`` to the network. ``"auto"``
        repeats a grey image's channel to the channels the network's first
        convolution takes and resizes to ``image_size``; with a library's
        weights it also rescales X to [0, 1] (by the range seen in ``fit``)
        and normalises with the weights' mean and standard deviation. A
        callable (an ``nn.Module`` or a picklable function) maps each batch
        ``(B, *input_shape)`` to the network's input. None passes the
        samples as they are.
    image_size : int, tuple of int, "auto" or None, default="auto"
        The size images are resized to (with ``preprocess="auto"``).
        ``"auto"`` is the resolution of a library's weights (224 for most
        ImageNet weights) when weights are loaded by name, else no resize.
    blocks : list of (str or list of str) or None, default=None
        The network's blocks for the fine-tuners' strategies, from input to
        output: each a sub-module name or a list of names. None: its
        top-level children that hold weights (through a single-child
        wrapper), up to the one that holds ``layer``: a torchvision ResNet's
        stages (``layer1`` to ``layer4``, after ``conv1`` and ``bn1``), but
        a timm or torchvision Vision Transformer's transformer blocks as one
        (timm's ``blocks``, torchvision's ``encoder``), so that
        ``freeze_layers`` and ``layer_decay`` act per transformer block
        only with a list that names them, e.g. ``["patch_embed",
        *[f"blocks.{i}" for i in range(12)], "norm"]`` for timm's
        ``vit_base_patch16_224``.
    input_shape : tuple of int or None, default=None
        Shape of one sample, e.g. ``(1, 8, 8)``, when X is given flattened.
    max_length : int or None, default=None
        Tokens kept per string for a text model (longer ones are cut);
        None is the model's own limit (at most its position embeddings).
    batch_size : int, default=128
        Samples per batch in :meth:`transform`.
    device : str or torch.device, default="auto"
        ``"auto"`` is CUDA when available, else the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights a factory (or a library model without weights)
        draws, so that the features are reproducible.

    Attributes
    ----------
    encoder_ : TransferEncoder
        The frozen network with its preprocessing, ``(B, *input_shape_)``
        to ``(B, n_components_)``, in eval mode, on the CPU (:meth:`transform`
        runs a copy on ``device``, kept for the next calls).
    n_components_ : int
        Width of the representation, found by one forward pass.
    classifier_ : str or None
        The name of the classification layer that was removed, if any.
    data_range_ : tuple of float or None
        ``(min, max)`` of X in ``fit``, used to rescale it when the
        weights' normalisation applies.
    tokenizer_ : transformers tokenizer
        A text model's tokenizer (only for ``"hf:"`` models).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, for DataFrame input.
    input_shape_ : tuple of int
        Shape of one sample.

    See Also
    --------
    FineTuner : Fine-tune this network (or a package estimator) on labels.
    SimCLRTransformer.export_encoder : A trained encoder as a plain module.

    References
    ----------
    .. [1] J. Donahue et al., "DeCAF: A Deep Convolutional Activation Feature
       for Generic Visual Recognition", ICML 2014.
    .. [2] A. S. Razavian, H. Azizpour, J. Sullivan and S. Carlsson, "CNN
       Features off-the-shelf: an Astounding Baseline for Recognition",
       CVPR Workshops 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from sk_replearn import PretrainedTransformer
    >>> net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3))
    >>> X = np.random.default_rng(0).normal(size=(20, 64)).astype(np.float32)
    >>> rep = PretrainedTransformer(net, input_shape=(1, 8, 8)).fit(X)
    >>> rep.transform(X).shape
    (20, 16)
    >>> cut = PretrainedTransformer(net, layer="1", input_shape=(1, 8, 8))
    >>> cut.fit_transform(X).shape
    (20, 8)
    """

    _trains_network = False  # fit only loads it
    _parameter_constraints: dict = {
        **BaseRepresentation._parameter_constraints,
        "model": [nn.Module, callable, str, os.PathLike],
        "weights": [str, os.PathLike, None],
        "layer": [str, None],
        "pooling": [StrOptions(set(POOLINGS))],
        "preprocess": [StrOptions({"auto"}), callable, None],
        "image_size": [
            Interval(Integral, 1, None, closed="left"),
            tuple,
            list,
            StrOptions({"auto"}),
            None,
        ],
        "blocks": [list, tuple, None],
        "max_length": [Interval(Integral, 2, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        model,
        *,
        weights=None,
        layer: str | None = None,
        pooling: str = "avg",
        preprocess="auto",
        image_size="auto",
        blocks: Sequence | None = None,
        input_shape: tuple[int, ...] | None = None,
        max_length: int | None = None,
        batch_size: int = 128,
        device: str | torch.device = "auto",
        random_state=None,
    ) -> None:
        self.model = model
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.preprocess = preprocess
        self.image_size = image_size
        self.blocks = blocks
        self.input_shape = input_shape
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> PretrainedTransformer:
        """Build the network and find its output width on X's samples.

        Nothing is trained: ``fit`` loads the network and its weights, cuts
        it at ``layer``, sets up the preprocessing (with the range of X
        when the weights' normalisation applies) and runs one forward pass
        to find ``n_components_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
(n_samples, *input_shape), or iterable of str
            Training samples; strings for a text model (``"hf:"``).
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedTransformer
            The fitted transformer.
        """
        self._device()  # a device this machine lacks fails here, as in any fit
        if self._is_text():
            return self._fit_text(X)
        _refuse_in_memory_text_model(self.model)  # before X is read as numbers
        X = self._validate_X(X, reset=True)
        # Seeded: the weights a factory (or a lazy layer at the first
        # forward pass) draws.
        with seeded(seed_from_random_state(self.random_state)):
            network, hints = _load_network(self.model, self.weights)
            shape = tuple(self.input_shape_)
            if len(shape) == 2 and _first_conv_channels(network) is not None:
                # torch would read one sample as an image of shape[0] channels
                raise ValueError(
                    f"X's samples have shape {shape}, images without a channel "
                    f"axis, and {type(network).__name__} begins with a 2-D "
                    f"convolution: pass X[:, None] (samples of shape (1, "
                    f"{shape[0]}, {shape[1]})), or rows of X.reshape(len(X), -1) "
                    f"with input_shape=(1, {shape[0]}, {shape[1]})."
                )
            self.classifier_ = None if self.layer else strip_classifier(network)
            backbone = PretrainedBackbone(
                network, self.layer, self.pooling, self.blocks
            )
            prep = self._build_preprocess(X, network, hints)
            shape = tuple(self.input_shape_)
            prep_shape = shape if prep is None else _prep_shape(prep, shape)
            width = backbone.infer_width(prep_shape)
        return self._set_encoder(TransferEncoder(backbone, shape, width, prep=prep))

    def transform(self, X) -> np.ndarray:
        """The network's pooled features of X, computed batch by batch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
(n_samples, *input_shape), or iterable of str
            Samples of the shape seen in ``fit``; strings for a text model.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components_), dtype float32
            The features.
        """
        check_is_fitted(self)
        device = self._device()
        encoder = _on_device(self.encoder_, device)
        if self._is_text():
            return self._map_tokens(
                X, encoder, self.n_components_, device=device, owner=type(self).__name__
            )
        X = self._validate_X(X, reset=False)
        out = self._map_batches(
            X, encoder, self.n_components_, device=device, batch_size=self.batch_size
        )
        _check_finite_output(out, X, type(self).__name__, trained=self._trains_network)
        return out

    def export_encoder(self) -> nn.Module:
        """The network with its preprocessing as a plain torch module.

        Returns
        -------
        torch.nn.Module
            A copy, on the CPU, in eval mode, mapping ``(B, *input_shape_)``
            (or flat rows) to :meth:`transform`'s output; a text model's
            takes the tokenizer's padded ids ``(B, T)``.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from torch import nn
        >>> from sk_replearn import PretrainedTransformer
        >>> X = np.random.default_rng(0).normal(size=(8, 64)).astype(np.float32)
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
        >>> rep = PretrainedTransformer(net, input_shape=(1, 8, 8)).fit(X)
        >>> encoder = rep.export_encoder()
        >>> z = encoder(torch.from_numpy(X)).detach().numpy()
        >>> bool(np.allclose(z, rep.transform(X)))
        True
        """
        check_is_fitted(self)
        module = copy.deepcopy(self.encoder_).cpu().eval()
        return module.requires_grad_(True)

    # -- helpers ------------------------------------------------------------------
    def _set_encoder(self, encoder: TransferEncoder) -> PretrainedTransformer:
        """Keep ``encoder`` frozen, in eval mode and on the CPU, as ``encoder_``.

        On the CPU whatever device a user's network came on, so that the
        estimator's pickle loads on any machine; :meth:`transform` runs a
        copy on ``device`` (:func:`_on_device`).
        """
        self.encoder_ = encoder.cpu().eval().requires_grad_(False)
        self.n_components_ = self._n_features_out = encoder.out_features
        return self

    def _transfer_encoder(self) -> TransferEncoder:
        """A trainable float32 copy of the network (for the fine-tuners).

        In float32 whatever the checkpoint's dtype: fp16 weights trained in
        place lost AdamW's steps (its ``eps=1e-8`` underflows in fp16) and
        the loss turned NaN. The fine-tuner's ``precision`` runs the forward
        pass in bf16 or fp16 over these float32 weights, as mixed precision
        does.
        """
        check_is_fitted(self)
        return self.export_encoder().float()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        if self._is_text():  # strings in, as scikit-learn's text vectorizers
            tags.input_tags.two_d_array = False
            tags.input_tags.string = True
        return tags


# Copies of fitted encoders on a device, by encoder. transform runs the
# network on the device, but encoder_ stays on the CPU where fit put it: moved
# there in place, it would make the estimator's pickle (joblib is how this
# estimator is saved) load only on a machine with that GPU. The copy is made
# once and kept rather than at every call: sending a ResNet-50's 100 MB of
# weights costs tens of milliseconds, which would dominate the transform of a
# small batch (a served Pipeline). Weak keys: a copy lives as long as its
# encoder (a refit or a deleted estimator frees it), and, being outside the
# estimator, it is never pickled or cloned, and transform leaves the
# estimator's __dict__ as it was.
_DEVICE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _on_device(encoder: nn.Module, device: torch.device) -> nn.Module:
    """``encoder`` to run on ``device``, in eval mode.

    The encoder itself where it already is (the CPU, where fit keeps it);
    elsewhere a copy, cached, and made again when a tensor of the encoder was
    replaced, given new data or another dtype, or changed in place since
    (torch counts the in-place changes of a tensor in its ``_version``; not
    those made through ``.data``).
    """
    tensors = [*encoder.parameters(), *encoder.buffers()]
    if all(t.device == device for t in tensors):
        return encoder.eval()
    # .half(), .to(dtype) and p.data = ... keep a tensor's id and version
    stamp = (device, [(id(t), t._version, t.data_ptr(), t.dtype) for t in tensors])
    cached = _DEVICE_COPIES.get(encoder)
    if cached is None or cached[0] != stamp:
        # The tensors are kept with the stamp so that their ids stay theirs.
        cached = (stamp, tensors, copy.deepcopy(encoder).to(device))
        _DEVICE_COPIES[encoder] = cached
    return cached[2].eval()
