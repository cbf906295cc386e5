"""The contract every training objective fulfils."""

from __future__ import annotations

import torch
from torch import nn

from ..nn import Standardize

__all__ = ["Objective"]


class Objective(nn.Module):
    """An encoder together with the loss that trains it.

    The training engine (:class:`sk_replearn.training.RepresentationNet`)
    knows nothing about any particular method: it calls :meth:`forward` on a
    batch, hands the result to :meth:`loss`, and later asks :meth:`encode` for
    the representation. A new method is a subclass that fills these three in.

    Every objective standardises its input (buffers set once from the
    training data by :meth:`set_input_scale`), so that a learning rate that
    suits unit-variance data suits raw pixel values too; the scale travels
    with the weights when the model is saved. Images and signals share one
    scalar shift and scale, so their pixels keep their relative brightness;
    a table (``input_shape`` of length 1) gets one per column, since its
    columns come in their own units.

    Parameters
    ----------
    input_shape : tuple of int or None, default=None
        Shape of one sample; ``(d,)`` standardises per column, anything
        else (or None) with scalars.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.base import Objective
    >>> class Identity(Objective):
    ...     def forward(self, x):
    ...         return self.normalize(x)
    ...     def loss(self, output, x):
    ...         return output.pow(2).mean()
    ...     def encode(self, x):
    ...         return self.normalize(x).flatten(1)
    >>> obj = Identity()
    >>> obj.set_input_scale(torch.tensor([1.0, 3.0]))
    >>> obj.encode(torch.tensor([[1.0, 3.0]]))
    tensor([[-0.7071,  0.7071]])
    """

    #: Whether the estimator sets :meth:`set_input_scale` from the training
    #: data (objectives of token ids have nothing to standardise).
    standardizes_input = True

    def __init__(self, input_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        table = input_shape is not None and len(input_shape) == 1
        size = tuple(input_shape) if table else ()
        self.register_buffer("input_shift", torch.zeros(size))
        self.register_buffer("input_scale", torch.ones(size))

    @torch.no_grad()
    def set_input_scale(self, x: torch.Tensor) -> None:
        """Set the standardising shift and scale from a sample of inputs.

        Scalars, or one shift and scale per column of a table; a constant
        column (or a single sample) keeps a scale of 1. Two passes in
        float64 over blocks of about 65,536 values, each copied into one
        reused buffer, so the extra memory is that block: no float64 copy of
        ``x``, and no fresh block per step for the allocator to keep (which
        had held on to about twice the size of ``x``).
        """
        x = x.detach()
        x = x.reshape(len(x), -1)  # (N, d)
        table = self.input_shift.dim() == 1
        rows = max(1, 2**16 // max(x.shape[1], 1))
        blocks = x.split(rows)
        count = len(x) if table else x.numel()
        buf = torch.empty(min(rows, len(x)), x.shape[1], dtype=torch.float64)
        buf = buf.to(x.device)

        def total(center=None) -> torch.Tensor:  # per column (table) or overall
            sums = buf.new_empty(len(blocks), x.shape[1])
            for i, b in enumerate(blocks):
                block = buf[: len(b)].copy_(b)
                if center is not None:
                    block.sub_(center).square_()
                torch.sum(block, 0, out=sums[i])
            out = sums.sum(0)
            return out if table else out.sum()

        mean = total() / count
        if count > 1:
            std = (total(mean) / (count - 1)).sqrt()
        else:
            std = torch.ones_like(mean)
        self.input_shift.copy_(mean)
        self.input_scale.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map raw input to standardised units."""
        return (x - self.input_shift) / self.input_scale

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map standardised units back to the input's units."""
        return x * self.input_scale + self.input_shift

    def forward(self, x: torch.Tensor):  # pragma: no cover - abstract
        """Training-time output for a batch ``x`` of shape ``(B, *input_shape)``."""
        raise NotImplementedError

    def loss(self, output, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Scalar loss from :meth:`forward`'s output and the batch."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """The representation ``(B, n_components)`` of a raw batch."""
        raise NotImplementedError

    def restart_schedule(self, total_steps: int) -> None:
        """Start the objective's own schedules again over ``total_steps`` steps.

        Called when a warm-started ``fit`` trains on; an objective without
        a schedule (the default) has nothing to restart.
        """

    def transfer_encoder(self, input_shape: tuple[int, ...]) -> nn.Module:
        """A trainable copy of the path from raw input to :meth:`encode`'s output.

        Returns a :class:`~sk_replearn.nn.surgery.TransferEncoder` whose
        output equals :meth:`encode`'s, holding copies of the weights, so
        fine-tuning it leaves this objective unchanged.
        """
        raise TypeError(
            f"{type(self).__name__} does not define transfer_encoder(), so its "
            "encoder cannot be fine-tuned."
        )

    def _standardize(self, shape=None) -> nn.Module:
        return Standardize(
            self.input_shift.detach().clone(), self.input_scale.detach().clone(), shape
        )
