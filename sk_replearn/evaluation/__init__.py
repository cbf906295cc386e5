"""Ways to judge a representation: linear and k-nearest-neighbour probes.

:func:`linear_probe` is the linear evaluation protocol of the
self-supervised literature with every label. For few labels, the case a
representation learned without labels is meant for, the module offers:

* two probes, scikit-learn classifiers to put after a frozen representation:
  :class:`KNNProbe` (a k-nearest-neighbour vote, k chosen from the number of
  labels) and :class:`LinearProbeCV` (a logistic regression whose inverse
  regularisation ``C`` is chosen by stratified cross-validation on the few
  labels themselves);
* :class:`ProbeScorer`, a ``scorer(estimator, X, y)`` that probes a fitted
  representation (or pipeline) with either probe, for ``GridSearchCV`` and
  ``cross_validate``;
* :func:`few_label_indices` and :func:`few_label_scores`: ``k`` labels per
  class drawn at random, several times, and the test accuracy of any
  classifier trained on each draw (mean and standard deviation).
"""

from __future__ import annotations

from ._few_label import FewLabelResult, few_label_indices, few_label_scores
from ._probes import KNNProbe, LinearProbeCV
from ._scoring import ProbeResult, ProbeScorer, linear_probe

__all__ = [
    "FewLabelResult",
    "KNNProbe",
    "LinearProbeCV",
    "ProbeResult",
    "ProbeScorer",
    "few_label_indices",
    "few_label_scores",
    "linear_probe",
]
