"""How :class:`~sk_replearn.methods.MAETransformer`'s parameters meet the data.

:class:`MAESettingsMixin` resolves MAE's "auto" parameters by the kind of
sample (:data:`_AUTO`: 1-D signals take the short-signal recipe, images and
tables the digits' settings), the pooling and its regions, and the checked
``mask_ratio``; it cuts the samples into their grid of tokens, checks the
parameters against the data (at least 2 tokens, tokens of 2 values for
``norm_pix_loss``, regions the pooling reads, widths the heads and sin-cos
positions divide) and builds the
:class:`~sk_replearn.objectives.masked.MAEObjective` from the resolved
values.
"""

from __future__ import annotations

import math

from sklearn.utils.validation import check_is_fitted

from ..nn._checks import check_fraction
from ..objectives.masked import MAEObjective, resolve_patch_size, token_shape

#: What "auto" means for each of these parameters, by kind of sample:
#: 1-D signals ``(C, L)`` take the short-signal recipe measured on MNIST-1D
#: (wide and shallow, more hidden; the user guide's table); images and
#: tables the settings measured on the digits.
_AUTO = {
    "mask_ratio": {"signal": 0.85, "other": 0.75},
    "embed_dim": {"signal": 192, "other": 128},
    "depth": {"signal": 2, "other": 3},
    "mlp_ratio": {"signal": 3.0, "other": 4.0},
    "max_epochs": {"signal": 32, "other": 150},
}
#: ``pooling_regions="auto"`` for 1-D signals read by patch means: quarters.
_AUTO_SIGNAL_REGIONS = 4


class MAESettingsMixin:
    """MAETransformer's settings resolved against ``input_shape_``, and checked."""

    def _pooling(self) -> str:
        """``pooling`` as the fit uses it: "auto" resolved by ``n_components``."""
        if self.pooling == "auto":
            return "blocks" if self.n_components is None else "mean"
        return self.pooling

    def _regions(self) -> int:
        """``pooling_regions`` as the fit uses it: "auto" resolved.

        Quarters of a 1-D signal (at most one region per token) when the
        pooling reads patch means and there is no ``n_components`` code;
        one region otherwise. Computed, not stored, as :meth:`_setting`.
        """
        regions = self.pooling_regions
        if not (isinstance(regions, str) and regions == "auto"):
            return int(regions)
        if self.n_components is not None or self._pooling() == "cls":
            return 1
        if not self._is_signal():
            return 1
        _, grid = self._token_grid()
        return min(_AUTO_SIGNAL_REGIONS, math.prod(grid))

    def _setting(self, name: str):
        """A parameter as the fit uses it: "auto" resolved by :data:`_AUTO`.

        Computed from the parameters and ``input_shape_`` (not stored), so
        an estimator saved before these took "auto" loads unchanged.
        """
        value = getattr(self, name)
        if isinstance(value, str) and value == "auto":
            check_is_fitted(self, "input_shape_")  # the kind of sample decides
            kind = "signal" if self._is_signal() else "other"
            return _AUTO[name][kind]
        return value

    def _epochs(self) -> int:
        return self._setting("max_epochs")

    def _check_mask_ratio(self, mask_ratio: float | None) -> float:
        """``mask_ratio`` checked; None is the fit's, ``mask_ratio_``.

        A ``set_params(mask_ratio=...)`` after ``fit`` changes nothing
        until the next fit, as for every other parameter.
        """
        if mask_ratio is None:
            ratio = getattr(self, "mask_ratio_", None)
            ratio = self._setting("mask_ratio") if ratio is None else ratio
        else:
            ratio = mask_ratio
        return check_fraction("mask_ratio", ratio, "the fraction of tokens hidden")

    def _token_grid(self) -> tuple[int, list[int]]:
        """The patch size and the grid of tokens the samples are cut into."""
        shape = tuple(self.input_shape_)
        if len(shape) > 3:
            raise ValueError(
                f"MAETransformer takes samples of shape (d,), (C, L) or (C, H, W); "
                f"got input_shape={shape}. Reshape X or pass input_shape."
            )
        patch_size = resolve_patch_size(self.patch_size, shape)
        return patch_size, [s // patch_size for s in token_shape(shape)[1:]]

    def _check_params_against_data(self, n_samples: int) -> None:
        """Also check the tokenisation and the widths against the data."""
        super()._check_params_against_data(n_samples)
        if self.pooling == "blocks" and self.n_components is not None:
            raise ValueError(
                "pooling='blocks' concatenates the encoder's tokens after every "
                f"block, which n_components={self.n_components} does not "
                "reduce: use pooling='mean' or 'cls' (or 'auto') with "
                "n_components, or n_components=None."
            )
        shape = tuple(self.input_shape_)
        patch_size, grid = self._token_grid()
        cut = token_shape(shape)  # (C, *sizes): the sizes are cut into tokens
        if math.prod(grid) < 2:
            what = f"{shape[0]} feature(s)" if len(shape) == 1 else f"{shape}"
            if math.prod(shape) < 2:
                fix = "MAE needs samples of at least 2 values."
            elif patch_size > 1:
                fix = "Use a smaller patch_size or more features."
            else:  # one value a token already: the sizes themselves are 1
                fix = (
                    f"Even one value a token gives 1: the axes cut into tokens, "
                    f"{cut[1:]}, need 2 positions or more (the first axis, "
                    f"{cut[0]}, holds channels); if these values are one "
                    f"channel's, pass them as input_shape={(1, math.prod(shape))}."
                )
            raise ValueError(
                f"MAETransformer needs at least 2 tokens to hide some and see "
                f"others; samples of {what} with patch_size={patch_size} "
                f"give 1. {fix}"
            )
        if self.norm_pix_loss and patch_size ** len(grid) * cut[0] < 2:
            common = math.gcd(*cut[1:])
            larger = [
                p
                for p in range(patch_size + 1, common + 1)
                if common % p == 0 and math.prod(s // p for s in cut[1:]) >= 2
            ]
            fix = (
                f"or patch_size={larger[0]}"
                if larger
                else "(no larger patch_size leaves 2 tokens of these samples)"
            )
            raise ValueError(
                "norm_pix_loss=True normalises each target token by its own mean "
                "and variance, which needs tokens of at least 2 values; with "
                f"patch_size={patch_size} a token holds 1. Use "
                f"norm_pix_loss=False {fix}."
            )
        regions = self.pooling_regions
        if not isinstance(regions, str) and regions > 1:
            if self.n_components is not None:
                raise ValueError(
                    f"pooling_regions={regions} averages the patch tokens over "
                    f"regions, which the n_components={self.n_components} code "
                    "does not see; use n_components=None or pooling_regions=1."
                )
            if self._pooling() == "cls":
                raise ValueError(
                    f"pooling_regions={regions} averages the patch tokens over "
                    "regions, which pooling='cls' does not read; use "
                    "pooling='auto', 'mean' or 'blocks', or pooling_regions=1."
                )
            if regions > math.prod(grid):
                raise ValueError(
                    f"pooling_regions={regions} is more than the "
                    f"{math.prod(grid)} tokens of a sample (patch_size="
                    f"{patch_size}); use at most that many."
                )
        multiple = 4 if len(grid) == 2 else 2  # sin-cos needs sin and cos per axis
        for width, heads in [
            ("embed_dim", "num_heads"),
            ("decoder_embed_dim", "decoder_num_heads"),
        ]:
            w, h = self._setting(width), getattr(self, heads)
            if w % multiple or w % h:
                raise ValueError(
                    f"{width}={w} must be a multiple of {multiple} (sin-cos "
                    f"positions of {len(grid)}-D tokens) and of {heads}={h}."
                )

    def _build_objective(self) -> MAEObjective:
        return MAEObjective(
            self.input_shape_,
            patch_size=self._token_grid()[0],
            mask_ratio=self._setting("mask_ratio"),
            embed_dim=self._setting("embed_dim"),
            depth=self._setting("depth"),
            num_heads=self.num_heads,
            decoder_embed_dim=self.decoder_embed_dim,
            decoder_depth=self.decoder_depth,
            decoder_num_heads=self.decoder_num_heads,
            mlp_ratio=self._setting("mlp_ratio"),
            norm_pix_loss=self.norm_pix_loss,
            pooling=self._pooling(),
            n_components=self.n_components,
            pooling_regions=self._regions(),
        )
