"""
K-means on 8×8 patches of a photograph: a patch dictionary
==========================================================

Cut a photograph into small patches and cluster them: each centre is a
typical patch, and together the centres form a *dictionary* from which the
image can be rebuilt, every patch replaced by its nearest centre. Edges at
various orientations and flat regions of various brightness appear by
themselves, as Coates, Lee and Ng found ("An Analysis of Single-Layer
Networks in Unsupervised Feature Learning", AISTATS 2011).

The photograph is one of scikit-learn's sample images; patches are
normalised (mean removed, contrast scaled) before clustering, as is usual for
patch dictionaries, so that the centres describe *shape* rather than
brightness.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_images
from sklearn.feature_extraction.image import extract_patches_2d

from sk_replearn import KMeansTransformer

image = load_sample_images().images[0].mean(axis=2) / 255.0  # china.jpg, gray
patches = extract_patches_2d(image, (8, 8), max_patches=20000, random_state=0)
X = patches.reshape(len(patches), -1)
X = X - X.mean(axis=1, keepdims=True)
X = X / (X.std(axis=1, keepdims=True) + 0.1)

kmeans = KMeansTransformer(n_clusters=64, random_state=0).fit(X)

# %%
# The 64 centres, most used first.
order = np.argsort(-np.bincount(kmeans.labels_, minlength=64))
fig, axes = plt.subplots(8, 8, figsize=(6, 6))
for ax, k in zip(axes.ravel(), order):
    ax.imshow(kmeans.cluster_centers_[k].reshape(8, 8), cmap="gray")
    ax.axis("off")
fig.suptitle("K-means dictionary of 8×8 patches (k = 64)")
plt.show()

# %%
# The photograph, and the same photograph rebuilt from the dictionary on a
# grid of non-overlapping patches (each patch's mean and contrast kept, its
# shape replaced by the nearest centre's).
h, w = (s - s % 8 for s in image.shape)
grid = image[:h, :w].reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2).reshape(-1, 64)
mean = grid.mean(axis=1, keepdims=True)
scale = grid.std(axis=1, keepdims=True) + 0.1
codes = kmeans.predict((grid - mean) / scale)
rebuilt = kmeans.cluster_centers_[codes] * scale + mean
rebuilt = rebuilt.reshape(h // 8, w // 8, 8, 8).swapaxes(1, 2).reshape(h, w)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
axes[0].imshow(image[:h, :w], cmap="gray")
axes[0].set_title("photograph")
axes[1].imshow(rebuilt, cmap="gray")
axes[1].set_title("rebuilt from 64 patch centres")
for ax in axes:
    ax.axis("off")
plt.show()
