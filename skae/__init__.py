"""skae: scikit-learn estimators that learn autoencoders with PyTorch, through skorch."""

from ._autoencoder import AutoencoderTransformer, DenoisingAutoencoder
from ._dask import transform_dask
from ._imputer import AutoencoderImputer
from ._io import load
from ._vae import VAETransformer

__version__ = "0.1.0"

__all__ = [
    "AutoencoderImputer",
    "AutoencoderTransformer",
    "DenoisingAutoencoder",
    "VAETransformer",
    "load",
    "transform_dask",
    "__version__",
]
