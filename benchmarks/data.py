"""The benchmark suite's datasets: fixed splits, one scaling per dataset, class labels.

Every method sees the same raw rows and the same scaler (a fresh, unfitted copy
at the head of its Pipeline), so reconstruction errors compare in one space:

- ``fashion_mnist``: 28x28 uint8 images scaled to [0, 1] (``/ 255``); the
  official 60,000/10,000 split, or a fixed random subset of it. Read by
  ``skae.datasets.load_fashion_mnist`` from ``$SKAE_DATA`` (e.g.
  ``fashion_mnist.npz``); never downloaded.
- ``digits``: scikit-learn's 8x8 digits scaled to [0, 1] (``/ 16``).
- ``breast_cancer``, ``wine``, ``diabetes``: standardized by a
  ``StandardScaler`` fitted on the training rows. diabetes has a regression
  target; it is binned into 3 classes at the training target's terciles, used
  only by the kNN and KMeans metrics.

The small sets are split 75/25 (stratified for classes) with
``random_state=0``.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import FunctionTransformer, StandardScaler

# Seed of every split and subset, so runs on different days compare.
SPLIT_SEED = 0
TEST_SIZE = 0.25


def scale_values(X, factor):
    """Return ``X * factor`` as float32, keeping X's shape (images stay images)."""
    return np.asarray(X, dtype=np.float32) * np.float32(factor)


def pixel_scaler(max_value):
    """Transformer dividing pixel values by ``max_value``; shape-preserving."""
    return FunctionTransformer(scale_values, kw_args={"factor": 1.0 / max_value})


@dataclass(frozen=True)
class Dataset:
    """One benchmark dataset: raw train/test rows, their labels, their scaler.

    ``X_train`` and ``X_test`` are flat rows (n, n_features) of raw values;
    methods that want images reshape them to ``(n, *image_shape)``.
    """

    name: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    make_scaler: object
    scaling: str
    labels: str
    image_shape: tuple = None
    notes: tuple = field(default=())

    @property
    def n_features(self):
        return self.X_train.shape[1]

    @property
    def n_classes(self):
        return len(np.unique(self.y_train))

    @property
    def is_image(self):
        return self.image_shape is not None

    def as_input(self, X, images):
        """Rows as a method takes them: flat, or shaped as images."""
        return X.reshape(len(X), *self.image_shape) if images else X


def data_dir():
    """Folder holding downloaded data: ``$SKAE_DATA``, else the Makefile's
    default ``../shared/data`` beside the repository."""
    env = os.environ.get("SKAE_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def _subset(n_total, n_wanted, rng):
    if n_wanted is None or n_wanted >= n_total:
        return np.arange(n_total)
    return np.sort(rng.choice(n_total, n_wanted, replace=False))


def load_fashion_mnist(n_train=None, n_test=None):
    """Fashion-MNIST from :func:`data_dir`, optionally a fixed random subset.

    Raises FileNotFoundError (with skae's message on where to put the files)
    when the data is not there.
    """
    from skae.datasets import load_fashion_mnist as load_files

    X_train, y_train, X_test, y_test = load_files(data_dir(), return_X_y=True)
    rng = np.random.default_rng(SPLIT_SEED)
    train = _subset(len(X_train), n_train, rng)
    test = _subset(len(X_test), n_test, rng)
    notes = ()
    if len(train) < len(X_train) or len(test) < len(X_test):
        notes = (f"fixed random subset (seed {SPLIT_SEED}) of the official split",)
    return Dataset(
        name="fashion_mnist",
        X_train=X_train[train].reshape(len(train), -1),
        X_test=X_test[test].reshape(len(test), -1),
        y_train=np.asarray(y_train[train]),
        y_test=np.asarray(y_test[test]),
        make_scaler=lambda: pixel_scaler(255.0),
        scaling="pixels / 255 -> [0, 1]",
        labels="the 10 clothing classes",
        image_shape=X_train.shape[1:],
        notes=notes,
    )


def _split(X, y, stratify):
    return train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SPLIT_SEED,
        stratify=y if stratify else None,
    )


def load_digits_dataset():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = _split(X, y, stratify=True)
    return Dataset(
        name="digits", X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test,
        make_scaler=lambda: pixel_scaler(16.0), scaling="pixels / 16 -> [0, 1]",
        labels="the 10 digit classes", image_shape=(8, 8),
    )


def _table(name, loader, labels):
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = _split(X, y, stratify=True)
    return Dataset(
        name=name, X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test,
        make_scaler=StandardScaler, scaling="StandardScaler fitted on train",
        labels=labels,
    )


def load_diabetes_dataset():
    X, target = load_diabetes(return_X_y=True)
    X_train, X_test, t_train, t_test = _split(X, target, stratify=False)
    # Terciles of the training target, so the 3 classes are balanced in train.
    edges = np.quantile(t_train, [1 / 3, 2 / 3])
    return Dataset(
        name="diabetes", X_train=X_train, X_test=X_test,
        y_train=np.digitize(t_train, edges), y_test=np.digitize(t_test, edges),
        make_scaler=StandardScaler, scaling="StandardScaler fitted on train",
        labels="regression target binned into 3 classes at the train terciles",
    )


LOADERS = {
    "fashion_mnist": load_fashion_mnist,
    "digits": load_digits_dataset,
    "breast_cancer": lambda: _table("breast_cancer", load_breast_cancer,
                                    "malignant / benign"),
    "wine": lambda: _table("wine", load_wine, "the 3 cultivars"),
    "diabetes": load_diabetes_dataset,
}
DATASET_NAMES = tuple(LOADERS)


def load(name, fashion_rows=(None, None)):
    """Load a benchmark dataset by name.

    Parameters
    ----------
    name : str
        One of ``DATASET_NAMES``.
    fashion_rows : (int or None, int or None)
        Train and test rows of Fashion-MNIST's fixed subset (None: all).
    """
    if name not in LOADERS:
        raise ValueError(
            f"Unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}."
        )
    if name == "fashion_mnist":
        return load_fashion_mnist(*fashion_rows)
    return LOADERS[name]()
