"""
Transfer learning: accuracy against the number of labels
========================================================

"Pre-train on large-scale data, fine-tune on small-scale data." A
representation is learned once, without labels, from every training image;
then a classifier is built on it from only a few labelled ones, in the two
classic ways (Yosinski et al., "How transferable are features in deep
neural networks?", NeurIPS 2014):

* **frozen**: the representation is kept as it is and a classifier is
  trained on its output, here what a scikit-learn user writes,
  ``Pipeline([("rep", FrozenEstimator(rep)), ("clf",
  LogisticRegression())])`` (``benchmarks/bench_labels.py`` adds
  :class:`~sk_replearn.evaluation.LinearProbeCV`, whose regularisation is
  chosen by cross-validation on the few labels, and other methods);
* **fine-tuned**: :class:`~sk_replearn.FineTuner` puts a new linear head on
  the pre-trained encoder and trains every weight on the labels.

The protocol is that of ``benchmarks/bench_labels.py``: a
:class:`~sk_replearn.SimCLRTransformer` (defaults, ``input_shape=(1, 8,
8)``) pre-trained on the 1,347 training digits of scikit-learn, then 2, 5,
10 and 30 labels a class, five seeded draws each
(:func:`~sk_replearn.evaluation.few_label_scores`), and all the labels. A
logistic regression on the raw pixels, trained on the same labels, is the
line to beat.
"""

# %%
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from sk_replearn import FineTuner, SimCLRTransformer
from sk_replearn.evaluation import few_label_scores

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
simclr = SimCLRTransformer(input_shape=(1, 8, 8), random_state=0).fit(X_train)

# %%
# Few labels, five draws each
# ---------------------------
# A fitted representation wrapped in :class:`~sklearn.frozen.FrozenEstimator`
# stays fitted when ``few_label_scores`` clones the pipeline for each draw;
# a ``FineTuner`` of a fitted representation only reads it. So the one
# pre-training serves every model below.
MODELS = {
    "raw pixels": LogisticRegression(max_iter=5000),
    "frozen + LogisticRegression": Pipeline(
        [("rep", FrozenEstimator(simclr)), ("clf", LogisticRegression(max_iter=5000))]
    ),
    "fine-tuned": FineTuner(simclr, random_state=0),
}
rows = []
for name, model in MODELS.items():
    for k in [2, 5, 10, 30]:
        result = few_label_scores(
            model, X_train, y_train, X_test, y_test, n_per_class=k, n_draws=5
        )
        rows += [(name, 10 * k, score) for score in result.scores]
    everything = model.fit(X_train, y_train).score(X_test, y_test)
    rows.append((name, len(X_train), everything))

results = pd.DataFrame(rows, columns=["model", "labels", "accuracy"])
table = results.pivot_table(index="labels", columns="model", values="accuracy")
table.round(3)

# %%
# The curves: mean test accuracy over the draws, and their spread.
summary = results.groupby(["model", "labels"])["accuracy"].agg(["mean", "std"])
fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
styles = {
    "fine-tuned": "o-",
    "frozen + LogisticRegression": "s-",
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
ax.set_title("Digits: SimCLR pre-training, then few labels")
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()

# %%
# What the curves say
# -------------------
# * **The representation pays most when labels are few.** With 20 labels a
#   logistic regression on the SimCLR representation is about 11 points
#   above the same classifier on the 64 pixels (the table above); the gap
#   narrows as labels grow, to 3 or 4 points with all 1,347.
# * **The views make the representation.** For single-channel images
#   ``views="auto"`` does not crop but warps (small rotations, slants,
#   zooms, shifts and elastic distortions, the variations of handwriting):
#   a random resized crop of an 8×8 digit keeps a few pixels of one stroke
#   (``benchmarks/bench_labels.py`` measures both).
# * **So does the first convolution.** On images this small,
#   ``encoder="auto"`` keeps the full resolution in the CNN's first block
#   (:func:`~sk_replearn.nn.auto_encoder_kwargs`); a first convolution of
#   stride 2 sees each stroke of an 8×8 digit at one position in four. This
#   example does not fit it, but ``benchmarks/bench_labels.py`` does
#   (``encoder="cnn"``, the earlier default): it costs the frozen
#   representation 2.8, 0.4 and 0.4 points with 20, 50 and 100 labels
#   (0.844, 0.924 and 0.951 against 0.872, 0.928 and 0.955 in
#   ``benchmarks/results/bench_labels.txt``).
# * **Do not standardise with the statistics of 20 labels.** The
#   classifiers above see the representation as it is. Scaling each of its
#   256 features by a mean and variance estimated from 20 samples inflates
#   the features that hardly vary. For the same reason FineTuner's heads
#   divide no feature by its spread: they centre each feature on a running
#   mean, then normalise each sample over its features where the encoder
#   trains (:class:`~sk_replearn.nn.CentredLayerNorm`) and divide every
#   value by one scale where it is frozen
#   (:class:`~sk_replearn.nn.CentredScale`).
# * **Fine-tuning trails the frozen representation when labels are few.**
#   Training every weight on 20 labels fits them too closely: the
#   fine-tuner ends about 5 points below the frozen representation. The gap
#   closes as labels grow, to about 1.5 points with 100 labels and under a
#   point with all of them (two or three of the 450 test images). Every
#   fine-tune here runs FineTuner's default 50 epochs, so 20 labels get 50
#   steps and 1,347 about 1,100.
# * Where raw features say less, as on the MNIST-1D signals (raw logistic
#   regression 0.33), the gain of pre-training is much larger:
#   ``benchmarks/bench_transfer.py`` measures it (see :doc:`/benchmarks`).
