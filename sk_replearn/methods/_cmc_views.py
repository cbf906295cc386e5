"""The views of :class:`~sk_replearn.methods.CMCTransformer`, from its parameters.

Module functions that turn ``views=`` and ``X`` into groups of columns: a
list of per-view arrays joined side by side and the consecutive groups of
its arrays, the two halves of ``views="auto"``, the user's groups (indices,
boolean masks or column names) checked and sorted, and the shape of the box
of ``input_shape`` a view's columns form; and the mixin through which the
estimator reads X and resolves its views in ``fit`` (``views_``,
``view_shapes_``).
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import flatten_samples


def _join_arrays(X, *, fitting: bool):
    """``X`` as it is, or a list of per-view arrays joined side by side.

    Returns ``(X, None)``, or ``(joined, (widths, shapes))`` with each
    array's number of columns and its sample shape (None for a 2-D array).
    A list read as rows is checked by :func:`_check_rows`, which warns in
    ``fit`` only (``fitting``), as the input layout warnings are.
    """
    if not (
        isinstance(X, (list, tuple))
        and X
        and all(getattr(a, "ndim", 0) >= 2 for a in X)
    ):
        _check_rows(X, warn=fitting)
        return X, None  # a 2-D array-like (a list of rows included)
    if len(X) < 2:
        raise ValueError(
            "X is a list of 1 array; CMC needs at least 2 views, one array each "
            "(n_samples, ...), or a 2-D X with views=<groups of columns>."
        )
    flat = [flatten_samples(a) for a in X]
    arrays = [np.asarray(a).reshape(len(a), -1) for a, _ in flat]
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        raise ValueError(
            "X is a list of arrays, one per view, which must hold the same "
            f"samples; got {[len(a) for a in arrays]} rows."
        )
    widths = [a.shape[1] for a in arrays]
    return np.hstack(arrays), (widths, [shape for _, shape in flat])


def _check_rows(X, *, warn: bool) -> None:
    """Refuse or warn of a list that is read as rows but looks like views.

    A list mixing arrays of two or more dimensions with others is neither
    one array per view nor rows of one X: refused. A list of 1-D arrays,
    or of nested lists of rows, is read as scikit-learn reads a list (its
    items are samples), so ``[view_a, view_b]`` of that kind would be two
    samples: warned of where there are fewer items than values in the
    first, the one case a sample list rarely is (when ``warn``: in ``fit``,
    not again when the collapse check or ``transform`` reads X).
    """
    if not isinstance(X, (list, tuple)) or len(X) < 2:
        return
    ndims = [getattr(a, "ndim", None) for a in X]
    for i, ndim in enumerate(ndims):
        if ndim is not None and ndim >= 2:
            other = next(j for j, n in enumerate(ndims) if n is None or n < 2)
            raise ValueError(
                f"X is a list holding an array of {ndim} dimensions (X[{i}]) "
                f"beside one of fewer (X[{other}]); as one array per view, "
                "each must be (n_samples, ...) with at least 2 dimensions: "
                "give a view of one column as an (n_samples, 1) array "
                "(a[:, None])."
            )
    first = X[0]
    if not warn:
        return
    if ndims[0] == 1:
        kind = "1-D arrays"
    elif (
        isinstance(first, (list, tuple))
        and len(first) > 0
        and isinstance(first[0], (list, tuple))
    ):
        kind = "nested lists"
    else:
        return
    if len(X) < len(first):
        from .._warn import warn_user

        warn_user(
            f"X is a list of {len(X)} {kind}, read as {len(X)} samples of one X "
            "(as scikit-learn reads a list). If they are one array per view, "
            "pass each as a numpy array of at least 2 dimensions, "
            "(n_samples, ...): np.asarray(view), a one-column view as "
            "(n_samples, 1)."
        )


def _consecutive(widths) -> list[list[int]]:
    """The column groups of arrays of ``widths`` columns joined side by side."""
    ends = np.cumsum([0, *widths])
    return [list(range(ends[i], ends[i + 1])) for i in range(len(widths))]


def _auto_views(shape: tuple[int, ...]) -> list[list[int]]:
    """``views="auto"``: two halves of the columns, the channels or the width."""
    cols = np.arange(math.prod(shape)).reshape(shape)
    if len(shape) == 1:
        axis = 0  # a table: the columns
    elif shape[0] >= 2:
        axis = 0  # several channels: the channel groups
    else:
        axis = len(shape) - 1  # one channel: the width (or length)
    size = shape[axis]
    if size < 2:
        if len(shape) == 1:
            raise ValueError(
                # "1 feature(s)": the words scikit-learn's checks look for
                "views='auto' splits the samples into two halves, but X has 1 "
                "feature(s); CMC needs at least 2 views: pass data with at least "
                "2 features, or views=<groups of columns>."
            )
        n_values = cols.size
        if n_values < 2:
            raise ValueError(
                f"X's samples of shape {shape} hold 1 value; CMC needs at least "
                "2 values a sample, one for each of at least 2 views."
            )
        half = n_values // 2
        raise ValueError(
            f"views='auto' splits one-channel samples into the two halves of "
            f"their last axis, but X's samples of shape {shape} are 1 wide "
            f"there; pass views=<groups of columns> (indices into the "
            f"{n_values} values of the flattened sample, e.g. "
            f"views=[range(0, {half}), range({half}, {n_values})] for its two "
            "halves in row order), or samples of another shape."
        )
    first, rest = np.split(cols, [size // 2], axis=axis)
    return [first.ravel().tolist(), rest.ravel().tolist()]


def _check_views(views, n_features: int, names) -> list[list[int]]:
    """The user's groups of columns as sorted lists of indices, checked."""
    if len(views) < 2:
        raise ValueError(
            f"views holds {len(views)} group(s) of columns; CMC contrasts views "
            "with each other and needs at least 2, e.g. views=[[0, 1], [2, 3]] "
            "(or views='auto', the two halves of the columns)."
        )
    groups, owner = [], {}
    for v, group in enumerate(views):
        cols = _group_columns(v, group, n_features, names)
        shared = sorted(c for c in cols if c in owner)
        if shared:
            raise ValueError(
                f"views[{owner[shared[0]]}] and views[{v}] share the columns "
                f"{shared[:10]}; views must not overlap: give every column to "
                "one view at most."
            )
        owner.update(dict.fromkeys(cols, v))
        groups.append(cols)
    return groups


def _group_columns(v: int, group, n_features: int, names) -> list[int]:
    """One group of columns (indices, a mask or names) as sorted indices."""
    arr = np.asarray(group)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"views[{v}]={group!r} is not a non-empty group of columns; pass a "
            "list of column indices such as [0, 1, 2] (a single column as [3])."
        )
    if arr.dtype.kind == "b":
        if arr.size != n_features:
            raise ValueError(
                f"views[{v}] is a boolean mask of {arr.size} entries, but X has "
                f"{n_features} features; pass a mask of one entry per column."
            )
        arr = np.flatnonzero(arr)
    elif arr.dtype.kind in "UO":
        if names is None:
            raise ValueError(
                f"views[{v}] names columns, but X has no column names; pass "
                "column indices, or X as a DataFrame with string column names."
            )
        lookup = {name: i for i, name in enumerate(names)}
        unknown = [c for c in arr.tolist() if c not in lookup]
        if unknown:
            raise ValueError(
                f"views[{v}] names columns {unknown[:5]} that X does not have; "
                f"its columns are {list(names)[:10]}..."
            )
        arr = np.asarray([lookup[c] for c in arr.tolist()])
    elif arr.dtype.kind not in "iu":
        raise ValueError(
            f"views[{v}]={group!r} must hold column indices (ints), a boolean "
            f"mask or column names; got {arr.dtype} values."
        )
    bad = arr[(arr < -n_features) | (arr >= n_features)]
    if bad.size:
        raise ValueError(
            f"views[{v}] holds column {int(bad[0])}, out of range for X with "
            f"{n_features} features; use indices 0 to {n_features - 1} (or "
            f"-{n_features} to -1 from the end)."
        )
    arr = arr % n_features  # negative indices count from the end, as numpy's
    cols = sorted(int(c) for c in arr)
    if len(set(cols)) < len(cols):
        raise ValueError(f"views[{v}] lists a column twice; list each column once.")
    return cols


def _box_shape(cols: list[int], input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of the box of ``input_shape`` the columns form, else flat.

    Sorted flat indices of a box (the product of a set of indices on every
    axis) enumerate it in row-major order, so the view's values reshape to
    it directly.
    """
    if len(input_shape) == 1:
        return (len(cols),)
    per_axis = [np.unique(i) for i in np.unravel_index(cols, input_shape)]
    box = tuple(len(u) for u in per_axis)
    return box if math.prod(box) == len(cols) else (len(cols),)


class CMCViewsMixin:
    """X read as views, and the views resolved in ``fit`` (not public)."""

    def _validate_X(self, X, *, reset: bool, **kwargs) -> np.ndarray:
        """Join a list of per-view arrays, validate, and (fit) resolve the views."""
        X, arrays = _join_arrays(X, fitting=reset)
        X = super()._validate_X(X, reset=reset, **kwargs)
        if reset:
            self._resolve_views(X.shape[1], arrays)
        elif arrays is not None and _consecutive(arrays[0]) != self.views_:
            raise ValueError(
                f"X is a list of arrays of {arrays[0]} columns, but "
                f"{type(self).__name__} was fitted on views of "
                f"{[len(v) for v in self.views_]} columns at {self._where()}; pass "
                "one array per fitted view, or the 2-D X it was fitted on."
            )
        return X

    def _where(self) -> str:
        return "columns " + ", ".join(f"{v[0]}..{v[-1]}" for v in self.views_)

    def _resolve_views(self, n_features: int, arrays) -> None:
        """Set ``views_`` and ``view_shapes_`` from the parameters and the data."""
        if arrays is not None:
            if not (isinstance(self.views, str) and self.views == "auto"):
                raise ValueError(
                    "X is a list of arrays, one per view, so views must be "
                    f"'auto'; got views={self.views!r}. Pass the 2-D X with "
                    "views=<groups of columns>, or the list with views='auto'."
                )
            if self.input_shape is not None:
                raise ValueError(
                    "input_shape describes a single array X; X is a list of "
                    "arrays, one per view: give each view's shape by its "
                    "array's shape (n, C, H, W) or by view_shapes, and leave "
                    "input_shape=None."
                )
            views = _consecutive(arrays[0])
        elif isinstance(self.views, str):
            views = _auto_views(tuple(self.input_shape_))
        else:
            names = getattr(self, "feature_names_in_", None)
            views = _check_views(self.views, n_features, names)
        self.view_shapes_ = self._resolve_shapes(views, arrays)
        self.views_ = views
        if self.graph == "core":
            self._check_view_index("core_view", self.core_view, len(views))
        self._check_view_index("transform_view", self.transform_view, len(views))

    def _resolve_shapes(self, views, arrays) -> list[tuple[int, ...]]:
        if isinstance(self.view_shapes, str):  # "auto"
            if arrays is not None:
                return [s or (len(v),) for s, v in zip(arrays[1], views)]
            return [_box_shape(v, tuple(self.input_shape_)) for v in views]
        if len(self.view_shapes) != len(views):
            raise ValueError(
                f"view_shapes has {len(self.view_shapes)} entries for "
                f"{len(views)} views; pass one shape (or None) per view, or "
                "view_shapes='auto'."
            )
        shapes = []
        for v, (shape, cols) in enumerate(zip(self.view_shapes, views)):
            if shape is None:
                shapes.append((len(cols),))
                continue
            try:
                shape = tuple(int(s) for s in shape)
            except (TypeError, ValueError):
                shape = ()
            if not shape or min(shape) < 1 or math.prod(shape) != len(cols):
                raise ValueError(
                    f"view_shapes[{v}]={self.view_shapes[v]!r} does not fit view "
                    f"{v}, which has {len(cols)} columns; pass a tuple of positive "
                    f"ints whose product is {len(cols)} (e.g. ({len(cols)},)), "
                    "None for a flat vector, or view_shapes='auto'."
                )
            shapes.append(shape)
        return shapes

    @staticmethod
    def _check_view_index(name: str, value, n_views: int):
        if value is not None and not 0 <= value < n_views:
            raise ValueError(
                f"{name}={value!r} is out of range for {n_views} views; pass an "
                f"index in [0, {n_views - 1}]"
                + (" or None (every view)." if name == "transform_view" else ".")
            )
        return value
