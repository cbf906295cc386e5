"""Encoders and decoders from the estimators' parameters: the name registry.

Every encoder maps a float tensor ``(B, *input_shape)`` to ``(B, out_features)``
and carries the int attribute ``out_features``; every decoder maps
``(B, in_features)`` back to ``(B, *input_shape)``. ``input_shape`` is the
shape of ONE sample: ``(d,)`` for tabular data, ``(C, L)`` for 1-D signals,
``(C, H, W)`` for images. :func:`build_encoder` and :func:`build_decoder` turn
the estimators' ``encoder`` / ``decoder`` parameters (a name or an
``nn.Module`` subclass) into modules and check them; :func:`resolve_encoder`
is the one place where ``"auto"`` becomes a name.

Nothing here knows about scikit-learn, skorch or devices.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .._util import did_you_mean
from ._checks import check_input_shape, check_int, is_int
from ._user_modules import (
    _check_kwargs,
    _dummy_forward,
    _is_module_class,
    _user_module,
)
from .conv import RESNET_CHANNELS, CNNEncoder, ConvDecoder, ResNetEncoder
from .mlp import MLPDecoder, MLPEncoder
from .transformer import ViTDecoder, ViTEncoder

__all__ = [
    "AUTO_ENCODERS",
    "DECODER_NAMES",
    "ENCODER_NAMES",
    "auto_encoder_kwargs",
    "build_decoder",
    "build_encoder",
    "resolve_encoder",
]

#: Names the estimators' ``encoder`` parameter accepts (besides an
#: ``nn.Module`` class); see :func:`build_encoder`.
ENCODER_NAMES = ("auto", "mlp", "cnn", "resnet", "vit")
#: Names the ``decoder`` parameter accepts; see :func:`build_decoder`.
DECODER_NAMES = ("auto", "mlp", "cnn", "vit")
#: What ``encoder="auto"`` builds, by the kind of sample: an MLP for tables
#: ``(d,)``, a small ResNet for 1-D signals ``(C, L)``, a CNN for images
#: (a full-resolution one for small images, :func:`auto_encoder_kwargs`).
AUTO_ENCODERS = {1: "mlp", 2: "resnet", 3: "cnn"}
#: The same for an encoder a decoder must mirror (the autoencoder).
AUTO_MIRRORED_ENCODERS = {1: "mlp", 2: "cnn", 3: "cnn"}
#: Images whose sides are all at most this are small (auto_encoder_kwargs).
SMALL_IMAGE_SIDE = 16
#: The CNN ``encoder="auto"`` builds for small images (not mirrored).
SMALL_IMAGE_CNN = {"channels": (16, 32, 64), "strides": (1, 2, 2)}


def resolve_encoder(encoder, input_shape: Sequence[int], *, mirrored: bool = False):
    """The encoder ``"auto"`` stands for; any other value is returned as is.

    This is the one place where ``"auto"`` becomes a name. On 1-D signals it
    is a small ResNet, which keeps the full resolution in its first stage
    and pools globally: on MNIST-1D with the default views, SimCLR's linear
    probe reached 0.92 with it after 60 epochs, against 0.85 (100 epochs)
    and 0.88 (150 epochs) with the strided CNN, whose first convolution
    already halves the 40-step signal (benchmarks/bench_ssl.py). An encoder
    that a decoder mirrors (``mirrored=True``, the autoencoder) stays the
    strided CNN on signals, whose :class:`ConvDecoder` undoes its strides
    exactly.

    Parameters
    ----------
    encoder : str, nn.Module subclass or nn.Module
        The estimator's ``encoder`` parameter.
    input_shape : tuple of int
        Shape of one sample: ``(d,)``, ``(C, L)`` or ``(C, H, W)``.
    mirrored : bool, default=False
        Whether a decoder will mirror the encoder.

    Returns
    -------
    str, nn.Module subclass or nn.Module
        ``encoder``, with ``"auto"`` replaced by a name.

    Examples
    --------
    >>> from sk_replearn.nn import resolve_encoder
    >>> resolve_encoder("auto", (1, 40)), resolve_encoder("auto", (1, 8, 8))
    ('resnet', 'cnn')
    >>> resolve_encoder("auto", (1, 40), mirrored=True)
    'cnn'
    """
    if isinstance(encoder, str) and encoder == "auto":
        table = AUTO_MIRRORED_ENCODERS if mirrored else AUTO_ENCODERS
        return table[len(check_input_shape(input_shape))]
    return encoder


def auto_encoder_kwargs(input_shape: Sequence[int], *, mirrored: bool = False) -> dict:
    """The keyword arguments ``encoder="auto"`` gives its encoder class.

    Empty (the class defaults) except on small images, whose sides are all
    at most 16, for an encoder no decoder mirrors: there :class:`CNNEncoder`
    gets three blocks of 16, 32 and 64 channels, the first of stride 1
    (an 8x8 image goes 8 -> 8 -> 4 -> 2, pooled 2x2: 256 features, as the
    default CNN's). The default CNN halves an 8x8 digit at its first
    convolution, which then sees each stroke at one position in four. On
    scikit-learn's digits (1,347 training images, the same five draws of
    the labels), a frozen ``LogisticRegression()`` on SimCLR with its
    defaults scores 0.872 / 0.928 / 0.955 with 20 / 50 / 100 labels against
    0.844 / 0.924 / 0.951 with the default CNN (``benchmarks/bench_labels.py``).
    When this was adopted, with the methods' former defaults, SwAV went from
    0.797 / 0.899 / 0.923 to 0.811 / 0.906 / 0.941 and DINO from 0.792 /
    0.900 / 0.932 to 0.787 / 0.896 / 0.924, and over two more stratified
    splits SimCLR gained 1.5 to 4 points as well. The fits take longer
    (SimCLR 13 s against 8 s at one thread); a small ResNet reaches 0.907 /
    0.949 / 0.969 with SimCLR but takes 55 s. An estimator's
    ``encoder_kwargs``, when given, replace these rather than add to them.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample: ``(d,)``, ``(C, L)`` or ``(C, H, W)``.
    mirrored : bool, default=False
        Whether a decoder will mirror the encoder.

    Returns
    -------
    dict
        Keyword arguments for the class ``resolve_encoder("auto",
        input_shape, mirrored=mirrored)`` names.

    Examples
    --------
    >>> from sk_replearn.nn import auto_encoder_kwargs
    >>> auto_encoder_kwargs((1, 8, 8))
    {'channels': (16, 32, 64), 'strides': (1, 2, 2)}
    >>> auto_encoder_kwargs((1, 28, 28)), auto_encoder_kwargs((1, 8, 8), mirrored=True)
    ({}, {})
    """
    shape = check_input_shape(input_shape)
    if len(shape) == 3 and not mirrored and max(shape[1:]) <= SMALL_IMAGE_SIDE:
        return dict(SMALL_IMAGE_CNN)
    return {}


_ENCODERS: dict[str, type[nn.Module]] = {
    "mlp": MLPEncoder,
    "cnn": CNNEncoder,
    "resnet": ResNetEncoder,
    "vit": ViTEncoder,
}
_DECODERS: dict[str, type[nn.Module]] = {
    "mlp": MLPDecoder,
    "cnn": ConvDecoder,
    "vit": ViTDecoder,
}


def _check_name(param: str, value: str, names: Sequence[str]) -> str:
    if value not in names:
        raise ValueError(
            f"{param}={value!r} is not a known {param}; use one of "
            f"{list(names)} or an nn.Module subclass.{did_you_mean(value, names)}"
        )
    return value


#: What a builder sets itself, by keyword, and where it comes from.
_SET_BY_THE_ESTIMATOR = {
    "input_shape": "the samples' shape: set the estimator's input_shape instead",
    "in_features": "the width of the code it decodes",
}


def builder_kwargs(kwargs: dict | None, param: str, reserved: Sequence[str]) -> dict:
    """An estimator's ``param`` (``encoder_kwargs``, say) as the keyword
    arguments of a builder, refusing the ``reserved`` ones it sets itself.

    Passed on, such a keyword failed as Python's "build_encoder() got
    multiple values for argument 'input_shape'", naming neither the
    parameter nor the fix.

    Examples
    --------
    >>> from sk_replearn.nn.build import builder_kwargs
    >>> builder_kwargs(None, "encoder_kwargs", ["input_shape"])
    {}
    >>> try:
    ...     builder_kwargs({"input_shape": (4,)}, "encoder_kwargs", ["input_shape"])
    ... except ValueError as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    encoder_kwargs sets input_shape=(4,), which the estimator sets itself (...
    """
    kwargs = dict(kwargs or {})
    for name in reserved:
        if name in kwargs:
            raise ValueError(
                f"{param} sets {name}={kwargs[name]!r}, which the estimator sets "
                f"itself ({_SET_BY_THE_ESTIMATOR[name]}); leave it out of {param}."
            )
    return kwargs


def build_encoder(
    encoder: str | type[nn.Module] | nn.Module,
    input_shape: Sequence[int],
    **kwargs,
) -> nn.Module:
    """Build the encoder named by an estimator's ``encoder`` parameter.

    Parameters
    ----------
    encoder : {"auto", "mlp", "cnn", "resnet", "vit"}, nn.Module subclass, \
nn.Module or callable
        ``"auto"`` is resolved by :func:`resolve_encoder`: ``"mlp"`` for
        tabular ``(d,)`` input, ``"resnet"`` for signals, ``"cnn"`` for
        images (with :func:`auto_encoder_kwargs` on small images when no
        ``kwargs`` are given). A subclass is called as
        ``encoder(input_shape=input_shape, **kwargs)``. A module instance
        (e.g. a torchvision ResNet whose ``fc`` is ``nn.Identity()``) is
        deep-copied, so training never changes the caller's module; any
        other callable is a factory called with no arguments that returns a
        module (e.g.
        ``functools.partial(torchvision.models.resnet18, num_classes=10)``).
    input_shape : tuple of int
        Shape of one sample: ``(d,)``, ``(C, L)`` or ``(C, H, W)``.
    **kwargs
        Keyword arguments of the encoder class, e.g. ``channels=(16, 32)``.

    Returns
    -------
    torch.nn.Module
        Maps ``(B, *input_shape)`` to ``(B, out_features)`` and has an int
        attribute ``out_features``. A user's module (an instance, a factory's
        or a class's) is run once on a zero batch of 2 (in eval mode), which
        gives ``out_features`` where it has none and checks it where it has
        one.

    Raises
    ------
    ValueError
        Unknown name (with a suggestion), an input the encoder cannot handle
        (``"cnn"`` on tabular data, a ``patch_size`` not dividing the
        sizes), a bad value, or a user module that fails or does not return
        ``(B, out_features)``.
    TypeError
        An unexpected keyword argument, or ``encoder`` of the wrong type.

    Examples
    --------
    >>> from sk_replearn.nn import build_encoder
    >>> build_encoder("auto", (64,)).out_features
    128
    >>> build_encoder("cnn", (1, 8, 8), channels=(8, 16)).out_features
    64
    >>> import torch
    >>> class Tiny(torch.nn.Module):
    ...     def __init__(self, input_shape, width=10):
    ...         super().__init__()
    ...         self.fc = torch.nn.Linear(input_shape[-1], width)
    ...     def forward(self, x):
    ...         return self.fc(x)
    >>> build_encoder(Tiny, (5,), width=3).out_features
    3
    >>> mine = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(5, 4))
    >>> enc = build_encoder(mine, (5,))
    >>> enc.out_features, enc is mine
    (4, False)
    >>> build_encoder(lambda: torch.nn.Linear(5, 2), (5,)).out_features
    2
    """
    shape = check_input_shape(input_shape)
    if isinstance(encoder, str):
        given = _check_name("encoder", encoder, ENCODER_NAMES)
        cls = _ENCODERS[resolve_encoder(given, shape)]
        if given == "auto" and not kwargs:
            kwargs = auto_encoder_kwargs(shape)
        _check_kwargs(cls, kwargs, ["input_shape"])
        return cls(input_shape=shape, **kwargs)
    if _is_module_class(encoder):
        _check_kwargs(encoder, kwargs, ["input_shape"])
        module = encoder(input_shape=shape, **kwargs)
    else:
        module = _user_module(encoder, kwargs, "encoder", ENCODER_NAMES)
    # A module given by the user is run once, whether or not it declares
    # out_features (nn.Linear does, for its own input width): a module
    # that does not take these samples fails here, with their shape, rather
    # than inside the training loop.
    name = type(module).__name__
    declared = getattr(module, "out_features", None)
    if declared is not None and not is_int(declared):
        raise ValueError(
            f"encoder {name} has out_features={declared!r}; it must be an int."
        )
    out = _dummy_forward(module, (2, *shape), "encoder")
    if out.dim() != 2 or out.shape[0] != 2:
        raise ValueError(
            f"encoder {name} must map (B, *input_shape) to (B, out_features); "
            f"on input {(2, *shape)} it returned {tuple(out.shape)}."
        )
    if declared is not None and int(declared) != out.shape[1]:
        raise ValueError(
            f"encoder {name} has out_features={declared} but returns "
            f"{out.shape[1]} features a sample (on input {(2, *shape)}); set "
            "out_features to the width its forward returns."
        )
    module.out_features = int(out.shape[1])
    return module


def _mirror(encoder, shape: tuple[int, ...]) -> tuple[str, dict]:
    """The decoder name and kwargs that mirror ``encoder``."""
    if isinstance(encoder, str):
        name = _check_name("encoder", encoder, ENCODER_NAMES)
        name = resolve_encoder(name, shape, mirrored=True)
        if name == "resnet":
            return "cnn", {"channels": RESNET_CHANNELS[::-1]}
        return name, {}  # the decoders' defaults mirror the encoders'
    if isinstance(encoder, MLPEncoder):
        return "mlp", {
            "hidden_sizes": encoder.hidden_sizes[::-1],
            "activation": encoder.activation,
            "norm": encoder.norm,
            "dropout": encoder.dropout,
        }
    if isinstance(encoder, CNNEncoder | ResNetEncoder):
        return "cnn", {
            "channels": encoder.channels[::-1],
            "kernel_size": encoder.kernel_size,
            "activation": encoder.activation,
        }
    if isinstance(encoder, ViTEncoder):
        return "vit", {
            "patch_size": encoder.patch_size,
            "embed_dim": encoder.embed_dim,
            "num_heads": encoder.num_heads,
            "mlp_ratio": encoder.mlp_ratio,
        }
    if isinstance(encoder, type) and issubclass(encoder, tuple(_ENCODERS.values())):
        name = next(n for n, c in _ENCODERS.items() if issubclass(encoder, c))
        return _mirror(name, shape)
    return "mlp", {}  # a user encoder: the MLP decoder handles any shape


def build_decoder(
    decoder: str | type[nn.Module] | nn.Module,
    encoder: str | type[nn.Module] | nn.Module,
    input_shape: Sequence[int],
    in_features: int,
    **kwargs,
) -> nn.Module:
    """Build the decoder named by an estimator's ``decoder`` parameter.

    Parameters
    ----------
    decoder : {"auto", "mlp", "cnn", "vit"}, nn.Module subclass, nn.Module \
or callable
        ``"auto"`` mirrors ``encoder``: ``"mlp"`` -> :class:`MLPDecoder` with
        the hidden sizes reversed; ``"cnn"`` and ``"resnet"`` ->
        :class:`ConvDecoder` with the channels reversed (exact output size,
        odd sizes included); ``"vit"`` -> the light transformer
        :class:`ViTDecoder` with the encoder's patch size and width; a user
        encoder -> :class:`MLPDecoder`. A subclass is called as
        ``decoder(input_shape=input_shape, in_features=in_features,
        **kwargs)``; a module instance is deep-copied; any other callable
        is a factory called with no arguments.
    encoder : str, nn.Module subclass or nn.Module
        The encoder parameter, or better the built encoder module, whose
        actual sizes are then mirrored.
    input_shape : tuple of int
        Shape of one sample to reconstruct.
    in_features : int
        Width of the code the decoder receives.
    **kwargs
        Keyword arguments of the decoder class; with ``"auto"`` they
        override the mirrored ones.

    Returns
    -------
    torch.nn.Module
        Maps ``(B, in_features)`` to ``(B, *input_shape)``.

    Raises
    ------
    ValueError
        Unknown name, an input the decoder cannot handle, a bad value, or a
        user module whose output is not ``(B, *input_shape)``.
    TypeError
        An unexpected keyword argument, or ``decoder`` of the wrong type.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import build_decoder, build_encoder
    >>> enc = build_encoder("cnn", (1, 28, 28))
    >>> dec = build_decoder("auto", enc, (1, 28, 28), in_features=enc.out_features)
    >>> dec(enc(torch.randn(2, 1, 28, 28))).shape
    torch.Size([2, 1, 28, 28])
    """
    shape = check_input_shape(input_shape)
    in_features = check_int("in_features", in_features)
    required = ["input_shape", "in_features"]
    if isinstance(decoder, str):
        name = _check_name("decoder", decoder, DECODER_NAMES)
        if name == "auto":
            name, mirrored = _mirror(encoder, shape)
            kwargs = {**mirrored, **kwargs}
        cls = _DECODERS[name]
        _check_kwargs(cls, kwargs, required)
        return cls(input_shape=shape, in_features=in_features, **kwargs)
    if _is_module_class(decoder):
        _check_kwargs(decoder, kwargs, required)
        module = decoder(input_shape=shape, in_features=in_features, **kwargs)
    else:
        module = _user_module(decoder, kwargs, "decoder", DECODER_NAMES)
    out = _dummy_forward(module, (2, in_features), "decoder")
    if tuple(out.shape) != (2, *shape):
        raise ValueError(
            f"decoder {type(module).__name__} must map (B, in_features) to "
            f"(B, *input_shape); on input (2, {in_features}) it returned "
            f"{tuple(out.shape)}, expected {(2, *shape)}."
        )
    return module
