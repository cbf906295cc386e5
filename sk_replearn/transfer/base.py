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
:class:`FineTuneModule`, :func:`param_groups`). What the fit reads (X and y,
sample weights, ``pretrain_X``, a DataFrame's columns) is checked by the
mixin in ``_inputs.py``; ``clone`` and ``set_params`` around a fitted
representation are the mixin in ``_params.py``.
"""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._fingerprint import _NOT_FINGERPRINTED, _model_repr, pretrain_digest
from .._seeding import seed_from_random_state
from ..base import is_fitted, store_params
from ..checkpoint import check_checkpoint_dir
from ..data import training_samples
from ..data._precision import FLOAT32_MAX
from ..distributed import accelerated_net_class, shared_seed
from ..methods import AutoencoderTransformer
from ..methods.base import _TRANSFORM_BATCH, NeuralRepresentation, seeded
from ..nn.surgery import TransferEncoder, encoder_blocks, trainable
from ..tokens import TokenDataset
from ..training import SupervisedNet
from ..views import make_views
from ._encoder import (
    _check_pretrain_width,
    pretrained,
    pretraining_views,
    transfer_encoder,
)
from ._head import FineTuneModule, build_head, param_groups
from ._inputs import FineTunerInputsMixin
from ._params import FineTunerParamsMixin

__all__ = ["FineTuneModule", "pretrained", "transfer_encoder"]

_HEADS = {"linear", "mlp"}


class BaseFineTuner(FineTunerParamsMixin, FineTunerInputsMixin, NeuralRepresentation):
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

    # -- fit ---------------------------------------------------------------
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
