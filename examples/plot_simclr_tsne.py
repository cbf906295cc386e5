"""
SimCLR: the views of an image, and a map of what the encoder learned
====================================================================

Contrastive learning forms its "vocabulary" with the data itself. Each image
of a batch is augmented twice at random; the two *views* of one image are a
positive pair, the views of every other image in the batch are negatives. An
encoder and a small projection head are trained so that the similarity of a
positive pair stands out from all the others under a softmax with temperature
``τ`` (the NT-Xent loss, ``-log exp(q·k₊/τ) / Σᵢ exp(q·kᵢ/τ)``). Nothing but
the augmentation says what "the same image" means: whatever the views change
(position, scale, contrast) the representation learns to ignore.

This example first shows the views that
:class:`~sk_replearn.views.ImageViews` produces, on a photograph and on the
8×8 digits of scikit-learn; then fits a
:class:`~sk_replearn.SimCLRTransformer` on the digits without their labels
and draws a 2-D t-SNE map of its representation, coloured by the class it
never saw, beside the same map of the raw pixels.
"""

# %%
# The views of a photograph
# -------------------------
# :class:`~sk_replearn.views.ImageViews` augments a whole batch at once on
# the batch's device: a random resized crop, an optional flip, colour jitter,
# random grayscale, blur and noise. The estimators standardise their input
# before the views see it (0 is the data mean, intensities are in standard
# deviations), so the photograph is standardised here too and mapped back to
# colours for display.
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits, load_sample_images
from sklearn.manifold import TSNE
from sklearn.model_selection import train_test_split

from sk_replearn import SimCLRTransformer
from sk_replearn.evaluation import linear_probe
from sk_replearn.views import ImageViews, make_views

photo = load_sample_images().images[0][:, 100:520] / 255.0  # china.jpg, 427x420
photo = photo[::4, ::4][:104, :104]  # (104, 104, 3)
x = torch.tensor(photo, dtype=torch.float32).permute(2, 0, 1)[None]  # (1, 3, H, W)
mean, std = x.mean(), x.std()

views = ImageViews(flip_prob=0.5, blur_prob=0.5)  # SimCLR's ImageNet recipe
torch.manual_seed(0)
batch = views(((x - mean) / std).repeat(8, 1, 1, 1))  # 8 random views, (8, 3, H, W)
shown = (batch * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()

fig, axes = plt.subplots(1, 9, figsize=(11, 1.6))
axes[0].imshow(photo)
axes[0].set_title("original", fontsize=8)
for ax, view in zip(axes[1:], shown):
    ax.imshow(view)
for ax in axes:
    ax.axis("off")
fig.suptitle(f"{views!r}: eight random views", fontsize=9)
plt.show()

# %%
# Each view keeps the content of the picture but changes where it is, how
# large, how bright, how colourful. A representation that maps all eight to
# nearby points has to describe *what* is in the picture.
#
# The views of a digit
# --------------------
# ``views="auto"`` (the default of every self-supervised estimator) picks the
# family from the shape of a sample: :func:`~sk_replearn.views.make_views`
# shows the choice. For one-channel images such as these 8×8 digits it does
# not crop (a small crop of an 8×8 digit keeps a few pixels of one stroke)
# but warps: a small rotation, slant, zoom and shift and an elastic
# distortion, the variations of handwriting. It never flips (a mirrored
# digit is another digit or none) and skips the colour steps that need
# three channels.
X, y = load_digits(return_X_y=True)
digit_views = make_views("auto", (1, 8, 8))
print(digit_views)

digits = torch.tensor(X[:6], dtype=torch.float32).reshape(6, 1, 8, 8)
d_mean, d_std = float(X.mean()), float(X.std())
torch.manual_seed(0)
fig, axes = plt.subplots(6, 7, figsize=(6, 5.4))
for col in range(7):
    out = digits  # column 0: the originals
    if col > 0:
        out = digit_views((digits - d_mean) / d_std) * d_std + d_mean
    for row in range(6):
        axes[row, col].imshow(out[row, 0].numpy(), cmap="gray_r", vmin=0, vmax=16)
        axes[row, col].axis("off")
    axes[0, col].set_title("original" if col == 0 else f"view {col}", fontsize=8)
plt.show()

# %%
# Training without labels
# -----------------------
# The transformer is fitted on the training images alone. ``transform`` then
# gives the encoder's 256-dimensional output (before the projection head,
# where the loss was computed). A linear probe, a logistic regression fitted
# on the representation of the labelled training images and scored on the
# held-out ones, measures what the representation makes linearly available.
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
simclr = SimCLRTransformer(input_shape=(1, 8, 8), max_epochs=40, random_state=0)
simclr.fit(X_train)
for name, rep in [("raw pixels", None), ("SimCLR", simclr)]:
    probe = linear_probe(rep, X_train, y_train, X_test, y_test)
    print(f"{name:>10}: linear-probe accuracy {probe.accuracy:.3f}")

fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
ax.plot(np.arange(1, simclr.n_epochs_ + 1), simclr.loss_curve_)
ax.set_xlabel("epoch")
ax.set_ylabel("NT-Xent loss")
ax.set_title("SimCLR training on the digits, no labels")
plt.show()

# %%
# A map of the representation
# ---------------------------
# t-SNE places points in 2-D so that neighbours stay neighbours. It is run
# on all 1797 images (the labels were never used, so the training images are
# fair game) with the cosine distance, the geometry in which the contrastive
# loss compares embeddings.
maps = {"raw pixels": X, "SimCLR representation": simclr.transform(X)}
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
for ax, (name, Z) in zip(axes, maps.items()):
    tsne = TSNE(n_components=2, metric="cosine", init="pca", random_state=0)
    xy = tsne.fit_transform(Z)
    points = ax.scatter(xy[:, 0], xy[:, 1], c=y, cmap="tab10", s=4)
    for digit in range(10):  # the class, written at the centre of its points
        cx, cy = np.median(xy[y == digit], axis=0)
        ax.text(cx, cy, str(digit), fontsize=13, weight="bold", ha="center")
    ax.set_title(f"t-SNE of the {name}")
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(points, ax=axes, ticks=range(10), label="digit (not used in training)")
plt.show()

# %%
# Both maps show the ten classes as islands, with the 1s and 8s touching in
# both. The pixels of these small, centred, clean digits already separate the
# classes well (t-SNE on raw digits is a classic picture), so the
# representation has little to add here; what matters is
# that the encoder reached an equally clean arrangement, and a slightly
# better linear probe, *without a single label*: only by pulling the views
# of each image together and pushing other images away. Its space is one in
# which digits of one class look like views of each other; on data whose
# raw features say less (signals, tables with nonlinear structure, see the
# other examples) that is where the gain comes from.
