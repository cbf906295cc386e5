"""GPT and BERT learn from real token data: held-out evidence.

``tests/test_sequences.py`` shows the sequence estimators learning Markov
chains made up for the purpose; here they meet the data sets that ship in
Python wheels (:mod:`sk_replearn.datasets`) and must beat an untrained twin
on held-out sequences: the peptides' antimicrobial labels read by a linear
probe of ``transform``, and the FreeSolv hydration energies predicted by a
``FineTunerRegressor`` on 100 labelled molecules. The twin is the same
estimator at ``lr=0``, fitted for one epoch: the token encoders hold no
batch statistics, so at ``lr=0`` every pass leaves the network as it was
drawn, and one pass gives the very network that ``max_epochs`` would (the
same transform, bit for bit), at a fraction of the time.

The sizes are small (one block of width 32, a few seconds of fitting on one
core); each test's comment gives its numbers at ``random_state`` 0, 1 and 2,
and asserts about half the smallest gain measured. A data wheel that is not
installed skips its test, as in ``tests/test_sequences.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_replearn import (
    BERTTransformer,
    CollapseWarning,
    FineTunerRegressor,
    GPTTransformer,
    datasets,
)

#: A small token encoder, trained on many short steps.
_SMALL = {
    "embed_dim": 32,
    "depth": 1,
    "num_heads": 2,
    "batch_size": 16,
    "device": "cpu",
}
#: BERT learns little in so few steps at its defaults: on 600 peptides in
#: 10 to 30 epochs its masked-token accuracy stayed at 0.10 to 0.13, about
#: the commonest letter's frequency (0.095). Batches of 16, 30% of the
#: tokens masked and no dropout (with the higher lr of each test) give it
#: more to learn from: 0.17 on the 1,200 training peptides.
_BERT = {**_SMALL, "mask_ratio": 0.3, "dropout": 0.0}


def _load(loader, **kwargs):
    """The data set, or a skip naming the wheel to install."""
    try:
        return loader(**kwargs)
    except ImportError as exc:  # an optional data wheel, not installed here
        pytest.skip(str(exc))


def _fit_pair(cls, params, X, random_state):
    """The estimator fitted on X, and its untrained twin (``lr=0``)."""
    trained = cls(**params, random_state=random_state).fit(X)
    twin = cls(**{**params, "lr": 0.0, "max_epochs": 1}, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)  # lr=0 may look so
        twin.fit(X)
    return trained, twin


# -- peptides: a linear probe of the features ---------------------------------
@pytest.fixture(scope="module")
def peptides():
    """1,200 training and 1,000 held-out distinct peptides, stratified.

    The file repeats some peptides (a few with both labels): each distinct
    sequence of one label is kept once, so none of the held-out peptides is
    also a training one.
    """
    X, y = _load(datasets.load_peptides, return_X_y=True)
    labels: dict[str, set] = {}
    for s, label in zip(X, y):
        labels.setdefault(s, set()).add(int(label))
    X = sorted(s for s, seen in labels.items() if len(seen) == 1)
    y = np.array([min(labels[s]) for s in X])
    return train_test_split(
        X, y, train_size=1200, test_size=1000, stratify=y, random_state=0
    )


def _probe(Z_tr, y_tr, Z_te, y_te) -> float:
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return clf.fit(Z_tr, y_tr).score(Z_te, y_te)


def _probe_accuracies(rep, peptides) -> tuple[float, float]:
    """Held-out accuracy of a linear probe on all 1,200 labels, and its mean
    over 10 draws of 20 labels a class."""
    X_tr, X_te, y_tr, y_te = peptides
    Z_tr, Z_te = rep.transform(X_tr), rep.transform(X_te)
    rng = np.random.default_rng(0)
    few = []
    for _ in range(10):
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(y_tr == c), 20, replace=False) for c in (0, 1)]
        )
        few.append(_probe(Z_tr[idx], y_tr[idx], Z_te, y_te))
    return _probe(Z_tr, y_tr, Z_te, y_te), float(np.mean(few))


def _peptide_gains(cls, params, peptides, random_state=0):
    trained, twin = _fit_pair(cls, params, peptides[0], random_state)
    return _probe_accuracies(trained, peptides), _probe_accuracies(twin, peptides)


_GPT = {**_SMALL, "lr": 3e-3, "max_epochs": 10}
_BERT_PEPTIDES = {**_BERT, "lr": 3e-3, "max_epochs": 15}


def test_gpt_features_beat_an_untrained_twin_with_few_peptide_labels(peptides):
    # The untrained twin's mean-pooled features already hold each peptide's
    # letter composition, which tells much of the labels; what GPT learns
    # shows with 20 labels a class. Held-out accuracy at seeds 0, 1, 2 (mean
    # of the 10 draws): 0.807, 0.804, 0.807 against 0.677, 0.676, 0.655.
    # With all 1,200 labels the gain is smaller and not asserted (0.838,
    # 0.850, 0.847 against 0.782, 0.797, 0.757; on another split of the
    # peptides, random_state=1, as little as 0.032).
    (_, few), (_, few_twin) = _peptide_gains(GPTTransformer, _GPT, peptides)
    assert few > few_twin + 0.06, (few, few_twin)


def test_bert_features_beat_an_untrained_twin_on_peptides(peptides):
    # Held-out accuracy at seeds 0, 1, 2, with all 1,200 labels: 0.790,
    # 0.823, 0.810 against 0.706, 0.705, 0.706; with 20 labels a class (mean
    # of the 10 draws): 0.734, 0.716, 0.701 against 0.609, 0.590, 0.577.
    (full, few), (full_twin, few_twin) = _peptide_gains(
        BERTTransformer, _BERT_PEPTIDES, peptides
    )
    assert full > full_twin + 0.04, (full, full_twin)
    assert few > few_twin + 0.06, (few, few_twin)


# -- FreeSolv: fine-tuning on 100 labelled molecules ----------------------------
def _freesolv_split(random_state=0):
    """Unlabelled SMILES to pre-train on (the 1,935 drugs and the training
    half of FreeSolv), five draws of 100 labelled training molecules, and
    the held-out half."""
    X, y = _load(datasets.load_freesolv, return_X_y=True)
    drugs = _load(datasets.load_drug_smiles).data
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.5, random_state=random_state
    )
    rng = np.random.default_rng(random_state)
    draws = [rng.choice(len(X_tr), 100, replace=False) for _ in range(5)]
    labelled = [([X_tr[i] for i in idx], y_tr[idx]) for idx in draws]
    return drugs + X_tr, labelled, X_te, y_te


@pytest.fixture(scope="module")
def freesolv():
    return _freesolv_split()


_BERT_SMILES = {**_BERT, "lr": 2e-3, "max_epochs": 5}
#: The frozen encoder with a two-layer head: its features are computed once,
#: so its 100 epochs cost little.
_FROZEN = {
    "strategy": "frozen",
    "head": "mlp",
    "lr": 1e-3,
    "max_epochs": 100,
    "device": "cpu",
}


def _freesolv_r2(freesolv, random_state=0) -> tuple[float, float]:
    """Mean held-out R^2 over the five draws, pre-trained and untrained."""
    pretrain, labelled, X_te, y_te = freesolv
    scores = []
    for rep in _fit_pair(BERTTransformer, _BERT_SMILES, pretrain, random_state):
        r2 = [
            r2_score(
                y_te,
                FineTunerRegressor(rep, **_FROZEN, random_state=random_state)
                .fit(X, y)
                .predict(X_te),
            )
            for X, y in labelled
        ]
        scores.append(float(np.mean(r2)))
    return scores[0], scores[1]


def test_bert_pre_training_helps_fine_tuning_on_few_freesolv_labels(freesolv):
    # Transfer learning's claim on molecules: BERT pre-trained on unlabelled
    # SMILES, its frozen features read by an MLP head fitted to 100
    # hydration energies, beats the same at lr=0. Held-out R^2 (mean of the
    # five draws) at seeds 0, 1, 2: 0.386, 0.348, 0.327 against 0.227,
    # 0.199, 0.252; on the splits of random_state 1 and 2 the gains were
    # 0.122 to 0.235. (TF-IDF of character 1-5-grams and RidgeCV on the
    # same draws: 0.593. Fine-tuning the whole encoder, strategy "full" for
    # 50 epochs, gains too little to assert: 0.367, 0.338, 0.340 against
    # 0.359, 0.319, 0.308 over three draws, and -0.030 to +0.025 on the
    # split of random_state 1.)
    pre_trained, untrained = _freesolv_r2(freesolv)
    assert pre_trained > untrained + 0.04, (pre_trained, untrained)
