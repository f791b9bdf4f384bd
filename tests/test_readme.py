"""Every ```python block of README.md runs, on small data.

The blocks are run as written, except that the dataset loaders they call
return small subsets and the estimators train for at most two epochs, so
that the whole file stays fast. A block whose first
line is ``# requires: skae.NAME`` is skipped while skae has no ``NAME`` (the
mixed-table block, until the mixed-table API is merged).
"""

import re
from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets
from sklearn.utils import Bunch

import skae
import skae.datasets

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.M | re.S)
REQUIRES = re.compile(r"^# requires: skae\.(\w+)")


def test_readme_is_short_and_has_examples():
    assert len(README.read_text().splitlines()) <= 250
    assert len(BLOCKS) >= 5


def _small_digits(*args, return_X_y=False, **kwargs):
    digits = _load_digits(*args, **kwargs)
    X, y = digits.data[:300], digits.target[:300]
    return (X, y) if return_X_y else Bunch(data=X, target=y, images=digits.images[:300])


def _small_fashion_mnist(*args, return_X_y=False, **kwargs):
    path = skae.datasets.get_data_home() / "fashion_mnist.npz"
    if not path.exists():
        pytest.skip(f"Fashion-MNIST not found at {path}; set SKAE_DATA to its folder")
    with np.load(path) as data:
        arrays = (data["x_train"][:300], data["y_train"][:300],
                  data["x_test"][:100], data["y_test"][:100])
    return arrays if return_X_y else Bunch(images=arrays[0], target=arrays[1],
                                           images_test=arrays[2], target_test=arrays[3])


_load_digits = sklearn.datasets.load_digits
MAX_EPOCHS = 2


def _short(estimator_class):
    # A subclass keeps __init__'s signature, so get_params, clone and search work.
    class Short(estimator_class):
        def fit(self, X, y=None, **kwargs):
            self.max_iter = min(self.max_iter, MAX_EPOCHS)
            return super().fit(X, y, **kwargs)

    Short.__name__ = estimator_class.__name__
    return Short


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code, monkeypatch, tmp_path):
    required = REQUIRES.match(code)
    if required and not hasattr(skae, required.group(1)):
        pytest.skip(f"skae.{required.group(1)} is not in this version of skae")
    monkeypatch.setattr(sklearn.datasets, "load_digits", _small_digits)
    monkeypatch.setattr(skae.datasets, "load_fashion_mnist", _small_fashion_mnist)
    for name in ("AutoencoderTransformer", "DenoisingAutoencoder", "VAETransformer"):
        monkeypatch.setattr(skae, name, _short(getattr(skae, name)))
    monkeypatch.chdir(tmp_path)  # blocks that save figures write here
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
