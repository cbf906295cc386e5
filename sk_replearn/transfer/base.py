"""What FineTuner and FineTunerRegressor share: pre-training, surgery, training.

The fit of a fine-tuner has four steps, in this order:

1. **pre-train** (or reuse) the representation (:func:`pretrained`);
2. **cut out** its encoder as a trainable copy
   (:func:`~sk_replearn.nn.surgery.encoder_blocks` splits it into blocks);
3. **surgery**: a new head, the top ``reinit_layers`` blocks re-drawn, the
   first ``freeze_layers`` (or all, ``strategy="frozen"``) frozen;
4. **train** the encoder and head on the labels, each block at its own
   learning rate (:func:`param_groups`).
"""

from __future__ import annotations

import copy
import math
import pickle
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from torch import nn

from .._fingerprint import (
    _NOT_FINGERPRINTED,
    _is_sample_dataset,
    _model_repr,
    pretrain_digest,
)
from .._warn import warn_user
from ..base import (
    _check_float32_range,
    flatten_samples,
    float_dtypes,
    is_fitted,
    positive_strides,
    resolve_device,
    seed_from_random_state,
    store_params,
)
from ..checkpoint import check_checkpoint_dir
from ..data import WeightedTargets, sample_of, training_samples
from ..distributed import accelerated_net_class, shared_seed
from ..methods import AutoencoderTransformer
from ..methods.base import _TRANSFORM_BATCH, NeuralRepresentation, _is_int, seeded
from ..nn.build import probe_zeros
from ..nn.heads import CentredLayerNorm, CentredScale
from ..nn.layers import cut_encoder
from ..nn.surgery import Block, TransferEncoder, encoder_blocks, trainable
from ..tokens import TokenDataset, check_sequences
from ..training import SupervisedNet
from ..views import _identity, make_views

__all__ = ["FineTuneModule", "pretrained", "transfer_encoder"]

_HEADS = {"linear", "mlp"}
#: A head's input normalisation, by ``head_norm`` (None: the identity,
#: kept as a module so that the head's layers keep their indices).
_HEAD_NORMS = {
    "layer": CentredLayerNorm,
    "scale": CentredScale,
    None: lambda in_features: nn.Identity(),
}
#: Width of the hidden layer of head="mlp".
_MLP_HIDDEN = 256


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


def _holds_strings(X) -> bool:
    """Whether X is a list, tuple, 1-D array or Series whose first item is a str."""
    if isinstance(X, np.ndarray):
        if X.ndim != 1 or X.dtype.kind not in "UO":
            return False
    elif not (isinstance(X, (list, tuple)) or hasattr(X, "iloc")):
        return False
    if hasattr(X, "columns") or not len(X):  # a DataFrame: scikit-learn's rules
        return False
    first = X.iloc[0] if hasattr(X, "iloc") else X[0]
    return isinstance(first, str)


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


#: Parameters of a representation whose change keeps it fitted.
_KEEP_FITTED = frozenset({*_NOT_FINGERPRINTED, "transform_layer"})


def _same_value(a, b) -> bool:
    """Whether a parameter's value ``b`` is its present value ``a``."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays and the like: compared by identity
        return False


def _names(names) -> str:
    """The first few column names, for a message."""
    names = [str(n) for n in names]
    return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


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
    if _is_int(layer) and layer == -1:
        return encoder
    block = representation._check_transform_layer(len(encoder_blocks(encoder)))
    return cut_encoder(encoder, block)


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


def pretraining_views(representation):
    """The augmentation ``representation`` was pre-trained with, or None.

    The two-view methods keep theirs on their objective (``net_.module_``);
    every other representation (reconstruction, masking, sequences, PCA,
    networks from elsewhere, CMC's split views) has none to reuse.
    """
    objective = getattr(getattr(representation, "net_", None), "module_", None)
    views = getattr(objective, "views", None)
    return None if views is None or views is _identity else views


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


class BaseFineTuner(NeuralRepresentation):
    """Fit logic shared by :class:`FineTuner` and :class:`FineTunerRegressor`."""

    _parameter_constraints: dict = {
        **{
            k: v
            for k, v in NeuralRepresentation._parameter_constraints.items()
            if k not in ("input_shape", "warm_start")
        },
        # The head must learn: lr=0 (a representation's untrained baseline)
        # would leave it as drawn.
        "lr": [Interval(Real, 0, None, closed="neither")],
        "representation": [HasMethods(["fit", "transform"]), None],
        "strategy": [StrOptions({"full", "frozen"})],
        "head": [StrOptions(_HEADS), callable],
        "head_norm": [StrOptions({"auto", "layer", "scale"}), None],
        "freeze_layers": [Interval(Integral, 0, None, closed="left")],
        "reinit_layers": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"all"}),
        ],
        "encoder_lr_scale": [Interval(Real, 0, None, closed="left")],
        "layer_decay": [Interval(Real, 0, 1, closed="right")],
        "views": [StrOptions({"auto"}), callable, None],
    }

    #: Loss of the task; set by the subclass.
    _criterion: type[nn.Module] = nn.MSELoss

    def __init__(
        self,
        representation=None,
        *,
        strategy: str = "full",
        head="linear",
        head_norm: str | None = "auto",
        freeze_layers: int = 0,
        reinit_layers: int | str = 0,
        encoder_lr_scale: float = 0.1,
        layer_decay: float = 1.0,
        views=None,
        max_epochs: int = 50,
        batch_size: int = 64,
        lr: float = 1e-2,
        optimizer="adamw",
        weight_decay: float = 0.01,
        lr_schedule: str | None = "cosine",
        warmup_epochs: int = 0,
        callbacks: list | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        device="auto",
        precision: str = "32",
        compile: bool = False,
        verbose: int = 0,
        random_state=None,
        checkpoint_dir=None,
        transform_layer: int = -1,
        accelerator=None,
    ) -> None:
        store_params(self, locals())

    def __setstate__(self, state: dict) -> None:
        """Unpickle; a fine-tuner pickled before ``head_norm`` has the
        ``"layer"`` it was fitted with (as :func:`~sk_replearn.persistence.load`
        gives a file of then)."""
        state.setdefault("head_norm", "layer")
        super().__setstate__(state)

    def _default_representation(self):
        return AutoencoderTransformer()

    def __sklearn_clone__(self):
        """Clone the parameters, but keep a fitted representation fitted.

        ``sklearn.base.clone`` would return an unfitted copy of a fitted
        representation, so a grid search would pre-train it again on each
        fold. The clone gets a copy of it, fitted, so a grid search over the
        fine-tuner's own parameters pre-trains nothing again; a
        ``set_params`` on the clone (``representation__lr=...``, as a grid
        over the representation's parameters does) replaces the copy (see
        :meth:`set_params`), never the caller's object. An unfitted
        representation is cloned as usual. As ``clone`` does, the clone keeps the output
        container of ``set_output`` and the metadata requests.
        """
        rep = self.representation
        if rep is None or not is_fitted(rep):
            return super().__sklearn_clone__()
        params = {
            k: clone(v, safe=False)
            for k, v in self.get_params(deep=False).items()
            if k != "representation"
        }
        new = type(self)(representation=_own_copy(rep), **params)
        for attr in ("_metadata_request", "_sklearn_output_config"):
            if hasattr(self, attr):
                setattr(new, attr, copy.deepcopy(getattr(self, attr)))
        return new

    def set_params(self, **params):
        """Set the parameters, as scikit-learn's ``set_params`` does.

        A nested parameter of a *fitted* representation
        (``representation__n_components=8``, as a grid over it sets) that
        changes what it learns would leave its fitted weights out of step
        with its parameters, and ``fit`` would reuse them as they are. Such
        a change replaces the representation by an unfitted clone with the
        new values, which ``fit`` pre-trains; the fitted object is left as
        it was. Parameters of how it runs (``verbose``, ``device``, ...)
        and ``transform_layer`` are set on it in place, as usual. With
        ``representation=None``, a nested parameter sets up the default it
        stands for (an unfitted ``AutoencoderTransformer``) with the value.

        Parameters
        ----------
        **params : dict
            Estimator parameters, ``representation__<name>`` for the
            representation's.

        Returns
        -------
        self : estimator
            The estimator.
        """
        nested = {
            k.split("__", 1)[1]: v
            for k, v in params.items()
            if k.startswith("representation__")
        }
        rep = params.get("representation", self.representation)
        replacement = None
        if nested and rep is None:  # the default it stands for, set up
            replacement = self._default_representation()
        elif nested and is_fitted(rep):
            current = rep.get_params(deep=True)
            if any(
                k.rsplit("__", 1)[-1] not in _KEEP_FITTED
                and not _same_value(current.get(k), v)
                for k, v in nested.items()
            ):
                replacement = clone(rep)
        if replacement is not None:
            params = {
                k: v
                for k, v in params.items()
                if k != "representation" and not k.startswith("representation__")
            }
            params["representation"] = replacement.set_params(**nested)
        return super().set_params(**params)

    # -- fit ---------------------------------------------------------------
    def _takes_sequences(self) -> bool:
        """Whether the representation reads strings (or token ids), not arrays."""
        rep = self.representation
        return rep is not None and get_tags(rep).input_tags.string

    def _token_source(self):
        rep = getattr(self, "representation_", None)
        source = getattr(rep, "_token_source", None)
        return None if source is None else source()

    def _validate_Xy(self, X, y, **kwargs):
        """2-D float X (N-D input flattened) and y, as sklearn checks them.

        For a representation of sequences, X is checked as sequences (and
        encoded later by the representation's vocabulary) and y alone by
        scikit-learn's rules.
        """
        if self._takes_sequences():
            _, sequences = check_sequences(X, type(self).__name__)
            y = check_array(
                y,
                ensure_2d=False,
                dtype="numeric" if kwargs.get("y_numeric") else None,
                input_name="y",
            )
            if not kwargs.get("multi_output"):
                y = column_or_1d(y, warn=True)
            check_consistent_length(sequences, y)
            return sequences, y, None
        if _holds_strings(X):
            rep = self.representation
            rep = "the default" if rep is None else type(rep).__name__
            raise TypeError(
                f"X holds strings, but {type(self).__name__}'s representation "
                f"({rep}) reads arrays of numbers. To fine-tune on text, "
                "pass a representation of sequences: "
                "representation=BERTTransformer() or GPTTransformer()."
            )
        if isinstance(X, torch.utils.data.Dataset):
            raise TypeError(
                f"{type(self).__name__} takes X and y as arrays, not a torch "
                "Dataset: stack the samples into X and the labels into y. An "
                "unfitted representation can pre-train on a Dataset: pass it "
                "as pretrain_X."
            )
        X, nd_shape = flatten_samples(X)
        X, y = validate_data(
            self, X, y, dtype=float_dtypes(X), accept_sparse=False, **kwargs
        )
        X = positive_strides(X)
        _check_float32_range(X, type(self).__name__)
        return X, y, nd_shape

    def _check_pretrain_sequences(self, sequences: list, pretrain_X):
        """``pretrain_X`` checked as sequences of X's kind, before pre-training.

        Its errors name ``pretrain_X`` (the representation's own fit would
        name X), and integer ids to pre-train on for string X (or the
        reverse) are refused before the pre-training, not after it. A
        one-pass iterable comes back as the list it held.
        """
        name = type(self).__name__
        kind, checked = check_sequences(pretrain_X, name, "pretrain_X")
        x_kind = "str" if isinstance(sequences[0], str) else "ids"
        if kind != x_kind:
            what = {"str": "strings", "ids": "integer token ids"}
            raise TypeError(
                f"pretrain_X holds {what[kind]} but X holds {what[x_kind]}: the "
                "representation pre-trained on pretrain_X reads X with the "
                "vocabulary it learns there. Pass both as the same kind of "
                "sequences."
            )
        return checked if iter(pretrain_X) is pretrain_X else pretrain_X

    @staticmethod
    def _relative_weights(sample_weight, X) -> np.ndarray | None:
        """``sample_weight`` checked and scaled to a mean of 1; None for
        equal weights (None, or all one value), which are no weights: the
        same loss, computed the unweighted way.
        """
        if sample_weight is None:
            return None
        weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        peak = weight.max()  # positive: scikit-learn refuses all zeros
        if (weight == peak).all():
            return None
        weight = weight / peak  # no overflow in the mean
        return weight / weight.mean()

    @staticmethod
    def _weighted(y_t: torch.Tensor, weight: np.ndarray | None):
        """``y_t`` with its samples' weights (of :meth:`_relative_weights`)."""
        if weight is None:
            return y_t
        return WeightedTargets(y_t, torch.as_tensor(weight, dtype=torch.float32))

    def _fit_encoder(self, X, y_t: torch.Tensor, n_out: int, nd_shape, pretrain_X):
        """Steps 1-4 of the module docstring; ``y_t`` holds encoded targets."""
        if self.strategy == "frozen" and self.reinit_layers not in (0,):
            raise ValueError(
                f"reinit_layers={self.reinit_layers!r} re-draws layers that "
                "strategy='frozen' would then never train; use strategy='full' "
                "for partial transfer."
            )
        if self.checkpoint_dir is not None:  # before a pre-training, not after
            check_checkpoint_dir(self.checkpoint_dir)
        seed = shared_seed(self.accelerator, seed_from_random_state(self.random_state))
        rep = self.representation
        rep = self._default_representation() if rep is None else rep
        X_in = X if nd_shape is None else X.reshape(len(X), *nd_shape)
        if pretrain_X is not None and not is_fitted(rep) and self._takes_sequences():
            pretrain_X = self._check_pretrain_sequences(X, pretrain_X)
        elif pretrain_X is not None and not is_fitted(rep):
            _check_pretrain_width(X_in, pretrain_X)
        self.representation_ = pretrained(rep, X_in, pretrain_X, seed)
        # The checkpoint's fingerprint: a run pre-trained on other data
        # must not be resumed (a fitted representation counts by its state).
        self._pretrain_digest = None if is_fitted(rep) else pretrain_digest(pretrain_X)
        encoder = self._representation_encoder()
        source = self._token_source()  # the vocabulary, for sequences
        if source is None:
            n_rep = getattr(self.representation_, "n_features_in_", X.shape[1])
            if n_rep != X.shape[1]:
                raise ValueError(
                    f"X has {X.shape[1]} features, but the representation was "
                    f"fitted on {n_rep}; fine-tune on data of the pre-training's "
                    "shape."
                )
            if is_fitted(rep) or pretrain_X is not None:  # not fitted on X here
                self._check_representation_columns()
            # The representation's sample shape (a PCA's encoder itself is flat).
            shape = tuple(
                getattr(self.representation_, "input_shape_", encoder.input_shape)
            )
            if nd_shape is not None and tuple(nd_shape) != shape:
                # Same count of values, another layout: training would reread
                # the samples in the representation's shape, and predict on
                # this X would then be refused.
                raise ValueError(
                    f"X has samples of shape {tuple(nd_shape)}, but the "
                    f"representation was fitted on samples of shape {shape}; "
                    f"pass X as (n_samples, *{shape}), or flat as "
                    f"(n_samples, {X.shape[1]})."
                )
            self.input_shape_ = shape
            self._nd_input = nd_shape is not None
        device = self._device()
        with seeded(seed, device):
            module, lrs, blocks = self._surgery(encoder, n_out)
            self._inner_layer(module)  # a bad transform_layer: before training
            frozen = all(lr is None for lr in lrs)
            if source is None:
                # X's float32 precision was checked by a pre-training on X
                warned = not is_fitted(rep) and pretrain_X is None
                owner = None if warned else type(self).__name__
                X_t = training_samples(X, self.input_shape_, owner)
                module.views = None if frozen else self._training_views()
            else:  # padded token ids carrying the targets
                if self.views is not None and not isinstance(self.views, str):
                    raise ValueError(
                        f"views={self.views!r} augments arrays, but the "
                        "representation reads token sequences; use views=None."
                    )
                X_t = source._token_data(X, y_t, owner=type(self).__name__)
            net = self._make_net(module, blocks, lrs, len(X_t), device)
            if frozen:
                # Frozen encoder: encode once, train the head on the features.
                X_t = self._features(
                    module, X if source is not None else X_t, source, device
                )
                module.features_input = True
            try:
                targets = y_t if not isinstance(X_t, TokenDataset) else None
                net.partial_fit(X_t, targets)
            finally:
                module.features_input = False
        self.n_blocks_ = len(blocks)
        self._record_fit(net)
        self._fitted_params = self._model_params()  # what save() checks

    #: How the fine-tuning trains, not what it builds: the blocks' learning
    #: rates (the optimiser's state keeps those it trained with) and the
    #: views, which only the training reads.
    _TRAINING_ONLY = frozenset({"encoder_lr_scale", "layer_decay", "views"})

    def _model_params(self, text=_model_repr) -> dict:
        """What the fine-tuned network and optimiser were built with, as text.

        The fine-tuner's own model parameters (``strategy``, ``head``,
        ``freeze_layers``, ``reinit_layers``, ``optimizer``, where it runs)
        and, as ``representation__<name>``, the representation's: its own
        model parameters and the ``transform_layer`` its encoder was cut
        at. The representation itself counts by its class (None by the
        default it stands for), so that a ``device`` or ``verbose`` set on
        it is no change. ``save`` refuses a change of any of them since
        ``fit`` (see ``_changed_since_fit``): ``load`` rebuilds the network
        from the fine-tuner's parameters and the fitted ``representation_``.
        """
        params = {
            k: v
            for k, v in super()._model_params(text).items()
            if k not in self._TRAINING_ONLY
        }
        rep = self.representation
        rep = self._default_representation() if rep is None else rep
        params["representation"] = type(rep).__name__
        own = rep.get_params(deep=False)
        if hasattr(rep, "_model_params"):
            inner = rep._model_params(text)
        else:  # PCA, K-means: every parameter but those of where it runs
            inner = {k: text(v) for k, v in own.items() if k not in _NOT_FINGERPRINTED}
        if "transform_layer" in own:
            inner["transform_layer"] = text(own["transform_layer"])
        params.update({f"representation__{k}": v for k, v in inner.items()})
        return params

    def _check_representation_columns(self) -> None:
        """X's column names are those the representation was fitted on, in order.

        The encoder reads columns by position: a DataFrame with the same
        columns in another order would give wrong features without an error.
        """
        theirs = getattr(self.representation_, "feature_names_in_", None)
        ours = getattr(self, "feature_names_in_", None)
        if theirs is None and ours is None:
            return
        if theirs is None or ours is None:
            state = (
                "X has feature names, but the representation was fitted without"
                if theirs is None
                else "X has no feature names, but the representation was fitted with"
            )
            warn_user(
                f"{state} them: the encoder reads the columns by position, so "
                "make sure they are in the pre-training's order.",
                UserWarning,
            )
            return
        if list(ours) != list(theirs):
            raise ValueError(
                "X's columns are not those the representation was fitted on, in "
                f"the same order (X: {_names(ours)}; the representation: "
                f"{_names(theirs)}). The encoder reads columns by position: pass "
                "X[representation.feature_names_in_]."
            )

    def _training_views(self):
        """The ``views`` parameter as a batch augmentation, or None."""
        if self.views is None:
            return None
        if isinstance(self.views, str):  # "auto"
            return pretraining_views(self.representation_)
        return make_views(self.views, self.input_shape_)

    def _representation_encoder(self) -> TransferEncoder:
        """The copy of ``representation_``'s encoder this fine-tuner trains.

        Read as ``strategy`` asks (:func:`transfer_encoder`'s ``trained``),
        the same way at ``fit`` and when ``load`` rebuilds the network.
        """
        return transfer_encoder(self.representation_, trained=self.strategy != "frozen")

    def _surgery(self, encoder: TransferEncoder, n_out: int):
        blocks = encoder_blocks(encoder)
        n = len(blocks)
        reinit = n if self.reinit_layers == "all" else int(self.reinit_layers)
        frozen = n if self.strategy == "frozen" else int(self.freeze_layers)
        for name, k in (("reinit_layers", reinit), ("freeze_layers", frozen)):
            if k > n:
                raise ValueError(
                    f"{name}={k} but the encoder has only {n} blocks; use at "
                    f"most {n} (see FineTuner's n_blocks_)."
                )
        if reinit and frozen and frozen + reinit > n:
            raise ValueError(
                f"freeze_layers={frozen} and reinit_layers={reinit} overlap in an "
                f"encoder of {n} blocks: a re-drawn layer must train."
            )
        for block in blocks[n - reinit :]:
            block.reset_parameters()
        base = self.lr * self.encoder_lr_scale
        lrs: list[float | None] = []
        for i in range(n):
            if i < frozen:
                lrs.append(None)
            elif i >= n - reinit:
                lrs.append(self.lr)  # new layers learn at the head's rate
            else:
                lrs.append(base * self.layer_decay ** (n - reinit - 1 - i))
        still = all(lr is None or lr == 0 for lr in lrs)  # no block trains
        norm = self._head_norm(encoder.out_features, all_frozen=still)
        head = build_head(self.head, encoder.out_features, n_out, norm)
        # float32 throughout, whatever torch's default dtype (a caller's
        # torch.set_default_dtype(torch.float64) built a float64 head).
        module = FineTuneModule(encoder, head, blocks[:frozen]).float()
        module.head_out_features = n_out
        return module, lrs, blocks

    def _head_norm(self, in_features: int, *, all_frozen: bool) -> str | None:
        """``head_norm`` resolved: what ``"auto"`` is for this head.

        ``"scale"`` where the encoder does not train (every block frozen,
        or at a learning rate of 0: the head is then the whole model, and
        must see every linear function of the features) or gives fewer
        than 3 features (a per-sample normalisation keeps a
        sign of 2, nothing of 1), else ``"layer"``.
        """
        if not isinstance(self.head, str):
            if self.head_norm not in ("auto", None):  # None: as it is, as given
                raise ValueError(
                    f"head_norm={self.head_norm!r} normalises the input of the "
                    "built-in heads ('linear', 'mlp'), but head is a "
                    f"{type(self.head).__name__}, used as it is: put the "
                    "normalisation in the head module (e.g. "
                    "sk_replearn.nn.CentredScale), or set head_norm='auto'."
                )
            return None
        if self.head_norm != "auto":
            return self.head_norm
        return "scale" if all_frozen or in_features < 3 else "layer"

    def _make_net(self, module, blocks, lrs, n_samples: int, device) -> SupervisedNet:
        net_class = accelerated_net_class(SupervisedNet, self.accelerator)
        net = net_class(
            module,
            criterion=self._criterion,
            optimizer__param_groups=param_groups(module, blocks, lrs),
            **self._engine_kwargs(n_samples, device),
        )
        return net.initialize()

    def _restore_net(self, n_samples: int) -> SupervisedNet:
        """The fitted architecture, rebuilt for ``load``: encoder, head, groups."""
        n_out = len(self.classes_) if hasattr(self, "classes_") else len(self.y_mean_)
        device = self._device()
        with seeded(0, device):
            encoder = self._representation_encoder()
            module, lrs, blocks = self._surgery(encoder, n_out)
            return self._make_net(module, blocks, lrs, n_samples, device)

    def _features(self, module: FineTuneModule, X_t, source, device):
        """The frozen encoder's features of the training samples, ``(n, D)``.

        ``X_t`` is a float tensor, or the raw sequences when ``source`` (the
        sequence representation) encodes them.
        """
        module.to(device).eval()
        if source is not None:
            n_out = module.encoder.out_features
            out = source._map_tokens(
                X_t, module.encoder, n_out, device=device, owner=type(self).__name__
            )
            return torch.from_numpy(out)
        out = []
        with torch.inference_mode():
            for start in range(0, len(X_t), _TRANSFORM_BATCH):
                xb = X_t[start : start + _TRANSFORM_BATCH].to(device)
                out.append(module.encoder(xb).float().cpu())
        return torch.cat(out)

    # -- outputs ---------------------------------------------------------------
    @property
    def _n_features_out(self) -> int:
        return self.net_.module_.encoder.out_features

    def _layer_encoder(self, module: FineTuneModule) -> TransferEncoder:
        """The fine-tuned encoder itself, whose blocks ``n_blocks_`` counts."""
        return module.encoder

    def _transfer_encoder(self) -> TransferEncoder:
        """A trainable copy of the fine-tuned encoder (to fine-tune it again).

        Every weight of the copy trains: the blocks this fit froze are
        frozen again only if the next fine-tuner says so.
        """
        check_is_fitted(self, "net_")
        return trainable(copy.deepcopy(self.net_.module_.encoder).cpu())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self._takes_sequences():  # strings in, as the representation takes
            tags.input_tags.two_d_array = False
            tags.input_tags.string = True
        return tags

    def _outputs(self, X) -> np.ndarray:
        """Head outputs (logits or standardised predictions) of X, batched."""
        check_is_fitted(self, "net_")
        n_out = self.net_.module_.head_out_features
        return self._apply(X, lambda m, xb: m(xb), n_out, sized=True)
