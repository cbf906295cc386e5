"""
Many variants of self-supervised learning, side by side
=======================================================

Every self-supervised method of this package does the same thing at heart:
it draws two random *views* of each unlabelled sample, maps both through
an encoder, and compares them in the latent space, so that the two views of
one sample come out alike. Left at that, the encoder would map everything
to one point, which matches every pair perfectly (*collapse*). The methods
differ in what stops it, and in a few choices around that:

a. the **loss** that compares the two embeddings (a softmax over
   similarities, a cosine, a cross-correlation matrix, a cross-entropy
   between distributions over prototypes);
b. with or without **negatives**, other samples that a view must *not*
   resemble;
c. with or without a **momentum encoder** (a teacher), a slowly moving
   average of the encoder that produces the targets;
d. a **predictor**, **clustering** or **redundancy reduction** on top of
   the encoder's output;
e. the **augmentation** that makes the views.

This example fits eight estimators on the same unlabelled digits with the
same seed and the same budget, and measures what each representation makes
available to a linear classifier, with every label and with only a few.
(:class:`~sk_replearn.CMCTransformer` is left out: it contrasts views that
the data come in, such as groups of channels or columns, rather than two
augmentations of the whole sample, and has an example of its own, on the two
halves of each digit: :ref:`sphx_glr_auto_examples_plot_cmc_views.py`.)
"""

# %%
# What each method compares
# -------------------------
# The eight estimators share an encoder (the three-layer CNN that
# ``encoder="auto"`` builds for 8×8 images), whose output ``transform``
# returns, and put a head on top of it in which the loss is computed. The
# table is read off their docstrings and losses:
#
# * :class:`~sk_replearn.SimCLRTransformer` (Chen, Kornblith, Norouzi and
#   Hinton, "A Simple Framework for Contrastive Learning of Visual
#   Representations", ICML 2020);
# * :class:`~sk_replearn.MoCoTransformer`, MoCo v2 (He, Fan, Wu, Xie and
#   Girshick, "Momentum Contrast for Unsupervised Visual Representation
#   Learning", CVPR 2020);
# * :class:`~sk_replearn.BYOLTransformer` (Grill et al., "Bootstrap Your
#   Own Latent: A New Approach to Self-Supervised Learning", NeurIPS 2020);
# * :class:`~sk_replearn.SimSiamTransformer` (Chen and He, "Exploring
#   Simple Siamese Representation Learning", CVPR 2021);
# * :class:`~sk_replearn.BarlowTwinsTransformer` (Zbontar, Jing, Misra,
#   LeCun and Deny, "Barlow Twins: Self-Supervised Learning via Redundancy
#   Reduction", ICML 2021);
# * :class:`~sk_replearn.VICRegTransformer` (Bardes, Ponce and LeCun,
#   "VICReg: Variance-Invariance-Covariance Regularization for
#   Self-Supervised Learning", ICLR 2022);
# * :class:`~sk_replearn.DINOTransformer` (Caron et al., "Emerging
#   Properties in Self-Supervised Vision Transformers", ICCV 2021);
# * :class:`~sk_replearn.SwAVTransformer` (Caron et al., "Unsupervised
#   Learning of Visual Features by Contrasting Cluster Assignments",
#   NeurIPS 2020).
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from sk_replearn import (
    BarlowTwinsTransformer,
    BYOLTransformer,
    DINOTransformer,
    MoCoTransformer,
    SimCLRTransformer,
    SimSiamTransformer,
    SwAVTransformer,
    VICRegTransformer,
)
from sk_replearn.evaluation import few_label_scores, linear_probe
from sk_replearn.views import make_views

DESIGN = [
    (
        "SimCLR",
        "the two views' projections: softmax over cosine similarities / τ (NT-Xent)",
        "the other 2N − 2 views of the batch",
        "no",
        "no",
        "the negatives",
    ),
    (
        "MoCo",
        "the query of one view against the momentum key of the other (InfoNCE)",
        "a queue of 2048 earlier keys",
        "yes: it makes the keys",
        "no",
        "the negatives",
    ),
    (
        "BYOL",
        "the prediction for one view against the target's projection of "
        "the other: 2 − 2 cos",
        "none",
        "yes: the target",
        "yes",
        "predictor and slowly moving target",
    ),
    (
        "SimSiam",
        "the prediction for one view against the other's projection: −cos",
        "none",
        "no",
        "yes",
        "predictor and stop-gradient",
    ),
    (
        "Barlow Twins",
        "the cross-correlation matrix of the two views' projections, "
        "driven to the identity",
        "none",
        "no",
        "no",
        "redundancy reduction: off-diagonal correlations to 0",
    ),
    (
        "VICReg",
        "the squared distance between the two views' embeddings",
        "none",
        "no",
        "no",
        "every dimension's std kept ≥ 1, dimensions decorrelated",
    ),
    (
        "DINO",
        "cross-entropy of the teacher's and the student's softmax over 1024 prototypes",
        "none",
        "yes: the teacher",
        "no",
        "the teacher's output centred and sharpened",
    ),
    (
        "SwAV",
        "each view's softmax over 300 prototypes predicts the cluster codes "
        "of the other (global) views",
        "none",
        "no",
        "no",
        "clustering: Sinkhorn-Knopp gives every prototype an equal share",
    ),
]
pd.set_option("display.max_colwidth", None)
pd.DataFrame(
    DESIGN,
    columns=[
        "method",
        "the loss compares",
        "negatives",
        "momentum encoder",
        "predictor",
        "against collapse",
    ],
).set_index("method")

# %%
# Two columns are left out because they hardly differ. Every head is a small
# MLP of two or three layers (ending in a layer of prototypes for DINO and
# SwAV), and every method sees the views that ``views="auto"`` makes of a
# one-channel image: small rotations, slants, zooms, shifts and elastic
# distortions (:class:`~sk_replearn.views.ImageViews`). DINO and SwAV add
# *multi-crop*: two small crops of a part of each digit, encoded at 4×4
# pixels, which only the predicting network sees.
#
# "No negatives" does not mean that each pair is compared on its own:
# Barlow Twins standardises every dimension along the batch, VICReg keeps
# every dimension's spread up along the batch, DINO's teacher subtracts a
# running mean of its outputs, and SwAV's equal shares are shares of the
# batch. Of the methods without negatives, only BYOL and SimSiam compare
# each pair on its own (the batch normalisation in their heads aside).
#
# The same data, seed and budget for all
# --------------------------------------
# The 8×8 digits of scikit-learn, split 75/25 with stratification; the
# representations are fitted on the 1,347 training images without their
# labels. ``max_epochs="auto"`` would give every method 60 epochs on this
# many images; to keep the example under two minutes on a CPU, each gets
# 20, a third of its default training.
#
# Beside the raw pixels, a second baseline: the *untrained* encoder, that
# of a SimCLR estimator given one epoch at ``lr=0``, so that its weights
# stay as they were drawn at random (only its input scaling and batch
# normalisation have seen the data).
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
EPOCHS = 20
common = dict(input_shape=(1, 8, 8), max_epochs=EPOCHS, random_state=0)
methods = {
    "SimCLR": SimCLRTransformer(**common),
    "MoCo": MoCoTransformer(**common),
    "BYOL": BYOLTransformer(**common),
    "SimSiam": SimSiamTransformer(**common),
    "Barlow Twins": BarlowTwinsTransformer(**common),
    "VICReg": VICRegTransformer(**common),
    "DINO": DINOTransformer(**common),
    "SwAV": SwAVTransformer(**common),
    "untrained encoder": SimCLRTransformer(**{**common, "max_epochs": 1, "lr": 0}),
}
fit_time = {}
for name, rep in methods.items():
    start = time.perf_counter()
    rep.fit(X_train)  # no labels
    fit_time[name] = time.perf_counter() - start
    print(f"{name:>17}: fitted in {fit_time[name]:4.1f} s")

# %%
# Linear probes with every label, and with a few
# ----------------------------------------------
# :func:`~sk_replearn.evaluation.linear_probe` fits a standardised logistic
# regression on the representation of the 1,347 labelled training images
# and scores it on the 450 held-out ones.
# :func:`~sk_replearn.evaluation.few_label_scores` draws 2 or 5 labelled
# images of each class from the training split, five times (the same draws
# for every representation), fits a logistic regression on the
# representation of those 20 or 50 images alone, and scores it on the same
# held-out images. The representation was learned from every training
# image, without labels, and the labels are few: the case self-supervised
# learning is meant for. (The few-label regression sees the representation
# unscaled: means and variances estimated from 20 samples do more harm
# than good, as :ref:`the transfer-learning example
# <sphx_glr_auto_examples_plot_transfer_labels.py>` explains.) A fitted
# representation wrapped in :class:`~sklearn.frozen.FrozenEstimator` stays
# as it is through the clones that both functions make.
rows = []
for name, rep in {"raw pixels": None, **methods}.items():
    frozen = None if rep is None else FrozenEstimator(rep)
    probe = linear_probe(frozen, X_train, y_train, X_test, y_test)
    steps = [("clf", LogisticRegression(max_iter=5000))]
    if frozen is not None:
        steps.insert(0, ("rep", frozen))
    few = {
        k: few_label_scores(
            Pipeline(steps), X_train, y_train, X_test, y_test, n_per_class=k
        )
        for k in (2, 5)
    }
    rows.append(
        {
            "method": name,
            "all labels": probe.accuracy,
            "5 a class": few[5].mean,
            "± (5)": few[5].std,
            "2 a class": few[2].mean,
            "± (2)": few[2].std,
            "fit (s)": fit_time.get(name, 0.0),
        }
    )
results = pd.DataFrame(rows).set_index("method")
results.round(3)

# %%
# The same numbers as bars, with the standard deviation over the five draws.
# The two baselines are grey, the dashed line is the raw pixels; the
# colours group the methods by what prevents collapse: negatives (blue), a
# predictor or a teacher (orange), statistics of the batch (green) and
# clustering (purple).
FAMILY = {
    "raw pixels": "0.6",
    "untrained encoder": "0.6",
    "SimCLR": "tab:blue",
    "MoCo": "tab:blue",
    "BYOL": "tab:orange",
    "SimSiam": "tab:orange",
    "DINO": "tab:orange",
    "Barlow Twins": "tab:green",
    "VICReg": "tab:green",
    "SwAV": "tab:purple",
}
order = list(FAMILY)[::-1]  # barh draws from the bottom up
shown = results.loc[order]
panels = [
    ("all labels", None, "every label (1,347)", (0.9, 1.0)),
    ("5 a class", "± (5)", "5 labels a class (50)", (0.6, 1.0)),
    ("2 a class", "± (2)", "2 labels a class (20)", (0.5, 0.95)),
    ("fit (s)", None, f"fit time, {torch.get_num_threads()} thread(s)", None),
]
fig, axes = plt.subplots(1, 4, figsize=(12, 4.2), sharey=True, layout="constrained")
for ax, (column, spread, title, limits) in zip(axes, panels):
    xerr = None if spread is None else shown[spread]
    colors = [FAMILY[name] for name in order]
    ax.barh(order, shown[column], xerr=xerr, color=colors, capsize=2)
    if limits is None:
        ax.set_xlabel("seconds")
    else:
        ax.axvline(shown.loc["raw pixels", column], color="k", ls="--", lw=1)
        ax.set_xlim(*limits)
        ax.set_xlabel("held-out accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
fig.suptitle(f"Digits: eight self-supervised methods, {EPOCHS} epochs each, seed 0")
plt.show()

# %%
# Alignment and uniformity
# ------------------------
# Every loss above asks, at its head, for two things at once: that the two
# views of an image land close together (*alignment*) and, one way or
# another, that different images do not all land in the same place. Wang
# and Isola ("Understanding Contrastive Representation Learning through
# Alignment and Uniformity on the Hypersphere", ICML 2020) measure both on
# L2-normalised features: the alignment is the mean squared distance
# between the two views of an image, the uniformity
# ``log mean exp(−2 ‖zᵢ − zⱼ‖²)`` over pairs of different images; lower is
# better for both. Here both are measured where the probes look, on the
# output of ``transform`` (before any head), for the 450 held-out images
# and two views of each, drawn by the views every method trained with.
views = make_views("auto", (1, 8, 8))
mean, std = X_train.mean(), X_train.std()
images = torch.tensor(X_test, dtype=torch.float32).reshape(-1, 1, 8, 8)
torch.manual_seed(0)
view_pair = [  # two views of every held-out image, back in pixel units
    (views((images - mean) / std) * std + mean).reshape(len(X_test), -1).numpy()
    for _ in range(2)
]


def unit_rows(Z):
    """The rows of ``Z`` scaled to unit length."""
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


upper = np.triu_indices(len(X_test), k=1)  # every pair of different images
for name, rep in methods.items():
    z1, z2 = (unit_rows(rep.transform(v)) for v in view_pair)  # (450, 256) each
    z = unit_rows(rep.transform(X_test))  # (450, 256)
    squared = np.maximum(2 - 2 * z @ z.T, 0)  # squared distances of unit vectors
    results.loc[name, "alignment"] = np.mean(np.sum((z1 - z2) ** 2, axis=1))
    results.loc[name, "uniformity"] = np.log(np.mean(np.exp(-2 * squared[upper])))

measured = results.loc[list(methods)]
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
for ax, column in zip(axes, ["uniformity", "alignment"]):
    ax.axhline(results.loc["raw pixels", "2 a class"], color="k", ls="--", lw=1)
    for name, row in measured.iterrows():
        ax.scatter(row[column], row["2 a class"], color=FAMILY[name], s=40)
        ax.annotate(
            name,
            (row[column], row["2 a class"]),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=8,
        )
    ax.margins(x=0.2)
    ax.set_xlabel(f"{column} of the representation (lower is better)")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("held-out accuracy, 2 labels a class")
axes[0].text(
    axes[0].get_xlim()[0],
    results.loc["raw pixels", "2 a class"],
    " raw pixels",
    va="bottom",
    fontsize=8,
)
fig.suptitle("Held-out images and their views, in each representation")
plt.show()
measured[["alignment", "uniformity", "2 a class"]].round(3)

# %%
# Each loss in its own units
# --------------------------
# The training curves (``loss_curve_``, one value an epoch) cannot be
# compared across methods: a SimSiam loss of −0.85 and a Barlow Twins loss
# of 115 say nothing about which representation is the better one, which
# is why the comparison needs a probe. MoCo's loss rises in the second
# epoch: its queue starts as random keys, easy negatives, which the first
# eight steps replace by keys of real digits (within the first epoch, the
# loss of a batch climbs from 5.8 to 7.2 as they do). DINO's is a
# cross-entropy against a target that moves (the teacher follows the
# student), so it need not fall steadily: here it is lowest at the eighth
# epoch and then rises.
fig, axes = plt.subplots(2, 4, figsize=(11, 4.4), layout="constrained")
trained = [name for name in methods if name != "untrained encoder"]
for ax, name in zip(axes.ravel(), trained):
    curve = methods[name].loss_curve_
    ax.plot(np.arange(1, len(curve) + 1), curve, color=FAMILY[name])
    ax.set_title(name, fontsize=9)
    ax.tick_params(labelsize=7)
for ax in axes[1]:
    ax.set_xlabel("epoch", fontsize=8)
fig.suptitle("Training loss of each method, in its own units")
plt.show()

# %%
# What the figures say
# --------------------
# The figures are of one seed, and even the number of threads torch uses
# moves the numbers in the second or third decimal (the order of a float
# sum changes). Read the differences below with that, and with the spread
# over the five draws, in mind.
#
# * **Every trained representation beats both baselines with 5 labels a
#   class.** With 2 labels a class all but DINO do; DINO lands within about
#   a point of the raw pixels, above or below them depending on the run.
# * **With every label there is little to choose.** The pixels of these
#   small, centred digits already give 0.969; the methods all give between
#   0.97 and 1, and their order changes from run to run.
# * **A few labels separate the methods more**, though the spread over the
#   five draws (0.01 to 0.035) is as large as many of the gaps. With 2
#   labels a class VICReg, MoCo and SimCLR come first (about 0.83 to 0.85),
#   DINO last; SwAV, BYOL, SimSiam and Barlow Twins lie between (about
#   0.78 to 0.80) and change places from run to run.
# * **Negatives or not is not the divide here.** VICReg has none and sits
#   with the two contrastive methods. What VICReg and MoCo share is the
#   uniformity of their representation: they are the two most uniform and
#   among the three best with 2 labels, and DINO, the least uniform of the
#   eight, is last. The link is loose: SimSiam is about as uniform as
#   SimCLR and scores well below it. Uniformity is not enough by itself:
#   the untrained encoder spreads the images about as evenly as DINO and
#   SwAV do, and is far worse. Alignment separates the methods less:
#   SwAV's two views agree most closely, and SwAV is in the middle.
#   Both are measured on the representation, not on the head's output
#   where each loss acts, so neither is what any loss optimised directly.
# * **A momentum encoder did not pay at this budget.** MoCo and SimCLR are
#   level, within a point of each other, and BYOL against SimSiam, its twin
#   without the moving average, is within the draws' spread, on either
#   side. A moving average was designed for hundreds of thousands of steps;
#   these fits take 220 (11 an epoch), and each step pays for the second
#   network's forward pass.
# * **The budget matters.** Twenty epochs are a third of the defaults. With
#   the 60 of ``max_epochs="auto"``, ``benchmarks/bench_labels.py`` measures
#   on the same split, protocol and draws 0.872 for SimCLR, 0.859 for SwAV
#   and 0.841 for DINO with 2 labels a class
#   (``benchmarks/results/bench_labels.txt``, see :doc:`/benchmarks`): each
#   4 to 9 points above its 20-epoch result in the table above, in the same
#   order.
# * **The untrained encoder is the floor that counts.** Its 256 random
#   convolutional features are worth no more than the 64 pixels with every
#   label and less with few: what the methods add comes from their
#   training, not from the architecture.
# * **Cost.** The fit times (last panel of the bar chart) lie within a
#   factor of about three of each other, and their order changes from run
#   to run on a shared machine, so they rank nothing. What costs more per
#   step is known: DINO runs a teacher and, with SwAV, two local crops of
#   every image; VICReg's expander has three layers 512 wide; MoCo and BYOL
#   run a second, momentum network.
#
# One data set of clean digits, one budget and one seed make a comparison
# of these methods, not a ranking of them. On the harder MNIST-1D signals,
# with their full defaults, the linear probes of the eight range from
# 0.893 (BYOL) to 0.941 (VICReg), where the raw signals give 0.328
# (``benchmarks/bench_ssl.py``; ``benchmarks/results/bench_ssl.txt``, in
# :doc:`/benchmarks`).
