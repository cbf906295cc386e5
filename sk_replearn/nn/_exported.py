"""A program saved by :func:`torch.export.save`, as a trainable module.

:class:`ExportedModule` runs a ``.pt2`` file's program as the network of
a :class:`~sk_replearn.transfer.PretrainedTransformer`: its weights train,
it follows ``to()`` to another device (rebuilding the program there) and
it pickles as the saved program plus its current weights. Public through
:mod:`sk_replearn.nn.pretrained`.
"""

from __future__ import annotations

import io

import torch
from torch import nn

__all__ = ["ExportedModule"]


class ExportedModule(nn.Module):
    """A program saved by :func:`torch.export.save`, as a trainable module.

    The program runs as it was exported: layers that behave differently in
    training (batch norm, dropout) keep the mode they were exported in, so
    :meth:`train` changes nothing inside. Its weights train. It pickles
    (and deep-copies) as the saved program plus its current weights.

    Parameters
    ----------
    program : bytes
        The file's content, as :func:`torch.export.save` wrote it.

    Attributes
    ----------
    graph : torch.nn.Module
        The program's module, which runs it.
    static_batch : int or None
        The one batch size the program takes when it was exported with a
        static batch axis; None when its batch axis is dynamic.

    Examples
    --------
    >>> import io, torch
    >>> from sk_replearn.nn.pretrained import ExportedModule
    >>> lin = torch.nn.Linear(3, 2)
    >>> buf = io.BytesIO()
    >>> torch.export.save(torch.export.export(lin, (torch.randn(4, 3),)), buf)
    >>> m = ExportedModule(buf.getvalue())
    >>> x = torch.randn(4, 3)
    >>> torch.allclose(m(x), lin(x))
    True
    """

    def __init__(self, program: bytes) -> None:
        super().__init__()
        self.program = bytes(program)
        loaded = torch.export.load(io.BytesIO(self.program))
        self.graph = loaded.module()
        self.static_batch = _static_batch(loaded)

    @classmethod
    def from_file(cls, path) -> ExportedModule:
        """Read a ``.pt2`` file written by :func:`torch.export.save`."""
        with open(path, "rb") as f:
            return cls(f.read())

    def forward(self, *args, **kwargs):
        """Run the program."""
        return self.graph(*args, **kwargs)

    def _apply(self, fn, *args, **kwargs):
        """Move and cast as a module does; the program follows to a new device.

        A program records the device of the tensors its graph creates (a
        mask, an ``arange``): moving the weights alone would leave those
        behind, so for a new device the program is rebuilt there (torch >=
        2.4), with the present weights. ``to``, ``cuda`` and ``cpu`` of this
        module or of one holding it all come here.
        """
        here = self._device()
        target = fn(torch.zeros((), device=here)).device
        if target != here:
            self._rebuild(target)
        return super()._apply(fn, *args, **kwargs)

    def _device(self) -> torch.device:
        tensor = next(iter(self.graph.state_dict().values()), None)
        return torch.device("cpu") if tensor is None else tensor.device

    def _rebuild(self, device: torch.device) -> None:
        try:
            from torch.export.passes import move_to_device_pass
        except ImportError:  # torch < 2.4: the weights move, created tensors stay
            return
        weights = {k: v.detach() for k, v in self.graph.state_dict().items()}
        program = torch.export.load(io.BytesIO(self.program))
        self.graph = move_to_device_pass(program, device).module()
        _load_weights(self.graph, {k: v.to(device) for k, v in weights.items()})

    def train(self, mode: bool = True) -> ExportedModule:
        """Set the flag only: the program keeps the mode it was exported in."""
        self.training = mode
        return self

    def __getstate__(self) -> dict:
        weights = {k: v.detach().cpu() for k, v in self.graph.state_dict().items()}
        return {"program": self.program, "weights": weights, "training": self.training}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["program"])
        _load_weights(self.graph, state["weights"])
        self.training = state["training"]

    def __deepcopy__(self, memo) -> ExportedModule:
        new = ExportedModule.__new__(ExportedModule)
        new.__setstate__(self.__getstate__())
        return new.to(self._device())  # on the device of the original


def _load_weights(graph: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load ``weights`` into a program's fresh module, in their own dtypes.

    The fresh module has the dtypes the program was exported in; weights
    cast since (``double()``, or a fine-tuner's float32 copy of a bfloat16
    network) would be rounded to those by ``load_state_dict`` alone, so each
    tensor is cast to its weight's dtype first (in place of its data: a
    parameter stays the same object, and tied weights stay tied).
    """
    for name, tensor in [*graph.named_parameters(), *graph.named_buffers()]:
        if name in weights and tensor.dtype != weights[name].dtype:
            tensor.data = tensor.data.to(weights[name].dtype)
    graph.load_state_dict(weights)


def _static_batch(program) -> int | None:
    """The size of the first input's first axis if the program fixed it."""
    from torch.export.graph_signature import InputKind

    user = [
        spec.arg.name
        for spec in program.graph_signature.input_specs
        if spec.kind == InputKind.USER_INPUT
    ]
    for node in program.graph.nodes:
        if node.op == "placeholder" and user and node.name == user[0]:
            shape = getattr(node.meta.get("val"), "shape", None)
            if shape and type(shape[0]) is int:  # a SymInt when dynamic
                return shape[0]
    return None
