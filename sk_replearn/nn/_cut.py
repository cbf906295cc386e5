"""Reading a network at a named layer: the sub-module a name gives, the
output a forward hook catches there (the rest of the forward pass is not
run), the tensor in a network's output.

Shared by :class:`~sk_replearn.nn.pretrained.PretrainedBackbone` and
:class:`~sk_replearn.nn.pretrained.HFTextBackbone`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._util import did_you_mean
from ._exported import ExportedModule


class _Stop(Exception):
    """Raised by the cut's forward hook: the rest of the network is not run."""


def _output_of(target: nn.Module, run: Callable[[], object]):
    """What ``target`` returns when ``run()`` calls it, the rest not run.

    A forward hook keeps ``target``'s output and stops the forward pass
    there; None if ``run`` never called ``target``.
    """
    seen: list = []

    def keep(module, inputs, output):
        seen.append(output)
        raise _Stop

    handle = target.register_forward_hook(keep)
    try:
        run()
    except _Stop:
        pass
    finally:
        handle.remove()
    return seen[0] if seen else None


def _as_tensor(out, what: str) -> torch.Tensor:
    """The tensor a network returned (the first of a tuple, or ``.logits``-less
    output objects' first field)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, dict) and out:
        first = next(iter(out.values()))
        if isinstance(first, torch.Tensor):
            return first
    raise ValueError(
        f"{what} returned {type(out).__name__}, not a tensor; cut the network "
        "at a layer whose output is a tensor (layer=...)."
    )


def _names(group) -> list[str]:
    return [group] if isinstance(group, str) else [str(n) for n in group]


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _submodule(model: nn.Module, name: str, param: str) -> nn.Module:
    if isinstance(model, ExportedModule) and param == "layer":  # runs whole
        raise ValueError(
            f"layer={name!r} cannot cut a program of torch.export, which runs "
            "whole (its modules do not run one by one): export the network cut "
            "where you want it (a fitted estimator's export_encoder(), or the "
            "module cut in Python), or pass the network itself as model=."
        )
    modules = dict(model.named_modules())
    if name in modules and name != "":
        return modules[name]
    valid = [n for n in modules if n]
    hint = did_you_mean(str(name), valid)
    shown = valid if len(valid) <= 40 else valid[:20] + ["..."] + valid[-10:]
    raise ValueError(
        f"{param}={name!r} is not a module of {type(model).__name__}.{hint} Its "
        f"modules are: {', '.join(shown)}."
    )
