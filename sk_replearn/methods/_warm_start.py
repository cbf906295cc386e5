"""What a neural estimator was fitted with, and continuing it: warm starts.

:class:`WarmStartMixin` records the parameters the fitted model was built
and trained with (``_model_params``, which ``save`` compares too), tells
which ``set_params`` changed since (``_changed_since_fit``), refuses a warm
start the fitted network, objective or optimiser cannot follow, and sets
the fitted net up to continue; :func:`_partial_fit_or_restore` trains it,
putting the model back if that raises.
"""

from __future__ import annotations

import copy

import torch

from .._fingerprint import _model_repr
from ..training import trained_module
from ._engine import OPTIMIZERS

__all__ = ["WarmStartMixin"]


class WarmStartMixin:
    """Warm starts of :class:`~sk_replearn.methods.base.NeuralRepresentation`."""

    #: Parameters a warm start applies to the network it continues (the
    #: engine's: epochs, learning rate and schedule, batches, early
    #: stopping, callbacks, seed) or that need no refit (transform_layer).
    _WARM_APPLIED = frozenset(
        {
            "max_epochs",
            "batch_size",
            "num_workers",
            "lr",
            "weight_decay",
            "lr_schedule",
            "warmup_epochs",
            "callbacks",
            "early_stopping",
            "validation_fraction",
            "n_iter_no_change",
            "verbose",
            "checkpoint_dir",
            "random_state",
            "warm_start",
            "transform_layer",
        }
    )
    #: Parameters a subclass checks itself in a warm start (``optimizer``
    #: is checked by :meth:`_check_warm_start`); ``save`` compares them too.
    _WARM_OWN_CHECK: frozenset = frozenset()

    def _model_params(self, text=_model_repr) -> dict:
        """What the fitted model was built and trained with, each value as
        ``text`` reads it (see :func:`~sk_replearn._fingerprint._model_repr`).

        The optimiser counts (its saved state is its class's) by its name
        where it has one: ``torch.optim.AdamW`` is ``"adamw"``.
        """
        skip = self._WARM_APPLIED  # _WARM_OWN_CHECK's too: save compares them
        params = self.get_params(deep=False)
        if "optimizer" in params:
            named = {cls: name for name, cls in OPTIMIZERS.items()}
            params["optimizer"] = named.get(params["optimizer"], params["optimizer"])
        return {k: text(v) for k, v in params.items() if k not in skip}

    def _changed_since_fit(self) -> list[tuple[str, str, str]]:
        """``(name, fitted value, present value)``, as text, of each model
        parameter that ``set_params`` changed since ``fit`` (none for an
        unfitted estimator, or one fitted by a version that did not record
        them).

        Values are compared as :func:`~sk_replearn._fingerprint._model_repr`
        reads them: equal settings of other types (``np.int64(4)`` and
        ``4``, a list and a tuple) and a function or object unpickled in
        another process are no change. A parameter the fit did not record
        (one added since) is not compared.
        """
        fitted = getattr(self, "_fitted_params", None)
        if fitted is None:
            return []
        now = self._model_params()
        changed = [k for k in sorted(fitted.keys() & now.keys()) if fitted[k] != now[k]]
        if changed:  # fitted by a version that recorded plain reprs?
            plain = self._model_params(repr)
            changed = [k for k in changed if fitted[k] != plain[k]]
        return [(k, fitted[k], now[k]) for k in changed]

    def _check_warm_params(self) -> None:
        """Refuse a warm start after a change it would not apply.

        A warm start continues the fitted network and objective: a changed
        ``temperature``, ``views``, ``momentum``, width, ``device`` or
        ``precision`` would be reported by ``get_params`` but not used.
        (A changed ``optimizer`` is refused by :meth:`_check_warm_start`.)
        """
        own = self._WARM_OWN_CHECK | {"optimizer"}  # refused with their own words
        changed = [c for c in self._changed_since_fit() if c[0] not in own]
        if changed:
            was = ", ".join(f"{k}={fitted}" for k, fitted, _ in changed[:4])
            raise ValueError(
                "warm_start=True continues the fitted model, which these changed "
                f"parameters would not reach (it was fitted with {was}"
                f"{', ...' if len(changed) > 4 else ''}); only the training "
                "settings (max_epochs, lr, batch_size, the schedule, early "
                "stopping, callbacks) apply to a warm start. Set them back, or "
                "warm_start=False to fit anew."
            )

    def _check_warm_start(self, net) -> None:
        """Refuse a warm start the fitted network or optimiser cannot follow.

        ``warm_start=True`` continues the same network with the same
        optimiser: parameters that would build another network (other
        shapes: ``n_components``, widths, ...) or choose another optimiser
        need a new fit.
        """
        optimizer = (
            OPTIMIZERS[self.optimizer]
            if isinstance(self.optimizer, str)
            else self.optimizer
        )
        if net.optimizer is not optimizer:  # the class (an accelerator wraps it)
            raise ValueError(
                f"warm_start=True continues the fitted {net.optimizer.__name__} "
                f"optimiser, but optimizer={self.optimizer!r} now; set "
                "warm_start=False to train anew."
            )
        with torch.random.fork_rng(devices=[]):  # draws nothing of the fit's
            fresh = self._build_objective().state_dict()
        fitted = trained_module(net).state_dict()
        changed = [
            k
            for k in sorted({*fresh, *fitted})
            if k not in fresh or k not in fitted or fresh[k].shape != fitted[k].shape
        ]
        if changed:
            raise ValueError(
                "warm_start=True continues the fitted network, but the parameters "
                f"now build one of other shapes ({', '.join(changed[:4])}"
                f"{', ...' if len(changed) > 4 else ''}): a parameter such as "
                "n_components or a width changed since the last fit. Set "
                "warm_start=False to train a new network."
            )

    def _continue_net(self, net, n_samples: int, device) -> None:
        """Set up the fitted ``net`` for a warm start on ``n_samples``.

        The engine parameters set since the last fit apply to this one (the
        optimiser keeps its state); the learning-rate and momentum schedules
        span it.
        """
        self._check_warm_start(net)
        engine = self._engine_kwargs(n_samples, device)
        net.set_params(
            **{
                k: engine[k]
                for k in (
                    "max_epochs",
                    "lr",
                    "optimizer__weight_decay",
                    "batch_size",
                    "train_split",
                    "verbose",
                )
            }
        )
        # Not set_params(callbacks=...): skorch's builds the callbacks from
        # the old list first, which initialised again (and so emptied) a
        # callback the user had since taken out.
        net.callbacks = engine["callbacks"]
        net.initialize_callbacks()
        net.module_.restart_schedule(self._total_steps)


def _partial_fit_or_restore(net, X_t) -> None:
    """A warm start's training; if it raises, the model before.

    The fitted model must survive a continuation that diverges or fails
    (a non-finite loss, a user's callback, memory): its weights, optimiser
    state and history are put back before the error propagates, as
    :func:`~sk_replearn.base.fit_context` puts back the estimator's
    attributes.
    """
    module = copy.deepcopy(net.module_.state_dict())
    optimizer = copy.deepcopy(net.optimizer_.state_dict())
    n_epochs = len(net.history)
    try:
        net.partial_fit(X_t, None)
    except Exception:
        net.module_.load_state_dict(module)
        net.optimizer_.load_state_dict(optimizer)
        del net.history[n_epochs:]
        raise
