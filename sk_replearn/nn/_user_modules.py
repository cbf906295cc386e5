"""Modules a user passes for an encoder or a decoder (a class with its
keyword arguments, an instance, a factory of no arguments), and the dry
run on zeros that checks what they return.

Read by :func:`~sk_replearn.nn.build_encoder` and
:func:`~sk_replearn.nn.build_decoder`, and by the networks trained
elsewhere (:mod:`sk_replearn.nn.pretrained`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import itertools
from collections.abc import Sequence

import torch
from torch import nn

from .._util import did_you_mean


def _check_kwargs(cls: type, kwargs: dict, required: Sequence[str]) -> None:
    # Name the bad keyword and the valid ones before Python's bare TypeError.
    params = inspect.signature(cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    missing = [r for r in required if r not in params]
    if missing:
        raise TypeError(
            f"{cls.__name__} must accept the keyword argument(s) {missing}; "
            f"it is called as {cls.__name__}({', '.join(f'{r}=...' for r in required)}"
            ", **kwargs)."
        )
    valid = [n for n in params if n not in required and n != "self"]
    for name in kwargs:
        if name in required:
            raise TypeError(f"{name} is set by the builder; do not pass it in kwargs.")
        if name not in params:
            raise TypeError(
                f"{cls.__name__} got an unexpected keyword argument {name!r}; "
                f"valid ones are {valid}.{did_you_mean(name, valid)}"
            )


def _is_module_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, nn.Module)


def call_factory(factory, param: str) -> nn.Module:
    """The module ``factory()`` builds, called with no arguments.

    A factory that needs arguments is named before the call, with how to
    pass them (its signature read, so that a TypeError raised inside the
    factory is not taken for one), and what it returns must be a module.

    Examples
    --------
    >>> from torch import nn
    >>> from sk_replearn.nn._user_modules import call_factory
    >>> call_factory(lambda: nn.Linear(3, 2), "encoder")
    Linear(in_features=3, out_features=2, bias=True)
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # none to read (a builtin): call it and see
        signature = inspect.Signature()
    try:
        signature.bind()
    except TypeError as exc:
        if isinstance(factory, functools.partial):
            func = getattr(factory.func, "__name__", repr(factory.func))
            name = f"functools.partial({func}, ...)"
            fix = "Give the partial every argument it needs."
        elif isinstance(factory, type) or inspect.isfunction(factory):
            name = factory.__name__
            fix = (
                f"Pass a module ({param}={name}(...)) or a factory that takes "
                f"none (functools.partial({name}, ...))."
            )
        else:  # an object with __call__
            name = f"<a {type(factory).__name__} object>"
            fix = "Pass a module, or a callable that takes no arguments."
        raise TypeError(
            f"{param}={name} is called with no arguments to build the network, "
            f"but {exc}. {fix}"
        ) from None
    module = factory()
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"{param}={factory!r} is a factory and must return an nn.Module; it "
            f"returned {type(module).__name__}."
        )
    return module


def _user_module(obj, kwargs: dict, param: str, names: Sequence[str]) -> nn.Module:
    """A copy of a module instance, or what a zero-argument factory returns."""
    if kwargs:
        raise TypeError(
            f"{param} is a module or a factory; {param}_kwargs {sorted(kwargs)} "
            f"cannot be applied to it. Pass an nn.Module subclass instead, or "
            f"build the module with these arguments."
        )
    if isinstance(obj, nn.Module):
        # A copy: fitting trains it, and the caller's module (an estimator
        # parameter, shared by clones in a grid search) must stay as given.
        return copy.deepcopy(obj)
    if callable(obj):
        return call_factory(obj, param)
    raise TypeError(
        f"{param}={obj!r} must be one of {list(names)}, an nn.Module subclass, "
        "an nn.Module or a function of no arguments returning one."
    )


def first_floating(module: nn.Module) -> torch.Tensor | None:
    """The first floating parameter of ``module`` (else buffer), or None.

    Its device and dtype are where and in what precision the module computes.
    """
    tensors = itertools.chain(module.parameters(), module.buffers())
    return next((t for t in tensors if t.is_floating_point()), None)


def probe_zeros(module: nn.Module, *shape: int) -> torch.Tensor:
    """Zeros of ``shape`` for a dry run of ``module``, made where it computes.

    On the device and in the dtype of the module's first floating parameter
    (or buffer, for a module without parameters): a user's module may live
    on CUDA or hold bf16 weights, and a probe on the CPU in float32 would
    fail there for a reason that is not the shape being checked. A module
    without floating tensors takes float32 zeros on the CPU.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn._user_modules import probe_zeros
    >>> probe_zeros(torch.nn.Linear(3, 2).to(torch.bfloat16), 2, 3).dtype
    torch.bfloat16
    >>> probe_zeros(torch.nn.ReLU(), 2, 3).device
    device(type='cpu')
    """
    ref = first_floating(module)
    if ref is None:
        return torch.zeros(shape)
    return torch.zeros(shape, device=ref.device, dtype=ref.dtype)


def _dummy_forward(module: nn.Module, shape: tuple, what: str) -> torch.Tensor:
    """``module`` run on :func:`probe_zeros` of the batch ``shape``, in eval mode."""
    # eval() so BatchNorm running statistics are not touched by the probe.
    was_training = module.training
    x = probe_zeros(module, *shape)
    module.eval()
    try:
        with torch.no_grad():
            out = module(x)
    except Exception as exc:
        raise ValueError(
            f"{what} {type(module).__name__} failed on a zero batch of shape "
            f"{tuple(x.shape)}: {exc}"
        ) from exc
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"{what} {type(module).__name__} must return a tensor, got "
            f"{type(out).__name__}."
        )
    return out
