"""Getting the pre-trained encoder a fine-tuner starts from.

:func:`pretrained` gives the fitted representation to transfer from (a copy
of a fitted one, :func:`_own_copy`, or a clone pre-trained on
``pretrain_X``, whose sample shape :func:`_check_pretrain_width` checks
first); :func:`transfer_encoder` cuts its encoder out as a trainable copy up
to its ``transform_layer``; :func:`pretraining_views` finds the augmentation
it was pre-trained with.
"""

from __future__ import annotations

import copy
import math
import pickle

from sklearn.base import clone, is_classifier, is_regressor

from .._device import resolve_device
from .._fingerprint import _is_sample_dataset
from .._util import is_int
from .._warn import warn_user
from ..base import is_fitted
from ..data import sample_of
from ..nn.layers import cut_encoder
from ..nn.surgery import TransferEncoder, encoder_blocks
from ..views import _identity


def pretrained(representation, X, pretrain_X, seed: int):
    """The fitted representation to transfer from.

    A fitted ``representation`` is copied (the fine-tuner owns what it
    reads, whatever happens to the caller's object later); an unfitted one
    is cloned and fitted on ``pretrain_X`` if given, else on
    ``X``, without labels. A clone whose ``random_state`` is None gets
    ``seed``, so that the whole fine-tuner is reproducible.
    """
    if is_fitted(representation):
        if pretrain_X is not None:
            warn_user(
                "pretrain_X is not used: the representation is already fitted, "
                "so nothing is pre-trained. Pass an unfitted representation to "
                "pre-train it on pretrain_X, or leave pretrain_X out.",
                UserWarning,
            )
        return _own_copy(representation)
    if is_classifier(representation) or is_regressor(representation):
        raise TypeError(
            f"representation={type(representation).__name__}(...) is unfitted, "
            "and it learns from labels, which pre-training has none of: pass "
            "it fitted, or an unsupervised representation to pre-train."
        )
    rep = clone(representation)
    params = rep.get_params()
    if "random_state" in params and rep.random_state is None:
        rep.set_params(random_state=seed)
    if "device" in params:
        try:  # before the pre-training, naming whose device it is
            resolve_device(rep.device)
        except ValueError as exc:
            raise ValueError(
                f"The representation to pre-train cannot run: {exc} Set its "
                "device with representation__device (the fine-tuner's own "
                "device is where the fine-tuning runs)."
            ) from None
    return rep.fit(X if pretrain_X is None else pretrain_X)


def _check_pretrain_width(X, pretrain_X) -> None:
    """Refuse, before pre-training, a ``pretrain_X`` of other samples than X's.

    Checked where ``pretrain_X`` has a ``shape`` (arrays, memmaps, tensors,
    DataFrames) and on a torch Dataset's first item; the representation's
    own fit validates the rest. Without it, the mismatch was found after
    the whole pre-training.
    """
    if _is_sample_dataset(pretrain_X):
        if len(pretrain_X) == 0:
            return  # the representation's fit names an empty Dataset
        shape = (1, *sample_of(pretrain_X[0]).shape)
    else:
        shape = getattr(pretrain_X, "shape", None)
    if shape is None or len(shape) < 2:
        return
    theirs, ours = tuple(shape[1:]), tuple(X.shape[1:])
    if math.prod(theirs) != math.prod(ours):
        raise ValueError(
            f"pretrain_X has samples of shape {theirs}, but X has samples of "
            f"shape {ours}: the representation pre-trained on pretrain_X "
            "could not read X. Pre-train on samples like X's."
        )


def _own_copy(representation):
    """A deep copy of a fitted representation, for a fine-tuner to own.

    Sharing the caller's object would let a later ``fit`` or ``set_params``
    of it change the fine-tuner (a refitted BERT's vocabulary changes what
    the fine-tuner reads). An object that cannot be copied (one holding an
    accelerator) is shared.
    """
    try:
        return copy.deepcopy(representation)
    except (TypeError, RuntimeError, pickle.PicklingError, AttributeError):
        return representation


def transfer_encoder(representation, *, trained: bool = False) -> TransferEncoder:
    """A trainable copy of a fitted representation's encoder, up to its layer.

    Parameters
    ----------
    representation : fitted estimator
        A neural sk_replearn estimator or a :class:`~sk_replearn.PCATransformer`.
    trained : bool, default=False
        Whether the copy is for training (a fine-tuner's ``strategy="full"``)
        rather than for fixed features. A representation may read its
        encoder otherwise for training: :class:`~sk_replearn.MAETransformer`
        with ``pooling="auto"`` gives the last block's patch mean, where its
        ``transform`` concatenates every block.

    Returns
    -------
    TransferEncoder
        The encoder whose output is ``representation.transform``'s (up to
        float rounding; but see ``trained``): cut after the block
        ``transform_layer`` names,
        the blocks above dropped (network surgery,
        :func:`~sk_replearn.nn.layers.cut_encoder`); the whole encoder
        for the default ``transform_layer=-1``.

    Raises
    ------
    TypeError
        For a representation with no differentiable encoder.
    ValueError
        For a ``transform_layer`` that is no block of the encoder.
    """
    make = getattr(representation, "_transfer_encoder", None)
    if make is None:
        raise TypeError(
            f"representation={type(representation).__name__} cannot be "
            "fine-tuned: pass an sk_replearn neural estimator or PCATransformer."
        )
    if trained:
        make = getattr(representation, "_fine_tuning_encoder", make)
    encoder = make()
    layer = getattr(representation, "transform_layer", -1)
    if is_int(layer) and layer == -1:
        return encoder
    block = representation._check_transform_layer(len(encoder_blocks(encoder)))
    return cut_encoder(encoder, block)


def pretraining_views(representation):
    """The augmentation ``representation`` was pre-trained with, or None.

    The two-view methods keep theirs on their objective (``net_.module_``);
    every other representation (reconstruction, masking, sequences, PCA,
    networks from elsewhere, CMC's split views) has none to reuse.
    """
    objective = getattr(getattr(representation, "net_", None), "module_", None)
    views = getattr(objective, "views", None)
    return None if views is None or views is _identity else views
