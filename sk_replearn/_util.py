"""Helpers that depend on nothing else in the package.

What an estimator's state is (:func:`is_fitted`), what counts as an int
argument (:func:`is_int`), how messages name it (:func:`with_article`) and
the closest valid name they suggest for a wrong one (:func:`did_you_mean`).
They live below :mod:`sk_replearn.base`, which re-exports
:func:`is_fitted`, so that the modules ``base`` itself imports
(persistence, tokens, the fingerprints) and the argument checks of every
layer can use them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from numbers import Integral

from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

__all__ = ["did_you_mean", "is_fitted", "is_int", "with_article"]


def is_fitted(estimator) -> bool:
    """Whether ``estimator`` is fitted, as :func:`check_is_fitted` decides.

    Anything that is not an estimator counts as not fitted.

    Examples
    --------
    >>> from sk_replearn import PCATransformer
    >>> from sk_replearn.base import is_fitted
    >>> is_fitted(PCATransformer()), is_fitted(object())
    (False, False)
    """
    try:
        check_is_fitted(estimator)
    except (NotFittedError, TypeError):
        return False
    return True


def is_int(value) -> bool:
    """Whether ``value`` is an integer argument: any Integral but a bool.

    NumPy's integers count (a parameter grid's values are ``np.int64``);
    ``True`` does not, though Python counts it as the int 1.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn._util import is_int
    >>> is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0)
    (True, True, False, False)
    """
    return isinstance(value, Integral) and not isinstance(value, bool)


def with_article(noun: str) -> str:
    """``noun`` after "a" or "an", as it is spoken, for messages.

    A word takes "an" before a vowel (an AutoencoderTransformer); a name
    that begins with an initialism (two capitals) before a letter whose
    name begins with one (an MAETransformer, a PCATransformer).

    Examples
    --------
    >>> from sk_replearn._util import with_article
    >>> with_article("AutoencoderTransformer"), with_article("SimCLRTransformer")
    ('an AutoencoderTransformer', 'a SimCLRTransformer')
    >>> with_article("MAETransformer"), with_article("PCATransformer")
    ('an MAETransformer', 'a PCATransformer')
    """
    initialism = noun[:2].isupper() and noun[:2].isalpha()
    vowels = "AEFHILMNORSX" if initialism else "AEIOUaeiou"
    return f"{'an' if noun[:1] and noun[0] in vowels else 'a'} {noun}"


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """The hint " Did you mean '<option>'?" naming the option closest to
    ``word``, for a message that refuses it; "" if no option is close.

    Examples
    --------
    >>> from sk_replearn._util import did_you_mean
    >>> did_you_mean("resnt", ["mlp", "cnn", "resnet"])
    " Did you mean 'resnet'?"
    >>> did_you_mean("xyz", ["mlp", "cnn"])
    ''
    """
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
