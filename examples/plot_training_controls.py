"""
Training controls: partial_fit over memmap chunks and a learning-rate schedule
==============================================================================

An autoencoder learns the digits from a memory-mapped file, chunk by chunk,
with ``partial_fit``; another is fitted at once with ``learning_rate="cosine"``
and its rate per epoch is read from the history.
"""

import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skae import AutoencoderTransformer

X = (load_digits().data / 16.0).astype(np.float32)
rng = np.random.default_rng(0)
X = X[rng.permutation(len(X))]  # a representative first chunk

# %%
# partial_fit over the chunks of an np.memmap
# --------------------------------------------
folder = tempfile.mkdtemp()
path = os.path.join(folder, "digits.dat")
disk = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
disk[:] = X
disk.flush()
X_disk = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)

chunked = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(64, 32),
                                 n_threads=1, random_state=0)
for epoch in range(3):
    for chunk in np.array_split(np.arange(len(X_disk)), 6):
        chunked.partial_fit(X_disk[chunk[0]:chunk[-1] + 1])
print(f"{chunked.n_iter_} calls, last chunk's loss {chunked.loss_curve_[-1]:.4f}")

# %%
# A cosine schedule, visible in the history
# -----------------------------------------
cosine = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(64, 32),
                                learning_rate="cosine", max_iter=30,
                                early_stopping=False, n_threads=1,
                                random_state=0).fit(X)

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
left.plot(chunked.loss_curve_, label="partial_fit (one chunk per call)")
left.plot(cosine.loss_curve_, label='fit, learning_rate="cosine"')
left.set(xlabel="call / epoch", ylabel="training loss")
left.legend()
right.plot(cosine.net_.history[:, "event_lr"])
right.set(xlabel="epoch", ylabel="learning rate", title="cosine schedule")
fig.tight_layout()
plt.show()
