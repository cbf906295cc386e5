"""
Transfer learning: accuracy against the number of labels
========================================================

"Pre-train on large-scale data, fine-tune on small-scale data." A
representation is learned once, without labels, from every training image;
then a classifier is built on it from only a few labelled ones.
:class:`~sk_replearn.FineTuner` does the second step in the three classic
ways (Yosinski et al., "How transferable are features in deep neural
networks?", NeurIPS 2014):

* **fine-tuned** (``strategy="full"``): a new linear head, and every weight
  of the pre-trained encoder trained further at a tenth of the head's
  learning rate (``encoder_lr_scale=0.1``);
* **frozen** (``strategy="frozen"``): the encoder is kept as it is and only
  the head is trained, a linear probe;
* **from scratch** (``reinit_layers="all"``): the same network with every
  encoder layer re-drawn at random, the no-transfer baseline.

Here the representation is a :class:`~sk_replearn.SimCLRTransformer`
pre-trained on the 1347 training digits of scikit-learn, and each strategy
is trained on 20, 50, 100, 300 and all 1347 of their labels (the small sets
stratified, drawn three times). A logistic regression on the raw pixels,
trained on the same labels, is the line to beat.
"""

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sk_replearn import FineTuner, SimCLRTransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
simclr = SimCLRTransformer(input_shape=(1, 8, 8), random_state=0).fit(X_train)

# %%
# Fine-tuning with few labels
# ---------------------------
# A fitted representation passed to ``FineTuner`` is only read: its encoder
# is copied, so the one pre-training serves every fine-tuner below. Each
# fine-tuner gets about the same number of optimiser steps (``max_epochs``
# passes over its labels, at least 250 batches in all), so that the small
# label sets are not also short of training.
STRATEGIES = {
    "fine-tuned": {"strategy": "full"},
    "frozen": {"strategy": "frozen"},
    "from scratch": {"reinit_layers": "all"},
}
rows = []
for n_labels in [20, 50, 100, 300, len(X_train)]:
    draws = 3 if n_labels < len(X_train) else 1
    for draw in range(draws):
        if n_labels < len(X_train):
            idx, _ = train_test_split(
                np.arange(len(X_train)),
                train_size=n_labels,
                stratify=y_train,
                random_state=draw,
            )
        else:
            idx = np.arange(len(X_train))
        X_few, y_few = X_train[idx], y_train[idx]
        epochs = max(20, math.ceil(250 / math.ceil(n_labels / 64)))
        raw = LogisticRegression(max_iter=5000).fit(X_few, y_few)
        rows.append(("raw pixels", n_labels, raw.score(X_test, y_test)))
        for name, params in STRATEGIES.items():
            clf = FineTuner(simclr, max_epochs=epochs, random_state=draw, **params)
            clf.fit(X_few, y_few)
            rows.append((name, n_labels, clf.score(X_test, y_test)))

results = pd.DataFrame(rows, columns=["model", "labels", "accuracy"])
table = results.pivot_table(index="labels", columns="model", values="accuracy")
table.round(3)

# %%
# The curves: mean test accuracy over the draws, and their spread.
summary = results.groupby(["model", "labels"])["accuracy"].agg(["mean", "std"])
fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
styles = {
    "fine-tuned": "o-",
    "frozen": "s-",
    "from scratch": "^-",
    "raw pixels": "k--",
}
for name, style in styles.items():
    curve = summary.loc[name]
    ax.errorbar(
        curve.index,
        curve["mean"],
        yerr=curve["std"].fillna(0),
        fmt=style,
        label=name,
        capsize=3,
    )
ax.set_xscale("log")
ax.set_xticks(table.index, [str(n) for n in table.index])
ax.minorticks_off()
ax.set_xlabel("number of labelled training images")
ax.set_ylabel("test accuracy")
ax.set_title("Digits: SimCLR pre-training, then FineTuner")
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()

# %%
# What the curves say
# -------------------
# * **Transfer pays most when labels are few.** With 20 labels (two per
#   class) the pre-trained encoder is worth about ten points over the same
#   network trained from scratch, which has too little data to learn its
#   convolutions from.
# * **Fine-tuning beats freezing.** Letting the encoder adapt, slowly, to
#   the labels is better than the frozen probe at every label count, and
#   from 300 labels on it is the best model of all. The frozen probe is the
#   cheapest to train (the encoder runs once) and the safest with very few
#   labels, but it can only use what the pre-training happened to keep.
# * **From scratch catches up** once there are enough labels to learn the
#   encoder from them alone.
# * **Know your baseline.** On these digits a logistic regression on the
#   64 raw pixels is still the best with 100 labels or fewer: a centred,
#   clean 8×8 digit is already nearly linearly separable, and a pre-training
#   on 1347 small images cannot add much that the pixels do not say. Where
#   raw features say less, as on the MNIST-1D signals, the gain of
#   pre-training is much larger: ``benchmarks/bench_transfer.py`` measures it
#   (see :doc:`/benchmarks`), and the
#   :ref:`non-image example <sphx_glr_auto_examples_plot_non_image_data.py>`
#   shows the probes.
