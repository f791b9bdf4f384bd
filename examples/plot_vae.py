"""
Variational autoencoder: samples, interpolation, snapshots
==========================================================

The tutorials' VAE 784-400-20 on Fashion-MNIST: one hidden layer of 400
units and a 20-dimensional code. The fitted :class:`~skae.VAETransformer`
decodes draws from its prior (``sample``), decodes the line between the codes
of two images (``interpolate``), and the skorch callback
:class:`~skae.plotting.ReconstructionSnapshots` saves originals over
reconstructions every 10 epochs while it trains.

This run trains on 4,000 images for 20 epochs; samples become sharper and
more varied with the full training set and 50 or more epochs.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from skae import VAETransformer
from skae.datasets import load_fashion_mnist
from skae.plotting import ReconstructionSnapshots, plot_interpolation

X_train, _, X_test, _ = load_fashion_mnist(return_X_y=True)
X_train, X_test = X_train[:4000], X_test[:500]

snapshot_dir = Path(tempfile.mkdtemp())
snapshots = ReconstructionSnapshots(snapshot_dir, X=X_test[:10], every=10)
vae = VAETransformer(n_components=20, hidden_layer_sizes=(400,), max_iter=20,
                     early_stopping=False, callbacks=[snapshots], random_state=0)
vae.fit(X_train)
print(f"mean bound on log p(x) per test image: {vae.score(X_test):.1f} nats")

# %%
# Decoded draws from the prior.
samples = vae.sample(16, random_state=1)
fig, axes = plt.subplots(2, 8, figsize=(10, 2.8))
for image, ax in zip(samples, axes.ravel()):
    ax.imshow(image.reshape(28, 28), cmap="gray")
    ax.axis("off")
fig.suptitle("samples from the prior")

# %%
# Decoding the line between the codes of two test images.
fig, ax = plt.subplots(figsize=(10, 1.8))
plot_interpolation(vae, X_test[0], X_test[1], n_steps=10, ax=ax)

# %%
# The snapshots the callback saved, at epochs 10 and 20.
files = sorted(snapshot_dir.glob("*.png"))
fig, axes = plt.subplots(len(files), 1, figsize=(10, 2.2 * len(files)))
for path, ax in zip(files, axes):
    ax.imshow(plt.imread(path))
    ax.set_title(path.name, fontsize=9)
    ax.axis("off")
plt.show()
