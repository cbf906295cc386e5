"""Which block of the encoder ``transform`` returns, and the encoder itself.

:class:`TransformLayerMixin` gives a neural estimator its
``transform_layer`` (the encoding at an inner block of the encoder, run
by a :class:`~sk_replearn.nn.surgery.TransferEncoder` copy of it, with no
refit) and :meth:`~TransformLayerMixin.export_encoder` (the trained
encoder, up to that block, as a plain torch module).
"""

from __future__ import annotations

import copy

from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._util import is_int
from ..nn.layers import LayerEncoder, block_features, block_widths
from ..nn.surgery import TransferEncoder, trainable
from ..objectives.base import Objective


class TransformLayerMixin:
    """``transform_layer`` and ``export_encoder`` of a neural estimator.

    Mixed into :class:`~sk_replearn.methods.base.NeuralRepresentation`: it
    reads the fitted objective (``_module()``), ``_n_features_out`` and
    ``input_shape_``; a fine-tuner gives its own ``_layer_encoder``.
    """

    def _layer_encoding(self, module: Objective):
        """``fn(module, batch)`` and its width at ``transform_layer``.

        The default, -1, is ``module.encode`` itself. Another block runs a
        :class:`~sk_replearn.nn.surgery.TransferEncoder` of ``module``
        (:meth:`_layer_encoder`) up to that block; nothing is stored, so
        ``set_params(transform_layer=...)`` after ``fit`` needs no refit.
        """
        inner = self._inner_layer(module)
        if inner is None:
            return (lambda m, xb: m.encode(xb)), self._n_features_out
        encoder, layer, width = inner

        def encode(m, xb):
            return block_features(encoder, xb, layer)

        encode.runs = encoder  # the network a probe of its memory must watch
        return encode, width

    def _inner_layer(self, module) -> tuple[TransferEncoder, int, int] | None:
        """The encoder, block index and width of an inner ``transform_layer``.

        None for the last block, which ``module.encode`` gives (bit for
        bit as before the parameter existed); a ValueError for a value
        that is no block.
        """
        if self.transform_layer == -1 and is_int(self.transform_layer):
            return None
        encoder = self._layer_encoder(module)
        widths = block_widths(encoder)
        layer = self._check_transform_layer(len(widths))
        return None if layer == len(widths) - 1 else (encoder, layer, widths[layer])

    def _layer_encoder(self, module: Objective) -> TransferEncoder:
        """The encoder whose blocks ``transform_layer`` counts, in eval mode.

        A copy of the weights (made per call, so that it never goes stale)
        on the module's device; the fine-tuners use their own encoder.
        """
        make = module.transfer_encoder  # (through a torch.compile wrapper too)
        if getattr(make, "__func__", None) is Objective.transfer_encoder:
            raise ValueError(
                f"transform_layer={self.transform_layer!r}: "
                f"{type(self).__name__} cannot return an inner layer, as its "
                f"objective {type(module).__name__} defines no "
                "transfer_encoder(); use transform_layer=-1."
            )
        return make(getattr(self, "input_shape_", None)).eval()

    def _check_transform_layer(self, n_blocks: int) -> int:
        """``transform_layer`` as an index in ``[0, n_blocks)``, or a ValueError."""
        layer = self.transform_layer
        if not is_int(layer) or not -n_blocks <= layer < n_blocks:
            raise ValueError(
                f"transform_layer={layer!r} is not a block of the encoder of "
                f"{type(self).__name__}, which has {n_blocks} "
                f"block{'s' if n_blocks != 1 else ''} (those "
                "that freeze_layers counts); pass an int from "
                f"{-n_blocks} to {n_blocks - 1}, -1 (the default) being the "
                "last block, the encoder's output."
            )
        return int(layer) % n_blocks

    def _transform_width(self) -> int:
        return self._layer_encoding(self._module())[1]

    def _transfer_encoder(self, **options):
        """A CPU copy of the encoder, up to the representation's output.

        ``options`` go to the objective's ``transfer_encoder`` (MAE's
        ``pooling``).
        """
        check_is_fitted(self, "net_")
        shape = tuple(self.input_shape_)
        return self.net_.module_.transfer_encoder(shape, **options).cpu()

    def export_encoder(self) -> nn.Module:
        """The trained encoder as a plain torch module: raw input to ``transform``.

        The module holds everything between a raw sample and the
        representation (the input standardisation, the network, the
        bottleneck; the blocks up to ``transform_layer``), so that it runs
        with torch alone: save it with ``torch.save(module.state_dict(),
        ...)``, or as a program with :func:`torch.export.export` and
        :func:`torch.export.save`, which a process without sk_replearn can
        load with :func:`torch.export.load`; or give that file to
        :class:`~sk_replearn.PretrainedTransformer` to fine-tune it on
        another data set.

        Returns
        -------
        torch.nn.Module
            A copy on the CPU, in eval mode, with trainable weights. It maps
            ``(B, *input_shape_)`` (or flat rows ``(B, n_features_in_)``) to
            ``(B, width)``, equal to :meth:`transform`'s output; a sequence
            model's takes the padded token ids ``(B, T)`` of its vocabulary.
            Its ``out_features`` attribute is the width. Its weights are
            float32, and so must its input be (a sequence model's ids
            excepted): numpy's float64 arrays go in as
            ``torch.from_numpy(X).float()`` (torch refuses a float64 input
            with a dtype error), where ``transform`` converts them itself.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from sk_replearn import AutoencoderTransformer
        >>> X = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
        >>> ae = AutoencoderTransformer(2, max_epochs=1, random_state=0).fit(X)
        >>> encoder = ae.export_encoder()
        >>> z = encoder(torch.from_numpy(X)).detach().numpy()
        >>> bool(np.allclose(z, ae.transform(X), atol=1e-6))
        True
        """
        check_is_fitted(self)
        inner = self._inner_layer(self._module())
        if inner is None:
            encoder = self._transfer_encoder()  # a copy already
        else:
            encoder = LayerEncoder(copy.deepcopy(inner[0]), inner[1])
        # A fine-tuner's frozen blocks come back trainable, as documented.
        return trainable(encoder.cpu().eval())
