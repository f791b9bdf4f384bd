"""Metrics of the suite, all computed on held-out test rows.

- ``recon_mse``: mean squared error, over every test value, between the
  scaled test rows and ``inverse_transform(transform(X))``, in the scaled input
  space (so [0, 1] pixels for images, standardized units for tables).
- ``knn1_acc``, ``knn5_acc``: accuracy of a 1- and 5-nearest-neighbour
  classifier that looks up each test code among the training codes.
- ``kmeans_nmi``, ``kmeans_ari``: KMeans with k = number of classes
  (``n_init=10``, ``random_state=0``) on the test codes, against the labels.
- ``trustworthiness``: ``sklearn.manifold.trustworthiness`` with 5 neighbours,
  on a fixed random subsample of at most 2,000 test rows (scaled space).
- ``peak_fit_mem_mb``: peak resident memory of the process during ``fit``
  minus the resident memory just before it, sampled every 10 ms by a thread
  with psutil (so short spikes between samples can be missed; it includes
  the scaled copy of the training data). Before the fit, ``gc.collect()`` and
  glibc's ``malloc_trim(0)`` hand freed memory back to the system, so memory
  freed by earlier fits does not hide this one's growth.
"""

import ctypes
import ctypes.util
import gc
import threading
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.manifold import trustworthiness
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, pairwise_distances
from sklearn.neighbors import KNeighborsClassifier

TRUST_NEIGHBORS = 5
TRUST_ROWS = 2000
SUBSAMPLE_SEED = 0


def reconstruction_mse(X_scaled, X_reconstructed):
    """Mean squared error over all values of two arrays of the same size."""
    a = np.asarray(X_scaled, dtype=np.float64).reshape(len(X_scaled), -1)
    b = np.asarray(X_reconstructed, dtype=np.float64).reshape(len(X_reconstructed), -1)
    return float(np.mean((a - b) ** 2))


def knn_accuracy(Z_train, y_train, Z_test, y_test, n_neighbors):
    model = KNeighborsClassifier(n_neighbors=n_neighbors).fit(Z_train, y_train)
    return float(model.score(Z_test, y_test))


def kmeans_scores(Z_test, y_test, n_clusters):
    """NMI and ARI of KMeans clusters of the test codes against the labels."""
    clusters = KMeans(n_clusters=n_clusters, n_init=10, random_state=0).fit_predict(Z_test)
    return (float(normalized_mutual_info_score(y_test, clusters)),
            float(adjusted_rand_score(y_test, clusters)))


def trust_rows(n_test, n_rows=TRUST_ROWS):
    """Fixed indices of the test rows used for trustworthiness."""
    if n_test <= n_rows:
        return np.arange(n_test)
    return np.sort(np.random.default_rng(SUBSAMPLE_SEED).choice(n_test, n_rows, replace=False))


def input_distances(X_scaled_rows):
    """Pairwise distances in the input space, computed once per dataset."""
    return pairwise_distances(np.asarray(X_scaled_rows, dtype=np.float64))


def trustworthiness_score(distances, Z_rows):
    return float(trustworthiness(distances, Z_rows, n_neighbors=TRUST_NEIGHBORS,
                                 metric="precomputed"))


def release_free_memory():
    """Collect garbage and return freed heap pages to the system (glibc only)."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        try:
            ctypes.CDLL(libc_name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


class PeakMemory:
    """Context manager measuring the peak RSS growth of the process in MB.

    A daemon thread samples the resident set size every ``interval`` seconds
    with psutil. Without psutil it falls back to ``resource.getrusage``'s
    lifetime maximum, which only shows growth past the process's earlier peak.
    """

    def __init__(self, interval=0.01):
        self.interval = interval
        self.peak_mb = float("nan")

    def __enter__(self):
        release_free_memory()
        try:
            import psutil
        except ImportError:
            psutil = None
        self._stop = threading.Event()
        if psutil is None:
            import resource

            self._rusage = resource
            self._start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self._thread = None
            return self
        process = psutil.Process()
        self._start = process.memory_info().rss
        self._peak = self._start

        def sample():
            while not self._stop.wait(self.interval):
                self._peak = max(self._peak, process.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        if self._thread is None:
            usage = self._rusage.getrusage(self._rusage.RUSAGE_SELF).ru_maxrss / 1024
            self.peak_mb = max(0.0, usage - self._start)
            return False
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(0, self._peak - self._start) / 2**20
        return False


class Timer:
    """Wall-clock seconds of a block, in ``seconds``."""

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        self.seconds = time.perf_counter() - self._start
        return False
