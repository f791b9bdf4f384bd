"""
KMeans and t-SNE on the codes
=============================

The codes of an autoencoder are features for other estimators. Here KMeans
clusters 16-D codes of Fashion-MNIST test images, and scikit-learn's
:class:`~sklearn.manifold.TSNE` maps the same codes to 2-D, where image
thumbnails are drawn at their t-SNE positions.

This run trains on 4,000 images for 10 epochs and maps 1,000 test images;
the full training set and more epochs give tighter clusters (a KMeans NMI of
about 0.5 and more against the classes).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from sklearn.metrics import normalized_mutual_info_score

from skae import AutoencoderTransformer
from skae.datasets import load_fashion_mnist

X_train, _, X_test, y_test = load_fashion_mnist(return_X_y=True)
X_train, X_test, y_test = X_train[:4000], X_test[:1000], y_test[:1000]

ae = AutoencoderTransformer(n_components=16, max_iter=10, random_state=0).fit(X_train)
codes = ae.transform(X_test)

clusters = KMeans(10, n_init=10, random_state=0).fit_predict(codes)
print(f"KMeans NMI against the classes: {normalized_mutual_info_score(y_test, clusters):.3f}")

embedding = TSNE(2, init="pca", perplexity=30, random_state=0).fit_transform(codes)

# %%
# The t-SNE map coloured by KMeans cluster, with a thumbnail of every 12th image.
fig, ax = plt.subplots(figsize=(9, 9))
ax.scatter(embedding[:, 0], embedding[:, 1], c=clusters, cmap="tab10", s=6)
for i in np.arange(0, len(X_test), 12):
    thumbnail = OffsetImage(X_test[i], cmap="gray_r", zoom=0.6)
    ax.add_artist(AnnotationBbox(thumbnail, embedding[i], frameon=False))
ax.set_title("t-SNE of 16-D autoencoder codes, coloured by KMeans cluster")
ax.axis("off")
plt.show()
