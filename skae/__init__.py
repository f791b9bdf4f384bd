"""skae: scikit-learn estimators that learn autoencoders with PyTorch, through skorch."""

from . import _io
from ._autoencoder import AutoencoderTransformer, DenoisingAutoencoder
from ._dask import transform_dask
from ._imputer import AutoencoderImputer
from ._base import _BaseAutoencoder
from ._io import load
from ._vae import VAETransformer

__version__ = "0.1.0"

# The estimators import nothing of the file format: est.save and skae.load
# reach them through the classes and the writer wired up here.
for _estimator in (AutoencoderTransformer, DenoisingAutoencoder, VAETransformer):
    _io.register_estimator(_estimator)
_BaseAutoencoder._save_file = _io.save
del _estimator

__all__ = [
    "AutoencoderImputer",
    "AutoencoderTransformer",
    "DenoisingAutoencoder",
    "VAETransformer",
    "load",
    "transform_dask",
    "__version__",
]
