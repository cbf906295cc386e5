"""
Autoencoder against PCA at the same bottleneck
==============================================

An autoencoder compresses its input into a low-dimensional latent space with
a deep encoder and decoder trained by back-propagation,
``min Σ ||D(E(x)) − x||²``. PCA is the special case with a linear encoder and
decoder; a non-linear autoencoder can bend its bottleneck to the data.

Both are fitted here with a 16-dimensional bottleneck on scikit-learn's 8×8
digits and compared on held-out images: reconstructions side by side, the
reconstruction error, and how well a linear classifier reads the digit class
off each code.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from sk_replearn import AutoencoderTransformer, PCATransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
models = {
    "PCA": PCATransformer(n_components=16),
    "autoencoder": AutoencoderTransformer(
        n_components=16, input_shape=(1, 8, 8), random_state=0
    ),
}
for name, model in models.items():
    model.fit(X_train)
    recon = model.inverse_transform(model.transform(X_test))
    probe = LogisticRegression(max_iter=5000).fit(model.transform(X_train), y_train)
    print(
        f"{name:>12}: held-out MSE {mean_squared_error(X_test, recon):.2f}, "
        f"probe accuracy {probe.score(model.transform(X_test), y_test):.3f}"
    )

# %%
# Reconstructions of held-out digits
fig, axes = plt.subplots(3, 10, figsize=(10, 3.3))
rows = [("original", X_test[:10])] + [
    (name, m.inverse_transform(m.transform(X_test[:10]))) for name, m in models.items()
]
for r, (name, images) in enumerate(rows):
    for i in range(10):
        axes[r, i].imshow(images[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        axes[r, i].axis("off")
    axes[r, 0].set_title(name, fontsize=8, loc="left")
plt.show()

# %%
# The autoencoder's training curve: the loss it minimised, in standardised
# units, epoch by epoch.
fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
loss_curve = models["autoencoder"].loss_curve_
ax.plot(np.arange(1, len(loss_curve) + 1), loss_curve)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.set_yscale("log")
plt.show()
