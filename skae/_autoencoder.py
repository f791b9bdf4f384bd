"""AutoencoderTransformer and DenoisingAutoencoder."""

import warnings
from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

import numpy as np

from ._base import _BaseAutoencoder, _padded, fill_doc
from ._modules import Autoencoder
from ._net import AutoencoderNet, DenoisingNet
from ._noise import NOISE_KINDS, Corruption


@fill_doc
class AutoencoderTransformer(_BaseAutoencoder):
    """Autoencoder as a scikit-learn transformer, trained with skorch.

    ``transform`` returns the encoder's codes, ``inverse_transform`` decodes
    codes back to the input space, and ``score`` is the negative mean squared
    reconstruction error, so ``GridSearchCV`` needs no scorer.

    Parameters
    ----------
    n_components : int or float, default=2
        Width of the code (the bottleneck). A float in (0, 1) keeps the
        smallest number of PCA components that explain that fraction of the
        variance, as :class:`~sklearn.decomposition.PCA` does
        (``n_components_``).

    %(common_parameters)s

    output_activation : {"auto", "identity", "clip", "sigmoid"}, default="auto"
        Activation of the decoder's last layer. "clip" is linear while
        training and clamps reconstructions into the training data's range
        [min, max] at inference, which can only lower the error of targets
        inside that range. "sigmoid" cannot start from PCA's solution, so it
        needs ``init="random"``. "auto" picks "clip" when the training data
        lies in [0, 1] (uint8 images always do) and "identity" otherwise,
        or with ``init="random"`` "sigmoid" for data in [0, 1]; the choice
        is ``output_activation_``.

    Attributes
    ----------
    %(common_attributes)s

    output_activation_ : str
        The output activation used.

    See Also
    --------
    DenoisingAutoencoder : Trained to rebuild clean input from corrupted input.
    VAETransformer : Variational autoencoder that can also sample.
    sklearn.decomposition.PCA : The linear baseline.

    Notes
    -----
    With ``init="pca"`` the encoder is ``z = P (x - mean) + g(x)`` and the
    decoder ``mean + P^T z + h(z)``, where ``P`` holds PCA's components of
    the training rows and ``g``, ``h`` are the network (MLP or
    convolutional) with their last layers at zero: the model starts as PCA,
    reconstruction for reconstruction, and with early stopping returns the
    weights of the best epoch on the validation rows, the start included,
    so its validation error is never above PCA's.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X = load_digits().data / 16.0
    >>> ae = AutoencoderTransformer(n_components=2, max_iter=5, random_state=0)
    >>> codes = ae.fit_transform(X)
    >>> codes.shape
    (1797, 2)
    >>> ae.inverse_transform(codes).shape
    (1797, 64)
    """

    _parameter_constraints = {
        **_BaseAutoencoder._parameter_constraints,
        "output_activation": [StrOptions({"auto", "identity", "clip", "sigmoid"})],
    }
    _net_class = AutoencoderNet
    _structural_parameters = (*_BaseAutoencoder._structural_parameters, "output_activation")

    def __init__(
        self,
        n_components=2,
        *,
        init="pca",
        architecture="mlp",
        hidden_layer_sizes="auto",
        conv_channels=(32, 64, 64),
        input_shape=None,
        categorical_features="from_dtype",
        activation=None,
        output_activation="auto",
        dropout=0.0,
        batch_norm=None,
        optimizer="adam",
        learning_rate_init=1e-3,
        learning_rate="constant",
        alpha=0.0,
        batch_size="auto",
        max_iter=200,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        n_threads=None,
        callbacks=None,
        warm_start=False,
        distributed="auto",
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            n_components,
            init=init,
            architecture=architecture,
            hidden_layer_sizes=hidden_layer_sizes,
            conv_channels=conv_channels,
            input_shape=input_shape,
            categorical_features=categorical_features,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
            optimizer=optimizer,
            learning_rate_init=learning_rate_init,
            learning_rate=learning_rate,
            alpha=alpha,
            batch_size=batch_size,
            max_iter=max_iter,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            n_threads=n_threads,
            callbacks=callbacks,
            warm_start=warm_start,
            distributed=distributed,
            random_state=random_state,
            verbose=verbose,
        )
        self.output_activation = output_activation

    def _check_fit_data(self, X, pca=None):
        self._data_min, self._data_max = self._data_range(X)
        in_unit_interval = self._data_min >= 0.0 and self._data_max <= 1.0
        if self._mixed:
            # Numbers in standardized units and logits of categories: unbounded.
            if self.output_activation not in ("auto", "identity"):
                raise ValueError(
                    f"output_activation={self.output_activation!r} does not apply to a "
                    "table with categorical columns or missing values, whose outputs "
                    "are standardized numbers and logits; use 'auto' or 'identity'.")
            self.output_activation_ = "identity"
        elif self.output_activation == "auto":
            bounded = "sigmoid" if self.init == "random" else "clip"
            self.output_activation_ = bounded if in_unit_interval else "identity"
        else:
            self.output_activation_ = self.output_activation
        if self.output_activation_ == "sigmoid" and self.init == "pca":
            raise ValueError(
                "output_activation='sigmoid' cannot start from PCA's reconstruction "
                "(init='pca'); use output_activation='clip' (linear, clamped into "
                "the data's range at inference) or init='random'."
            )
        if self.output_activation_ == "sigmoid" and not in_unit_interval:
            warnings.warn(
                f"output_activation='sigmoid' only produces values in (0, 1) but X "
                f"spans [{self._data_min:.4g}, {self._data_max:.4g}]; scale X with "
                "MinMaxScaler or use output_activation='identity' (with "
                "StandardScaler for columns of very different scales).",
                UserWarning,
            )

    def _build_module(self, start=None):
        encoder, decoder = self._build_encoder_decoder(self.n_components_, start)
        return Autoencoder(encoder, decoder, self.output_activation_,
                           output_bounds=(self._data_min, self._data_max))

    def _linear_start(self, pca):
        # PCA's own maps: codes z = P (x - mean), reconstructions mean + P^T z.
        components = _padded(pca.components_, self.n_components_)
        std = np.sqrt(np.maximum(_padded(pca.explained_variance_, self.n_components_), 0.0))
        return {
            "encoder_weight": components,
            "encoder_bias": np.zeros(self.n_components_),
            "decoder_weight": components.T,
            "decoder_bias": pca.mean_,
            # Codes in units of their spread for the decoder's branch; a code
            # of no spread (PCA's null space, padding) keeps unit scale, else
            # rows off the training rows' span would reach it magnified.
            "code_scale": np.where(std > 1e-6 * std.max(initial=0.0), std, 1.0),
        }


@fill_doc
class DenoisingAutoencoder(AutoencoderTransformer):
    """Autoencoder trained to rebuild clean input from corrupted input.

    Each training batch is corrupted afresh (every batch of every epoch) with
    noise drawn from a generator seeded by ``random_state``; the loss compares
    the reconstruction with the clean batch. ``transform``,
    ``inverse_transform``, ``score`` and ``score_samples`` see the input as
    given, never corrupted. With ``early_stopping`` the validation rows are
    corrupted too, with the same noise at every epoch.

    Parameters
    ----------
    n_components : int or float, default=2
        Width of the code (the bottleneck). A float in (0, 1) keeps the
        smallest number of PCA components that explain that fraction of the
        variance, as :class:`~sklearn.decomposition.PCA` does
        (``n_components_``).

    noise : {"gaussian", "masking", "salt_and_pepper"} or callable, \
default="gaussian"
        "gaussian" adds noise of standard deviation ``noise_level``;
        "masking" sets each value to zero with probability ``noise_level``;
        "salt_and_pepper" sets each value to the training data's minimum or
        maximum (half each) with probability ``noise_level``. A callable is
        called as ``noise(X_batch, generator)`` with a copy of the batch
        (a float32 tensor in the model's space) and a ``torch.Generator``,
        and returns the corrupted tensor; define it at module level so the
        estimator pickles.

    noise_level : float, default=0.2
        Standard deviation (gaussian) or probability (masking, salt and
        pepper, at most 1).

    clip : bool or tuple of (float, float) or None, default=None
        Clamp corrupted values: True clamps into the training data's range,
        a pair into those bounds, None or False does not clamp.

    preserve_clean : bool, default=True
        With early stopping, keep only epochs that reconstruct the clean
        validation rows no worse than the start (PCA's error, with
        ``init="pca"``). False selects by the denoising loss alone: heavy
        corruption (masking or salt and pepper of 0.2 and more) can make
        every epoch that denoises better than PCA reconstruct clean rows
        worse, and then only False lets training leave the start.

    %(common_parameters)s

    output_activation : {"auto", "identity", "clip", "sigmoid"}, default="auto"
        Activation of the decoder's last layer, as in
        :class:`AutoencoderTransformer`.

    Attributes
    ----------
    %(common_attributes)s

    output_activation_ : str
        The output activation used.

    See Also
    --------
    AutoencoderTransformer : The same model without corruption.

    Notes
    -----
    With ``init="pca"`` it starts from PCA of the clean rows, as
    :class:`AutoencoderTransformer` does, and early stopping compares the
    epochs, the start included, by the denoising loss of the validation
    rows, among those that reconstruct the clean validation rows no worse
    than the start (``valid_clean_mse`` in the history): denoising can
    cost accuracy on clean rows where PCA is nearly lossless, and the
    model never pays it beyond PCA's error. ``preserve_clean=False`` drops
    that condition, for input that is always corrupted when the model
    sees it; a fit that kept its start because of the condition says so
    in its warning.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import DenoisingAutoencoder
    >>> X = load_digits().data / 16.0
    >>> dae = DenoisingAutoencoder(n_components=16, noise_level=0.2, max_iter=5,
    ...                            random_state=0).fit(X)
    >>> noisy = X + np.random.default_rng(0).normal(0, 0.2, X.shape)
    >>> dae.denoise(noisy).shape
    (1797, 64)
    """

    _parameter_constraints = {
        **AutoencoderTransformer._parameter_constraints,
        "noise": [StrOptions(set(NOISE_KINDS)), callable],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "clip": [None, "boolean", tuple, list],
        "preserve_clean": ["boolean"],
    }
    _net_class = DenoisingNet
    _setup_parameters = (*AutoencoderTransformer._setup_parameters, "noise", "noise_level",
                         "clip", "preserve_clean")
    _constraint_hint = "set preserve_clean=False to select by the denoising loss alone"

    @property
    def _selection_constraint(self):
        # The kept weights reconstruct clean validation rows no worse than the start.
        return "valid_clean_mse" if self.preserve_clean else None

    def __init__(
        self,
        n_components=2,
        *,
        init="pca",
        noise="gaussian",
        noise_level=0.2,
        clip=None,
        preserve_clean=True,
        architecture="mlp",
        hidden_layer_sizes="auto",
        conv_channels=(32, 64, 64),
        input_shape=None,
        categorical_features="from_dtype",
        activation=None,
        output_activation="auto",
        dropout=0.0,
        batch_norm=None,
        optimizer="adam",
        learning_rate_init=1e-3,
        learning_rate="constant",
        alpha=0.0,
        batch_size="auto",
        max_iter=200,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        n_threads=None,
        callbacks=None,
        warm_start=False,
        distributed="auto",
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            n_components,
            init=init,
            architecture=architecture,
            hidden_layer_sizes=hidden_layer_sizes,
            conv_channels=conv_channels,
            input_shape=input_shape,
            categorical_features=categorical_features,
            activation=activation,
            output_activation=output_activation,
            dropout=dropout,
            batch_norm=batch_norm,
            optimizer=optimizer,
            learning_rate_init=learning_rate_init,
            learning_rate=learning_rate,
            alpha=alpha,
            batch_size=batch_size,
            max_iter=max_iter,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            n_threads=n_threads,
            callbacks=callbacks,
            warm_start=warm_start,
            distributed=distributed,
            random_state=random_state,
            verbose=verbose,
        )
        self.noise = noise
        self.noise_level = noise_level
        self.clip = clip
        self.preserve_clean = preserve_clean

    def _check_fit_data(self, X, pca=None):
        super()._check_fit_data(X, pca)
        if self._mixed and self.noise == "salt_and_pepper":
            raise ValueError(
                "noise='salt_and_pepper' does not apply to a table with categorical "
                "columns or missing values; use 'masking' (which hides whole cells) "
                "or 'gaussian' (which perturbs observed numbers).")
        if self.noise in ("masking", "salt_and_pepper") and self.noise_level > 1:
            raise ValueError(
                f"noise_level={self.noise_level!r} is a probability for "
                f"noise={self.noise!r}; choose a value in [0, 1]."
            )
        self._clip_bounds = self._resolve_clip()

    def _resolve_clip(self):
        if self.clip is None or self.clip is False:
            return None
        if self.clip is True:
            return (self._data_min, self._data_max)
        bounds = tuple(self.clip)
        if len(bounds) != 2 or not all(isinstance(b, Real) for b in bounds) \
                or not bounds[0] < bounds[1]:
            raise ValueError(
                f"clip={self.clip!r} must be True, None or a pair (low, high) with "
                "low < high."
            )
        return (float(bounds[0]), float(bounds[1]))

    def _net_params(self):
        return {"corruption": Corruption(
            self.noise, self.noise_level, low=self._data_min, high=self._data_max,
            clip=self._clip_bounds, cells=self._table_cells,
        )}

    def denoise(self, X):
        """Reconstruct X, removing the kind of corruption seen in training.

        Parameters
        ----------
        X : {array-like, DataFrame} or image array
            Corrupted rows (or images).

        Returns
        -------
        X_denoised : ndarray or DataFrame
            Same shape and type as X (see :meth:`reconstruct`).
        """
        return self.reconstruct(X)
