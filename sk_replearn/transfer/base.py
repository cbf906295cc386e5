"""What FineTuner and FineTunerRegressor share: pre-training, surgery, training.

The fit of a fine-tuner has four steps, in this order:

1. **pre-train** (or reuse) the representation (:func:`pretrained`);
2. **cut out** its encoder as a trainable copy
   (:func:`~sk_replearn.nn.surgery.encoder_blocks` splits it into blocks);
3. **surgery**: a new head, the top ``reinit_layers`` blocks re-drawn, the
   first ``freeze_layers`` (or all, ``strategy="frozen"``) frozen;
4. **train** the encoder and head on the labels, each block at its own
   learning rate (:func:`param_groups`).

:class:`BaseFineTuner` runs them; its building blocks live in ``_encoder.py``
(steps 1 and 2: :func:`pretrained`, :func:`transfer_encoder`) and
``_head.py`` (the network steps 3 and 4 make and train: :func:`build_head`,
:class:`FineTuneModule`, :func:`param_groups`).
"""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import clone
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
    _model_repr,
    pretrain_digest,
)
from .._seeding import seed_from_random_state
from .._validation import (
    _check_float32_range,
    _holds_integers,
    flatten_samples,
    float_dtypes,
    positive_strides,
)
from .._warn import warn_user
from ..base import is_fitted, store_params
from ..checkpoint import check_checkpoint_dir
from ..data import WeightedTargets, check_float32_precision, training_samples
from ..data._precision import FLOAT32_MAX
from ..distributed import accelerated_net_class, shared_seed
from ..methods import AutoencoderTransformer
from ..methods.base import (
    _TRANSFORM_BATCH,
    NeuralRepresentation,
    seeded,
)
from ..nn.surgery import TransferEncoder, encoder_blocks, trainable
from ..tokens import TokenDataset, check_sequences
from ..training import SupervisedNet
from ..views import make_views
from ._encoder import (
    _check_pretrain_width,
    _own_copy,
    pretrained,
    pretraining_views,
    transfer_encoder,
)
from ._head import FineTuneModule, build_head, param_groups

__all__ = ["FineTuneModule", "pretrained", "transfer_encoder"]

_HEADS = {"linear", "mlp"}


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


def _check_numeric_targets(y, name: str) -> None:
    """Refuse, naming y, targets that are not numbers (class labels, say).

    numpy's own message ("could not convert string to float") names neither
    y nor the fix; the first value ``float`` refuses is quoted. ``y=None``
    and ``None`` entries (read as NaN, as numpy reads them) are left to
    scikit-learn's checks, whose messages name them.
    """
    if y is None:
        return
    values = np.asarray(y)
    if values.dtype.kind not in "USO":
        return
    for value in values.ravel().tolist():
        if value is None:
            continue
        try:
            float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"y holds values that are not numbers ({value!r} among them); "
                f"{name} predicts numbers: pass numeric targets, or use "
                "FineTuner to predict class labels."
            ) from exc


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


class BaseFineTuner(NeuralRepresentation):
    """Fit logic shared by :class:`FineTuner` and :class:`FineTunerRegressor`."""

    _parameter_constraints: dict = {
        **{
            k: v
            for k, v in NeuralRepresentation._parameter_constraints.items()
            if k not in ("input_shape", "warm_start", "num_workers")
        },
        # The head must learn: lr=0 (a representation's untrained baseline)
        # would leave it as drawn.
        "lr": [Interval(Real, 0, FLOAT32_MAX, closed="right")],
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
        if kwargs.get("y_numeric"):
            _check_numeric_targets(y, type(self).__name__)
        if self._takes_sequences():
            _, sequences = check_sequences(X, type(self).__name__)
            y_dtype = None
            if kwargs.get("y_numeric"):  # numbers as text read as on arrays
                text = np.asarray(y).dtype.kind in "US"
                y_dtype = np.float64 if text else "numeric"
            y = check_array(y, ensure_2d=False, dtype=y_dtype, input_name="y")
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
        if _holds_integers(X):  # rounded by the cast to float32 below
            check_float32_precision(X, type(self).__name__)
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
                rep_shape = getattr(self.representation_, "input_shape_", None)
                if nd_shape is not None and rep_shape is not None:  # images...
                    what = (
                        f"X has samples of shape {tuple(nd_shape)}, but the "
                        "representation was fitted on samples of shape "
                        f"{tuple(rep_shape)}"
                    )
                else:
                    what = (
                        f"X has {X.shape[1]} features, but the representation "
                        f"was fitted on {n_rep}"
                    )
                raise ValueError(
                    f"{what}; fine-tune on data of the pre-training's shape."
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
        base = self.lr * self.encoder_lr_scale
        if base > FLOAT32_MAX:  # each alone is in range (their constraints)
            raise ValueError(
                f"lr * encoder_lr_scale = {base:.3g} (lr={self.lr}, "
                f"encoder_lr_scale={self.encoder_lr_scale}) is past the largest "
                f"float32 ({FLOAT32_MAX:.3g}), so the encoder's learning rate "
                "cannot reach its weights; lower encoder_lr_scale or lr."
            )
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
