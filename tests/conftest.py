"""Shared fixtures: seeds, small real datasets, Fashion-MNIST when available."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed_everything():
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def digits_split():
    """load_digits scaled to [0, 1], float32, fixed 75/25 split."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def fashion_mnist_path():
    data_home = os.environ.get("SKAE_DATA") or str(REPO_ROOT.parent / "shared" / "data")
    return Path(data_home) / "fashion_mnist.npz"


@pytest.fixture(scope="module")
def fashion_mnist_subset():
    """5,000 train and 1,000 test Fashion-MNIST images, uint8 (n, 28, 28), with labels."""
    path = fashion_mnist_path()
    if not path.exists():
        pytest.skip(f"Fashion-MNIST not found at {path}; set SKAE_DATA to its folder")
    with np.load(path) as data:
        return (data["x_train"][:5000], data["y_train"][:5000],
                data["x_test"][:1000], data["y_test"][:1000])
