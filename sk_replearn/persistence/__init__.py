"""Saving and loading estimators as data, never as code.

:func:`save` and :func:`load` write a fitted estimator to one file that
``torch.load(path, weights_only=True)`` reads: the estimator's class name
(looked up among sk_replearn's public classes, never imported by name from
the file), its parameters, its fitted attributes as plain data and the
module's ``state_dict``. Loading rebuilds the module from the parameters and
loads the weights into it, so a file can hold tensors and numbers but no
code. Pickle (``joblib.dump``) also works but runs code when loading; use it
only for files you trust.

The plain-data codec (:func:`to_plain`, :func:`from_plain`) and the atomic
file writing here also serve the training checkpoints of
:mod:`sk_replearn.checkpoint`.
"""

from ._codec import from_plain, to_plain
from ._files import load, save

__all__ = ["from_plain", "load", "save", "to_plain"]
