"""
Beyond images: the same estimators on signals and on tables
===========================================================

Nothing in the estimators is specific to pictures. The shape of one sample
decides the networks and the augmentations:

* **signals** ``(C, L)``, passed as 2-D rows with ``input_shape=(1, 40)``:
  1-D convolutions or a small ResNet, and
  :class:`~sk_replearn.views.SequenceViews` (crop and stretch, circular
  shift, amplitude scaling, smooth noise); the MAE cuts the signal into
  segments;
* **tables** ``(d,)``, 2-D rows with no ``input_shape``: an MLP, and
  :class:`~sk_replearn.views.TabularViews`, SCARF's corruption that
  replaces a random 60% of a row's features by the same features of other
  rows; the MAE makes one token per feature.

The signals are MNIST-1D, ten classes of 1-D "digits" that are shifted,
scaled, sheared and drowned in correlated noise, so that their raw values
say little about the class; they are generated offline with the
``mnist1d`` package. The tables are scikit-learn's breast cancer data (569
tumours, 30 measurements) and a synthetic classification problem whose
classes are each a mixture of several clusters. Every representation is
fitted without labels and scored by the held-out accuracy of a linear probe
(:func:`~sk_replearn.evaluation.linear_probe`), beside the same probe on the
raw features.
"""

# %%
# MNIST-1D and the views of a signal
# ----------------------------------
# ``make_dataset`` reseeds NumPy's global random generator, so its state is
# saved and restored around the call.
import matplotlib.pyplot as plt
import mnist1d.data
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_replearn import (
    AutoencoderTransformer,
    MAETransformer,
    PCATransformer,
    SimCLRTransformer,
)
from sk_replearn.evaluation import linear_probe
from sk_replearn.views import SequenceViews

state = np.random.get_state()  # noqa: NPY002 (mnist1d uses the legacy RNG)
signals = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
np.random.set_state(state)  # noqa: NPY002
X_sig, y_sig = signals["x"], signals["y"]  # (4000, 40), 10 classes
X_sig_test, y_sig_test = signals["x_test"], signals["y_test"]  # (1000, 40)

fig, axes = plt.subplots(
    2, 5, figsize=(10, 3.6), sharex=True, sharey=True, layout="constrained"
)
for digit, ax in enumerate(axes.ravel()):
    for row in np.flatnonzero(y_sig == digit)[:3]:
        ax.plot(X_sig[row], lw=1)
    ax.set_title(f"class {digit}", fontsize=9)
fig.supxlabel("position in the signal", fontsize=9)
fig.supylabel("value", fontsize=9)
fig.suptitle("MNIST-1D: three training signals of each class (length 40)")
plt.show()

# %%
# Apart from class 0, whose three signals happen to share their bump,
# signals of one class hardly look alike: the class is a pattern that may sit
# anywhere, stretched or sheared, under correlated noise.
#
# The default views of a signal, here applied to one standardised signal
# five times: each view is the same signal cropped and stretched, rolled
# around the circle (the signal wraps: a shifted bump leaves on one side and
# comes back on the other), rescaled, and overlaid with smooth noise. Two
# views of one signal are what SimCLR learns to match, so it learns to
# recognise a pattern wherever it sits and however noisy. The noise is
# strong on purpose: it hides each signal's own slow background, by which
# the two views could otherwise be matched without looking at their shape
# (see the notes of :class:`~sk_replearn.views.SequenceViews`).
views = SequenceViews()
x = torch.tensor(X_sig[:1], dtype=torch.float32)[:, None, :]  # (1, 1, 40)
mean, std = x.mean(), x.std()
torch.manual_seed(0)
batch = views(((x - mean) / std).repeat(5, 1, 1)) * std + mean  # (5, 1, 40)
fig, axes = plt.subplots(1, 6, figsize=(12, 2), sharey=True, layout="constrained")
axes[0].plot(x[0, 0].numpy(), color="k")
axes[0].set_title(f"a signal of class {y_sig[0]}", fontsize=9)
for i, (ax, view) in enumerate(zip(axes[1:], batch[:, 0]), start=1):
    ax.plot(view.numpy(), color="tab:blue")
    ax.set_title(f"view {i}", fontsize=9)
fig.supxlabel("position in the signal", fontsize=9)
axes[0].set_ylabel("value", fontsize=9)
fig.suptitle(f"{views!r}: five random views")
plt.show()

# %%
# Linear probes on the signals
# ----------------------------
# The training budgets are cut to keep this example to a minute or two on a
# CPU; ``benchmarks/bench_ssl.py`` runs SimCLR's defaults (0.931 in
# ``benchmarks/results/bench_ssl.txt``, with the small ResNet that
# ``encoder="auto"`` picks for signals) and ``bench_mae.py`` the MAE recipe
# for short signals of the user guide (0.789 in 32 epochs in
# ``benchmarks/results/bench_mae.txt``, read over quarters of the signal).
small_mae = dict(
    embed_dim=32,
    depth=2,
    num_heads=2,
    decoder_embed_dim=32,
    decoder_depth=1,
    decoder_num_heads=2,
    warmup_epochs=3,
    random_state=0,
)


def representations(input_shape, epochs, mae_epochs):
    """One unfitted estimator per method, for samples of ``input_shape``."""
    return {
        "PCA": PCATransformer(n_components=16),
        "autoencoder": AutoencoderTransformer(
            input_shape=input_shape, max_epochs=epochs, random_state=0
        ),
        "SimCLR": SimCLRTransformer(
            input_shape=input_shape,
            encoder="cnn" if input_shape else "auto",
            max_epochs=epochs,
            random_state=0,
        ),
        "MAE": MAETransformer(
            input_shape=input_shape, max_epochs=mae_epochs, **small_mae
        ),
    }


def probe_all(reps, X_train, y_train, X_test, y_test):
    """Held-out linear-probe accuracy of the raw features and of each rep."""
    scores = {"raw features": linear_probe(None, X_train, y_train, X_test, y_test)}
    for name, rep in reps.items():
        scores[name] = linear_probe(rep, X_train, y_train, X_test, y_test)
    for name, result in scores.items():
        print(
            f"{name:>14}: accuracy {result.accuracy:.3f}  (fit {result.fit_time:.1f} s)"
        )
    return {name: result.accuracy for name, result in scores.items()}


accuracy = {}
accuracy["MNIST-1D signals"] = probe_all(
    representations((1, 40), epochs=30, mae_epochs=20),
    X_sig,
    y_sig,
    X_sig_test,
    y_sig_test,
)

# %%
# Linear probes on two tables
# ---------------------------
# The columns of a table come in their own units (the tumour's area is in
# the hundreds, its smoothness about 0.1), so, as in any scikit-learn
# pipeline on such data, a :class:`~sklearn.preprocessing.StandardScaler`
# comes first and no column dominates by its units alone. The networks are
# MLPs; with no ``input_shape``, ``encoder="auto"`` and ``views="auto"``
# pick them and SCARF's views by themselves.
tables = {
    "breast cancer table": load_breast_cancer(return_X_y=True),
    "synthetic table": make_classification(
        n_samples=2000,
        n_features=20,
        n_informative=10,
        n_redundant=5,
        n_clusters_per_class=4,
        random_state=0,
    ),
}
for name, (X, y) in tables.items():
    print(name)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    reps = representations(None, epochs=60, mae_epochs=30)
    reps = {
        method: make_pipeline(StandardScaler(), rep) for method, rep in reps.items()
    }
    accuracy[name] = probe_all(reps, X_train, y_train, X_test, y_test)

# %%
# All probes at a glance
# ----------------------
names = list(next(iter(accuracy.values())))
width = 0.8 / len(names)
fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
for i, method in enumerate(names):
    heights = [accuracy[data][method] for data in accuracy]
    bars = ax.bar(np.arange(len(accuracy)) + i * width, heights, width, label=method)
    ax.bar_label(bars, fmt="%.2f", fontsize=7)
ax.set_xticks(np.arange(len(accuracy)) + width * (len(names) - 1) / 2, list(accuracy))
ax.set_ylabel("linear-probe accuracy (held out)")
ax.set_ylim(0, 1.15)
ax.legend(ncols=len(names), loc="upper center", fontsize=8)
plt.show()

# %%
# Which method for which data
# ---------------------------
# * **Signals.** The class of an MNIST-1D signal is a shape that may sit
#   anywhere, at any scale, under noise: the raw values, and PCA's linear
#   summary of them, hardly tell the classes apart (a third right, for ten
#   classes). Reconstructing the signal (autoencoder) mostly learns the
#   noise. SimCLR's views say exactly which changes do not matter, and its
#   representation makes the class linearly readable: the probe more than
#   doubles. The MAE, with a budget cut this far, sits in between.
# * **A small, clean table** (breast cancer): the 30 measurements were
#   chosen by experts to describe the tumour and are already nearly linearly
#   separable. No representation does clearly better: the printed
#   accuracies are within a few of the 143 test tumours of the raw
#   features', up or down (one tumour is 0.007). Keep the raw features, or
#   compress them with PCA.
# * **A table with nonlinear structure** (each class a mixture of
#   clusters): the classes are not linearly separable in the raw features,
#   and reconstruction-based representations stay close to them. SimCLR
#   with SCARF's feature corruption learns which rows belong together and
#   gains several points over the raw features, more than any other
#   representation here.
#
# A representation helps where the raw features do not already expose the
# structure that matters, and it helps most when the augmentation encodes
# what that structure is. Measure it: a linear probe against the raw
# features, as here, is cheap, and a
# :ref:`grid search <sphx_glr_auto_examples_plot_grid_search.py>` can pick
# the hyperparameters on the same criterion.
