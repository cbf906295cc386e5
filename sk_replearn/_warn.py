"""Warnings that point at the user's line, however deep they are raised."""

from __future__ import annotations

import os
import sys
import warnings

import sklearn
import skorch
import torch

#: Code between the user and a warning: this package, the libraries whose
#: methods call ours (scikit-learn's ``fit_transform``, ``_fit_context``,
#: pipelines; skorch's training loop and callbacks; torch's hooks).
_LIBRARY_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep
    for module in (sys.modules[__package__], sklearn, skorch, torch)
)


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` at the first frame outside sk_replearn and its engines.

    A fixed ``stacklevel`` is right for one call path only: the same
    warning reached through ``fit_transform``, a ``Pipeline`` or an
    overridden ``fit`` pointed into scikit-learn or this package. Here the
    level is counted at the call, to the frame of the code that called into
    the library (the user's script, or a test).

    Examples
    --------
    >>> import warnings
    >>> from sk_replearn._warn import warn_user
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     warn_user("careful")
    >>> str(seen[0].message), seen[0].category.__name__
    ('careful', 'UserWarning')
    """
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _LIBRARY_DIRS
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
