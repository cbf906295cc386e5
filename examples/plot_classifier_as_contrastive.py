"""
A classifier is contrastive learning against a vocabulary of class keys
=======================================================================

Take a classifier and split it before its last fully connected layer: below
the cut, a representation ``h`` of the input; above it, one weight vector
``w_c`` per class. The logit of class ``c`` is the similarity ``h·w_c``, and
the cross-entropy loss of a sample of class ``y`` is

.. math::

   L = -\\log \\frac{\\exp(h \\cdot w_y)}{\\sum_c \\exp(h \\cdot w_c)},

the contrastive loss with the representation as the *query*, its own
class's weights as the *positive key*, the other classes' weights as the
*negative keys*, and a temperature of 1. Training maximises the similarity
of the positive pair and minimises that of the negative pairs: the weights
of the last layer are a vocabulary of ten keys, one per class, and the
representation learns to point at the right one.

Self-supervised contrastive learning keeps the loss and drops the labels:
with no vocabulary of classes, it forms one with the data itself. The query
is a view of an image, its positive key another view of the same image, and
the negatives are the views of the other images (the InfoNCE loss of van
den Oord et al., "Representation Learning with Contrastive Predictive
Coding", 2018; SimCLR, Chen et al., ICML 2020, with in-batch negatives).

This example shows both vocabularies on scikit-learn's 8×8 digits: the
class keys of a :class:`~sk_replearn.FineTuner` whose head is a single
linear layer, and the instance keys a
:class:`~sk_replearn.SimCLRTransformer` learned without labels.
"""

# %%
# A classifier with a head of class keys
# --------------------------------------
# :class:`~sk_replearn.FineTuner` is network surgery: it takes a
# representation's encoder and puts a new head on it. Its ``head`` may be
# any module built from the numbers of features in and out; here it is the
# bare last layer of the argument above, one weight vector per class and no
# bias, so that the logits are exactly the similarities ``h·w_c``. The
# encoder comes from a SimCLR representation fitted first, without labels,
# on the training images; the fine-tuner then trains encoder and head on the
# labels (the encoder at a tenth of the head's learning rate).
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from sk_replearn import FineTuner, SimCLRTransformer
from sk_replearn.views import make_views

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
simclr = SimCLRTransformer(input_shape=(1, 8, 8), max_epochs=40, random_state=0)
simclr.fit(X_train)


def class_keys(in_features, out_features):
    """The last layer: one key of ``in_features`` numbers per class, no bias."""
    return torch.nn.Linear(in_features, out_features, bias=False)


clf = FineTuner(simclr, head=class_keys, max_epochs=30, random_state=0)
clf.fit(X_train, y_train)
print(f"held-out accuracy: {clf.score(X_test, y_test):.3f}")

# %%
# ``transform`` gives the fine-tuned representation ``h`` (the input of the
# head) and the head's weight matrix holds the keys. Their products are the
# classifier's logits, and the cross-entropy of the logits is the InfoNCE
# loss written above: the contrastive loss of each test image against the
# ten class keys, its own class's key the positive.
keys = clf.net_.module_.head.weight.detach().numpy()  # (10 classes, D)
H = clf.transform(X_test)  # (n_test, D)
logits = H @ keys.T
print(
    "logits are h·w_c:", np.allclose(logits, clf.decision_function(X_test), atol=1e-4)
)

shifted = logits - logits.max(axis=1, keepdims=True)
log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
info_nce = -log_softmax[np.arange(len(y_test)), y_test].mean()
print(f"InfoNCE against the class keys (temperature 1): {info_nce:.4f}")
print(
    f"cross-entropy of predict_proba:                 "
    f"{log_loss(y_test, clf.predict_proba(X_test)):.4f}"
)

# %%
# The similarity of every test image (rows, sorted by class) to every class
# key (columns) shows the vocabulary at work: each image is most similar to
# its own class's key, the block on the diagonal, and the softmax turns those
# similarities into the class probabilities. The norms of ``h`` and ``w_c``
# play the part of the temperature: the larger they grow, the sharper the
# softmax.
order = np.argsort(y_test, kind="stable")
fig, axes = plt.subplots(1, 2, figsize=(8, 4.5), layout="constrained")
for ax, values, title in [
    (axes[0], logits[order], "similarity h·w_c"),
    (axes[1], clf.predict_proba(X_test)[order], "softmax: P(class c)"),
]:
    image = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(10))
    ax.set_xlabel("class key c")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8)
counts = np.bincount(y_test)
axes[0].set_yticks(np.cumsum(counts) - counts / 2 - 0.5, [str(c) for c in range(10)])
axes[0].set_ylabel("test images, sorted by their class")
axes[1].set_yticks([])
plt.show()

# %%
# What does a key "look like"? It lives in the representation space, not in
# pixel space, but the training images most similar to it show what it
# stands for: for each class key, the five training images with the highest
# similarity ``h·w_c``.
H_train = clf.transform(X_train)
fig, axes = plt.subplots(10, 5, figsize=(3.6, 7))
for c in range(10):
    nearest = np.argsort(H_train @ keys[c])[::-1][:5]
    for col, i in enumerate(nearest):
        axes[c, col].imshow(X_train[i].reshape(8, 8), cmap="gray_r")
        axes[c, col].axis("off")
    axes[c, 0].text(
        -0.3,
        0.5,
        f"key {c}",
        fontsize=8,
        ha="right",
        va="center",
        transform=axes[c, 0].transAxes,
    )
fig.suptitle("the 5 training images closest to each class key", fontsize=9)
plt.show()

# %%
# A vocabulary formed with the data itself
# ----------------------------------------
# Without labels there are no class keys. SimCLR makes one key per image:
# two random views of an image (``views="auto"`` picks small warps for
# one-channel digits, see :func:`~sk_replearn.views.make_views`) are a
# positive pair, and the views of the other images are the negatives. Its
# loss does not compare the representation itself but the output of a
# small projection head on top of it (``net_.module_.projector``), as
# normalised vectors (cosine similarity) at a temperature ``τ``
# (``temperature=0.2`` by default), a sharper softmax than the classifier's.
#
# The test below is the one the loss sets: draw two views of each of the 450
# test images, represent both, and for each first view rank the 450 second
# views by their similarity to it. Where does its own second view come?
# Chance is the middle, 225. The model never saw the test images nor a
# label.
digit_views = make_views("auto", (1, 8, 8))
mean, std = X_train.mean(), X_train.std()
images = torch.tensor((X_test - mean) / std, dtype=torch.float32).reshape(-1, 1, 8, 8)
torch.manual_seed(0)
view_1, view_2 = (
    (digit_views(images) * std + mean).reshape(len(X_test), -1).numpy()
    for _ in range(2)
)


def cosine(A, B):
    """Cosine similarity of every row of A to every row of B."""
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    B = B / np.linalg.norm(B, axis=1, keepdims=True)
    return A @ B.T


def projection(H):
    """SimCLR's projection head on representations H: where its loss compares."""
    head = simclr.net_.module_.projector.eval()
    with torch.inference_mode():
        return head(torch.tensor(H, dtype=torch.float32)).numpy()


H_1, H_2 = simclr.transform(view_1), simclr.transform(view_2)
similarities = {
    "raw pixels": cosine(view_1 - mean, view_2 - mean),
    "SimCLR representation\n(transform)": cosine(H_1, H_2),
    "SimCLR projection head\n(where the loss compares)": cosine(
        projection(H_1), projection(H_2)
    ),
}
for name, S in similarities.items():
    rank = 1 + (S > np.diag(S)[:, None]).sum(axis=1)  # 1: the own view is first
    print(
        f"{name.splitlines()[0]:>22}: own view's median rank {np.median(rank):5.0f} "
        f"of 450, first in {np.mean(rank == 1):.0%} of the images"
    )

# %%
# In pixel space a view's own pair comes at a median rank of about 107:
# better than chance, but a warped digit's pixels match other images almost
# as well as a warp of itself. In the representation that ``transform``
# returns it comes about 20th, and through the projection head about 4th.
#
# The same picture as the classifier's, with the keys now the second views
# of 40 test images (four of each digit): the positive pairs are the
# diagonal. In pixel space neither the diagonal nor the digits stand out.
# Through the projection head the diagonal does, with the other images of
# the same digit (the blocks of four around it) next: telling an image from
# every other one, even of its own class, is what the loss asked for. The
# representation below the head sits in between. It keeps more of what all
# the images of a class share, and it is the one to use downstream: Chen et
# al. found it better than the head's output by more than ten points of
# linear-probe accuracy on ImageNet.
shown = np.concatenate([np.flatnonzero(y_test == c)[:4] for c in range(10)])
fig, axes = plt.subplots(1, 3, figsize=(11, 3.9), layout="constrained")
for ax, (name, S) in zip(axes, similarities.items()):
    image = ax.imshow(S[np.ix_(shown, shown)], cmap="viridis", interpolation="nearest")
    ax.set_title(f"{name}: cosine", fontsize=9)
    ax.set_xlabel("key: second view of image j")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(image, ax=ax, shrink=0.8)
axes[0].set_ylabel("query: first view of image i")
plt.show()

# %%
# The two losses are one. A classifier contrasts each sample with a
# vocabulary of class keys it learns alongside the representation; a
# contrastive method contrasts each sample with the other samples of the
# batch, so its vocabulary grows with the data and needs no label. What the
# classifier gets from the labels (which images belong together), SimCLR
# gets from the views, and the representation it learns that way is the
# one the fine-tuner above started from.
