"""
Denoising autoencoder
=====================

A :class:`~skae.DenoisingAutoencoder` trained to rebuild clean Fashion-MNIST
images from images with Gaussian noise of standard deviation 0.2 added. Fresh
noise is drawn for every batch while training; ``denoise`` reconstructs
corrupted images, and ``transform`` encodes clean ones deterministically.

This run trains on 3,000 images for 8 epochs. With 20,000 images and 15
epochs (``benchmarks/bench_denoising.py``) the denoised images are 2.5 times
closer to the clean ones than the noisy input, and 5% closer than PCA's.
"""

import matplotlib.pyplot as plt
import numpy as np

from skae import DenoisingAutoencoder
from skae.datasets import load_fashion_mnist

X_train, _, X_test, _ = load_fashion_mnist(return_X_y=True)
X_train = X_train[:3000] / np.float32(255)
X_test = X_test[:1000] / np.float32(255)

dae = DenoisingAutoencoder(n_components=32, hidden_layer_sizes=(256, 128), noise="gaussian",
                           noise_level=0.2, max_iter=8, random_state=0).fit(X_train)

rng = np.random.default_rng(0)
X_noisy = np.clip(X_test + rng.normal(0, 0.2, X_test.shape), 0, 1).astype(np.float32)
X_denoised = dae.denoise(X_noisy)
print(f"MSE noisy:    {np.mean((X_noisy - X_test) ** 2):.4f}")
print(f"MSE denoised: {np.mean((X_denoised - X_test) ** 2):.4f}")

# %%
# Noisy (top), denoised (middle) and clean (bottom) test images.
fig, axes = plt.subplots(3, 8, figsize=(10, 4))
for column in range(8):
    for row, images in enumerate((X_noisy, X_denoised, X_test)):
        axes[row, column].imshow(images[column], cmap="gray", vmin=0, vmax=1)
        axes[row, column].axis("off")
for row, name in enumerate(("noisy", "denoised", "clean")):
    axes[row, 0].set_title(name, loc="left", fontsize=9)
fig.tight_layout()
plt.show()
