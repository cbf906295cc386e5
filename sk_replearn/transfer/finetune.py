"""FineTuner and FineTunerRegressor: transfer a learned representation to a task."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils import assert_all_finite
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, column_or_1d
from torch import nn

from .._docstrings import PARAMETERS, fill_doc
from ..base import fit_context, store_params
from .base import BaseFineTuner

__all__ = ["FineTuner", "FineTunerRegressor"]

#: What the fine-tuners say differently of the shared parameters.
FINE_TUNER_DOCS = {
    "max_epochs": "Passes over the labelled data.",
    "checkpoint_dir": PARAMETERS["checkpoint_dir"][1]
    + """ It holds the fine-tuning: the pre-training of an unfitted
``representation``, which ``fit`` runs first, saves to the
representation's own ``checkpoint_dir`` (``representation__checkpoint_dir``,
with an int ``random_state``: with None every fit draws another
pre-training, whose features a frozen fine-tuning's checkpoint refuses
as other data, and beside which a full one resumes).""",
    "lr": """\
Learning rate of the head (and of re-initialised blocks); the
pre-trained encoder trains at ``lr * encoder_lr_scale``.""",
    "early_stopping": """\
Hold out ``validation_fraction`` of the labelled samples and stop when
their loss has not improved for ``n_iter_no_change`` epochs, keeping the
best weights.""",
    "random_state": """\
Seeds the head, re-drawn layers, batch order and (for an unfitted
representation whose own ``random_state`` is None) the pre-training; an
int makes CPU training bit-for-bit repeatable at a fixed number of torch
threads.""",
    "net_": """\
The trained network (encoder and head); ``net_.module_.encoder`` is the
fine-tuned encoder.""",
    "n_features_in_": """\
Number of features seen during ``fit``; not set when the representation
reads sequences (strings or token ids).""",
    "input_shape_": """\
Shape of one sample, the representation's; not set for sequences.""",
    "feature_names_in_": """\
Names of the features seen during fit, for DataFrames with string column
names; not set for sequences.""",
    "class_weight": (
        'dict, "balanced" or None',
        """\
Weights of the classes in the loss, ``{class_label: weight}`` (classes
left out weigh 1), as scikit-learn's classifiers take them; ``"balanced"``
weighs each class by ``n_samples / (n_classes * np.bincount(y))``, so that
every class counts as much in total. Multiplied with ``sample_weight``
when both are given, and scaled with it to a mean weight of 1 (see
:meth:`fit`). None weighs every class 1.""",
    ),
    "views": (
        '"auto", callable or None',
        """\
Augmentation of the labelled samples while the encoder trains: a views
object of :mod:`sk_replearn.views` (or any callable mapping a
standardised batch to a batch of the same shape), or ``"auto"`` for the
views the representation was pre-trained with (the two-view methods:
SimCLR, MoCo, BYOL, SwAV, DINO, ...; none for the others). None (the
default) trains on the samples as given. Ignored with
``strategy="frozen"``, whose features are computed once; token sequences
take none. Measured with
2 labels a class: on scikit-learn's 8x8 digits, fine-tuning SimCLR with
``"auto"`` (its small warps) scored 0.825 ± 0.047 against 0.825 ±
0.012 without (the same mean, four times the spread); on MNIST-1D,
with the heads' earlier batch normalisation, SimCLR's strong signal
views (crops and circular shifts among them) cost 5 points (0.73 against 0.78
with 4 labels a class), so the default is off and mild,
class-preserving views are the ones to pass.""",
    ),
}


@fill_doc(FINE_TUNER_DOCS)
class FineTuner(ClassifierMixin, BaseFineTuner):
    """Fine-tune a pre-trained representation to a classification task.

    Pre-training on large unlabelled data, then fine-tuning on few labels
    (Yosinski et al. [1]_; Howard and Ruder [2]_): the
    encoder of ``representation`` (learned without labels) gets a new head
    and is trained on the labels, fully at a lower learning rate, frozen,
    or partly re-initialised. The result is a classifier (``predict``,
    ``predict_proba``, ``decision_function``, ``score``) that is also a
    transformer: ``transform`` gives the fine-tuned representation.

    Parameters
    ----------
    {params representation..accelerator}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    {attributes representation_ n_blocks_ net_ training input}

    See Also
    --------
    FineTunerRegressor : The same for regression.
    sk_replearn.evaluation.linear_probe : Score frozen features.

    Notes
    -----
    Pickling a fitted fine-tuner works (``joblib.dump``); it pickles the
    torch modules, and loading a pickle runs code, so load one only from a
    trusted source. :meth:`save` and :meth:`load` write and read a file of
    data only (``torch.load(weights_only=True)``), the fitted representation
    included: prefer them to exchange models.

    References
    ----------
    .. [1] J. Yosinski, J. Clune, Y. Bengio and H. Lipson, "How transferable
       are features in deep neural networks?", NeurIPS 2014.
    .. [2] J. Howard and S. Ruder, "Universal language model fine-tuning for
       text classification", ACL 2018 (learning rates by layer).
    .. [3] K. He, X. Chen, S. Xie, Y. Li, P. Dollár and R. Girshick, "Masked
       autoencoders are scalable vision learners", CVPR 2022 (``layer_decay``).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn import AutoencoderTransformer, FineTuner
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=16, max_epochs=5,
    ...                             random_state=0).fit(X)
    >>> clf = FineTuner(ae, max_epochs=20, random_state=0).fit(X[:500], y[:500])
    >>> clf.predict_proba(X[:2]).shape
    (2, 10)
    >>> clf.transform(X[:2]).shape
    (2, 16)
    >>> round(clf.score(X[1000:], y[1000:]), 1) >= 0.8
    True
    """

    _parameter_constraints: dict = {
        **BaseFineTuner._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    _criterion = nn.CrossEntropyLoss
    _stratified_validation = True  # as MLPClassifier's early stopping
    #: A loss weight, as lr: changed after fit, no other network to save.
    _TRAINING_ONLY = BaseFineTuner._TRAINING_ONLY | {"class_weight"}

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
        class_weight: dict | str | None = None,
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
        """Unpickle; a fine-tuner pickled before ``class_weight`` weighed
        every class 1."""
        state.setdefault("class_weight", None)
        super().__setstate__(state)

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, *, pretrain_X=None) -> FineTuner:
        """Pre-train if needed, then fine-tune on the labelled samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Labelled training samples; with a representation of
            sequences (GPTTransformer, BERTTransformer), an iterable
            of strings or of integer token ids, as it takes them.
        y : array-like of shape (n_samples,)
            Class labels (any hashable values: ints, strings, ...).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in the loss (each sample's
            loss times its weight, the weights scaled to a mean of 1 so
            that ``lr`` keeps its meaning; early stopping holds out samples
            of positive weight only, and weighs its validation loss too);
            None weighs them equally. Multiplied by the weights of
            ``class_weight``. Not used by the pre-training, nor by
            the statistics of the head's normalisation or of an encoder's
            batch normalisations, which see every sample.
        pretrain_X : array-like, memmap, torch Dataset, iterable of str or None, \
default=None
            Unlabelled samples to pre-train an unfitted ``representation``
            on (e.g. many more than the labelled ones, read from disk as a
            memmap or a Dataset where the representation's ``fit`` takes
            them: not GPT's nor BERT's); None means X. With
            a fitted representation nothing is pre-trained, and a
            UserWarning says that pretrain_X is not used.

        Returns
        -------
        self : FineTuner
            The fitted classifier.
        """
        X, y, nd_shape = self._validate_Xy(X, y, multi_output=True)
        _refuse_several_targets(y)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "FineTuner needs samples of at least 2 classes in y; got 1 class "
                f"({self.classes_.tolist()[0]!r})."
            )
        self._check_params_against_data(len(X))
        sample_weight = self._class_weighted(sample_weight, X, y)
        y_t = torch.as_tensor(y_enc.reshape(-1), dtype=torch.long)
        y_t = self._weighted(y_t, self._relative_weights(sample_weight, X))
        self._fit_encoder(X, y_t, len(self.classes_), nd_shape, pretrain_X)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logits of the head; for two classes, ``logit_1 - logit_0``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples; with a representation of sequences (GPTTransformer,
            BERTTransformer), an iterable of strings or of integer token
            ids, as it takes them.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            float32, the precision the network computes in (as
            :meth:`transform`); :meth:`predict_proba` takes its softmax in
            float64, so that its rows sum to 1.
        """
        logits = self._outputs(X)
        if len(self.classes_) == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (softmax of the logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples; with a representation of sequences (GPTTransformer,
            BERTTransformer), an iterable of strings or of integer token
            ids, as it takes them.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1, columns in the order of ``classes_``.
        """
        logits = torch.from_numpy(self._outputs(X)).double()
        return torch.softmax(logits, dim=1).numpy()

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples; with a representation of sequences (GPTTransformer,
            BERTTransformer), an iterable of strings or of integer token
            ids, as it takes them.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        logits = torch.from_numpy(self._outputs(X)).double()
        return torch.log_softmax(logits, dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples; with a representation of sequences (GPTTransformer,
            BERTTransformer), an iterable of strings or of integer token
            ids, as it takes them.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        best = np.argmax(self._outputs(X), axis=1)
        return self.classes_[best]

    def _class_weighted(self, sample_weight, X, y) -> np.ndarray | None:
        """``sample_weight`` times the weights ``class_weight`` gives ``y``'s
        samples (as scikit-learn's classifiers multiply them); checked, so
        that a negative or non-numeric class weight is named as such."""
        if self.class_weight is None:
            return sample_weight
        if isinstance(self.class_weight, dict):
            for label, value in self.class_weight.items():
                if not isinstance(value, Real) or isinstance(value, bool):
                    raise TypeError(
                        f"class_weight[{label!r}]={value!r} must be a number; "
                        "class_weight takes {class_label: weight} with weights "
                        '>= 0, or "balanced".'
                    )
                if not np.isfinite(value) or value < 0:
                    raise ValueError(
                        f"class_weight[{label!r}]={value!r} must be a finite "
                        "weight >= 0."
                    )
            if not set(self.class_weight) & set(self.classes_.tolist()):
                raise ValueError(
                    f"class_weight names none of the classes of y: its keys "
                    f"{list(self.class_weight)!r} against the classes "
                    f"{self.classes_.tolist()!r}. Key it by the labels of y."
                )
        per_class = compute_sample_weight(self.class_weight, y)  # (n,)
        if sample_weight is not None:
            per_class = per_class * _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        if not per_class.any():
            raise ValueError(
                "class_weight (times sample_weight) gives every sample a weight "
                "of 0; at least one sample must weigh more than 0."
            )
        return per_class


@fill_doc(FINE_TUNER_DOCS)
class FineTunerRegressor(RegressorMixin, BaseFineTuner):
    """Fine-tune a pre-trained representation to a regression task.

    :class:`FineTuner` for continuous targets, one or several: the head
    predicts the standardised targets under a mean-squared-error loss, and
    ``predict`` maps them back. ``transform`` gives the fine-tuned
    representation.

    Parameters
    ----------
    {params representation..accelerator}

    Attributes
    ----------
    y_mean_, y_scale_ : ndarray of shape (n_targets,)
        Standardisation of the targets learned by ``fit``.
    {attributes representation_ n_blocks_ net_ training input}

    See Also
    --------
    FineTuner : The same for classification.

    References
    ----------
    .. [1] J. Yosinski, J. Clune, Y. Bengio and H. Lipson, "How transferable
       are features in deep neural networks?", NeurIPS 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn import FineTunerRegressor, PCATransformer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 10)).astype("float32")
    >>> y = X[:, 0] - 2 * X[:, 1]
    >>> reg = FineTunerRegressor(PCATransformer(n_components=5), max_epochs=100,
    ...                          random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> reg.score(X, y) > 0.9
    True
    """

    _criterion = nn.MSELoss

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, *, pretrain_X=None) -> FineTunerRegressor:
        """Pre-train if needed, then fine-tune on the targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Training samples; with a representation of sequences
            (GPTTransformer, BERTTransformer), an iterable of strings or of
            integer token ids, as it takes them.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in the loss (each sample's
            squared error, averaged over the targets, times its weight; the
            weights scaled to a mean of 1 so that ``lr`` keeps its meaning;
            the targets are standardised with the weights; early stopping
            holds out samples of positive weight only, and weighs its
            validation loss too); None weighs them equally. Not used by the
            pre-training, nor by the statistics of the head's normalisation
            or of an encoder's batch normalisations, which see every sample.
        pretrain_X : array-like, memmap, torch Dataset, iterable of str or None, \
default=None
            Unlabelled samples to pre-train an unfitted ``representation``
            on (a memmap or a Dataset where the representation's ``fit``
            takes them); None means X. With a fitted representation nothing is
            pre-trained, and a UserWarning says that pretrain_X is not used.

        Returns
        -------
        self : FineTunerRegressor
            The fitted regressor.
        """
        X, y, nd_shape = self._validate_Xy(X, y, multi_output=True, y_numeric=True)
        self._check_params_against_data(len(X))
        self._y_ndim = y.ndim
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        # scikit-learn's multi-output check reads an object y (None, "nan")
        # as floats after its finiteness check, so NaN would reach the loss.
        assert_all_finite(Y, input_name="y", estimator_name=type(self).__name__)
        weight = self._relative_weights(sample_weight, X)
        self.y_mean_, std = _mean_std(Y, weight)
        self.y_scale_ = np.where(std > 0, std, 1.0)
        Y = (Y - self.y_mean_) / self.y_scale_
        y_t = self._weighted(torch.as_tensor(Y, dtype=torch.float32), weight)
        self._fit_encoder(X, y_t, Y.shape[1], nd_shape, pretrain_X)
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples; with a representation of sequences (GPTTransformer,
            BERTTransformer), an iterable of strings or of integer token
            ids, as it takes them.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            As the ``y`` given to ``fit``.
        """
        out = self._outputs(X).astype(np.float64) * self.y_scale_ + self.y_mean_
        return out.ravel() if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _refuse_several_targets(y: np.ndarray) -> None:
    """A ValueError that names the wrappers for y of several columns.

    (scikit-learn's own message asks for a 1-d array and stops there.)
    """
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(
            f"FineTuner predicts one class per sample, but y has {y.shape[1]} "
            f"columns ({type_of_target(y)}). Fit one fine-tuner per column: "
            "sklearn.multiclass.OneVsRestClassifier(FineTuner(...)) for 0/1 "
            "label columns, sklearn.multioutput.MultiOutputClassifier"
            "(FineTuner(...)) for any; FineTunerRegressor takes several "
            "continuous targets at once."
        )


def _mean_std(
    Y: np.ndarray, weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations of finite ``Y``, never inf or 0
    by rounding; with ``weight``, the weighted ones (a sample of weight 0
    does not count).

    Where squares overflow float64 (values above about 1e154) or round a
    spread to zero (below about 1e-162), each column is divided by its
    largest magnitude first and the results scaled back: a zero spread
    would leave the targets unscaled.
    """

    def moments(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if weight is None:
            return Z.mean(axis=0), Z.std(axis=0)
        mean = np.average(Z, axis=0, weights=weight)
        return mean, np.sqrt(np.average((Z - mean) ** 2, axis=0, weights=weight))

    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        mean, std = moments(Y)
        constant = np.ptp(Y if weight is None else Y[weight > 0], axis=0) == 0
    if (
        np.isfinite(mean).all()
        and np.isfinite(std).all()
        and ((std > 0) | constant).all()
    ):
        return mean, std
    peak = np.abs(Y).max(axis=0)
    peak = np.where(peak > 0, peak, 1.0)
    mean, std = moments(Y / peak)
    return mean * peak, std * peak
