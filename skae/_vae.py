"""VAETransformer: a variational autoencoder as a scikit-learn transformer."""

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import _BaseAutoencoder, _padded, fill_doc, spread_rows
from ._data import ArrayDataset
from ._runtime import torch_threads
from ._tabular import _is_polars, to_pandas
from ._modules import VariationalAutoencoder
from ._net import VAENet

# Posterior draws of the bound that ``score_samples`` computes.
SCORE_DRAWS = 16

# Floor of a learned Gaussian scale, relative to the data's root mean variance.
MIN_SCALE = 1e-3

# Training rows that the reconstruction scale is fitted on: it has one value per code.
SCALE_ROWS = 4096


@fill_doc
class VAETransformer(_BaseAutoencoder):
    """Variational autoencoder that encodes, samples and interpolates.

    The encoder gives the mean and log-variance of a Gaussian posterior; the
    latent sample is drawn by the reparameterisation trick while training
    (and in :meth:`sample`) from generators seeded by ``random_state``. The
    loss is the negative ELBO per row: a reconstruction term plus ``beta``
    times the KL divergence from the standard normal prior.

    Parameters
    ----------
    n_components : int or float, default=2
        Dimension of the latent space. A float in (0, 1) keeps the smallest
        number of PCA components that explain that fraction of the variance
        (``n_components_``).

    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        Decoder distribution. "bernoulli" (binary cross-entropy) needs data
        in [0, 1]; "gaussian" suits any real data, e.g. standardized tables
        or gray-level pixels. "auto" picks "gaussian" with ``init="pca"``
        (where the start is exactly probabilistic PCA), and with
        ``init="random"`` "bernoulli" for data in [0, 1], "gaussian"
        otherwise; the choice is ``likelihood_``.

    beta : float, default=1.0
        Weight of the KL term (beta-VAE).

    kl_warmup : int, default=0
        Epochs over which the KL weight ramps linearly from 0 to ``beta``.

    gaussian_scale : "learned" or float, default="learned"
        Standard deviation of the Gaussian likelihood: learned per feature
        (with ``init="pca"`` floored at 1e-3 times the data's root mean
        variance, so that a constant feature cannot make the likelihood
        unbounded), or fixed to this positive value.

    %(common_parameters)s

    Attributes
    ----------
    %(common_attributes)s

    likelihood_ : str
        The likelihood used, "bernoulli" or "gaussian".

    reconstruction_scale_ : ndarray of shape (n_components,)
        Factor applied to each code before it is decoded by
        :meth:`inverse_transform`, :meth:`reconstruct` and
        :meth:`interpolate` (not by :meth:`sample`); see Notes.

    Notes
    -----
    ``transform`` returns the posterior mean, so the same input always gives
    the same codes. ``score_samples`` is a lower bound on ``log p(x)`` of
    each row in nats: the importance-weighted bound of Burda et al. with
    ``SCORE_DRAWS`` (16) posterior draws, from a generator seeded by
    ``random_state``, the same draws for every row and at every call, so
    a row's score depends on neither the call nor the rows beside it. The training history ``net_.history`` holds ``train_recon``,
    ``train_kl`` (and ``valid_*`` with early stopping) per epoch.

    **Reconstructions.** A posterior mean is shrunk toward the prior's
    mean: probabilistic PCA's is its least-squares code times
    ``(L_k - s2) / L_k`` per component, so decoding it as it is
    reconstructs worse than PCA (by ``s2**2 / L_k`` per component, summed
    over the features). Codes are therefore decoded at
    ``reconstruction_scale_ * z``: after training, the factors that give the
    least squared error on up to ``SCALE_ROWS`` (4096) training rows, found
    by L-BFGS with the network fixed and kept only where they lower that
    error (Tipping and Bishop's least-squares reconstruction, section 3.3,
    which at the PCA start is exactly PCA's). :meth:`sample` decodes draws
    from the prior unscaled: they are not shrunk. Of a table with
    categorical columns the factors stay 1, squared error being no
    criterion for a category.

    **The PCA start** (``init="pca"``). A linear Gaussian VAE is
    probabilistic PCA (Lucas et al. 2019), so the Gaussian VAE starts at
    PPCA's maximum-likelihood solution (Tipping and Bishop 1999): decoder
    ``mean + W z`` with ``W = U_k (L_k - s2 I)^(1/2)``, ``s2`` the mean of
    the discarded eigenvalues (as ``PCA.noise_variance_``), the scales at
    ``sqrt(s2)``, and the encoder's mean and variance at the exact
    posterior ``N(L_k^-1 (L_k - s2 I)^(1/2) U_k^T (x - mean), s2 L_k^-1)``.
    The bound then equals PPCA's log-likelihood, ``PCA(k).score(X)``, the
    reconstruction factors start at ``L_k / (L_k - s2)``, so the start
    reconstructs as PCA does, and with early stopping the returned weights
    never have a lower validation bound, nor (as measured while training,
    before the factors are refitted) reconstruct the validation rows worse
    than the start. With ``likelihood="bernoulli"`` the encoder starts
    the same way and the decoder outputs Bernoulli means ``mean + W z``
    (clamped into [1e-4, 1 - 1e-4] in the loss and into [0, 1] when
    decoding), so that reconstructions at the posterior mean start as
    PCA's, clipped into [0, 1], which is never further from a pixel.

    References
    ----------
    Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes.
    ICLR.

    Tipping, M. E. and Bishop, C. M. (1999). Probabilistic principal
    component analysis. JRSS B 61(3).

    Burda, Y., Grosse, R. and Salakhutdinov, R. (2016). Importance weighted
    autoencoders. ICLR.

    Lucas, J., Tucker, G., Grosse, R. and Norouzi, M. (2019). Don't blame
    the ELBO! A linear VAE perspective on posterior collapse. NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAETransformer
    >>> X = load_digits().data / 16.0
    >>> vae = VAETransformer(n_components=2, max_iter=5, random_state=0).fit(X)
    >>> vae.likelihood_
    'gaussian'
    >>> vae.transform(X[:3]).shape
    (3, 2)
    >>> vae.sample(4, random_state=1).shape
    (4, 64)
    >>> vae.interpolate(X[0], X[1], n_steps=8).shape
    (8, 64)
    """

    _parameter_constraints = {
        **_BaseAutoencoder._parameter_constraints,
        "likelihood": [StrOptions({"auto", "bernoulli", "gaussian"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Integral, 0, None, closed="left")],
        "gaussian_scale": [StrOptions({"learned"}), Interval(Real, 0, None, closed="neither")],
    }
    _net_class = VAENet
    # The kept weights reconstruct the validation rows no worse than the start.
    _selection_constraint = "valid_mse"
    _structural_parameters = (*_BaseAutoencoder._structural_parameters, "likelihood",
                              "gaussian_scale")
    _setup_parameters = (*_BaseAutoencoder._setup_parameters, "beta", "kl_warmup")

    def __init__(
        self,
        n_components=2,
        *,
        init="pca",
        likelihood="auto",
        beta=1.0,
        kl_warmup=0,
        gaussian_scale="learned",
        architecture="mlp",
        hidden_layer_sizes="auto",
        conv_channels=(32, 64, 64),
        input_shape=None,
        categorical_features="from_dtype",
        activation=None,
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
        self.likelihood = likelihood
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.gaussian_scale = gaussian_scale

    def _check_fit_data(self, X, pca=None):
        low, high = self._data_range(X)
        in_unit_interval = low >= 0.0 and high <= 1.0 and not self._mixed
        if self.likelihood == "bernoulli" and self._mixed:
            raise ValueError(
                "likelihood='bernoulli' does not apply to a table with categorical "
                "columns or missing values; its likelihood is Gaussian for numeric "
                "cells and categorical for the others: use 'auto' or 'gaussian'.")
        if self.likelihood == "bernoulli" and not in_unit_interval:
            raise ValueError(
                f"likelihood='bernoulli' needs data in [0, 1] but X spans "
                f"[{low:.4g}, {high:.4g}]; scale it with MinMaxScaler or use "
                "likelihood='gaussian'."
            )
        if self.likelihood == "auto":
            self.likelihood_ = ("bernoulli" if in_unit_interval and self.init == "random"
                                else "gaussian")
        else:
            self.likelihood_ = self.likelihood
        self._data_min, self._data_max = low, high
        self._min_log_scale = -math.inf
        if self.gaussian_scale == "learned" and pca is not None:
            # The floor of a learned scale, relative to the data's spread: the
            # total variance is what PCA's explained variance is a ratio of.
            explained = float(pca.explained_variance_ratio_.sum())
            total = float(pca.explained_variance_.sum()) / explained if explained > 0 else 0.0
            root_mean_variance = math.sqrt(total / self._n_model_features)
            self._min_log_scale = math.log(MIN_SCALE * max(root_mean_variance, 1e-12))

    @property
    def _output_activation(self):
        if self.init == "random":
            return "sigmoid" if self.likelihood_ == "bernoulli" else "identity"
        unit = self._data_min >= 0.0 and self._data_max <= 1.0 and not self._mixed
        return "clip" if unit else "identity"

    def _build_module(self, start=None):
        encoder, decoder = self._build_encoder_decoder(2 * self.n_components_, start)
        learned = self.gaussian_scale == "learned"
        init_log_scale = 0.0 if learned else math.log(self.gaussian_scale)
        if start is not None and learned:
            init_log_scale = 0.5 * math.log(self._ppca_noise_variance(start))
        module = VariationalAutoencoder(
            encoder, decoder,
            output_activation=self._output_activation,
            n_features=self._n_model_features,
            learn_scale=learned,
            init_log_scale=init_log_scale,
            min_log_scale=self._min_log_scale,
            output_bounds=(self._data_min, self._data_max),
            n_components=self.n_components_,
        )
        if start is not None and not self._mixed:
            scale = self._linear_start(start)["reconstruction_scale"]
            with torch.no_grad():
                module.reconstruction_scale.copy_(torch.as_tensor(scale))
        return module

    def _ppca_noise_variance(self, pca):
        """PPCA's noise variance (``pca.noise_variance_``), kept above the scale's floor."""
        floor = math.exp(2 * self._min_log_scale) if math.isfinite(self._min_log_scale) else 0
        return max(float(pca.noise_variance_), floor, 1e-12)

    def _linear_start(self, pca):
        k = self.n_components_
        components = _padded(pca.components_, k)
        noise = (self._ppca_noise_variance(pca) if self.gaussian_scale == "learned"
                 else float(self.gaussian_scale) ** 2)
        # W = U (L - s2)^(1/2) at PPCA's maximum likelihood; codes PCA lacks
        # (more than its components) get w = 0: decoded to nothing, posterior = prior.
        eigenvalues = _padded(pca.explained_variance_, k)
        ml_noise = self._ppca_noise_variance(pca)
        w = np.sqrt(np.maximum(eigenvalues - ml_noise, 0.0))
        w[len(pca.components_):] = 0.0
        # The exact posterior of z given x under that model: precision M = w^2 + s2.
        m = w ** 2 + noise
        encoder_weight = np.zeros((2 * k, components.shape[1]))
        encoder_weight[:k] = (w / m)[:, None] * components
        encoder_bias = np.concatenate([np.zeros(k), np.log(noise / m)])
        encoder_bias[k:][w == 0] = 0.0
        return {
            "encoder_weight": encoder_weight,
            "encoder_bias": encoder_bias,
            "decoder_weight": components.T * w,
            "decoder_bias": pca.mean_,
            "code_scale": np.ones(k),
            # The posterior mean shrinks each code by w^2 / m; decoding undoes it.
            "reconstruction_scale": np.where(w > 0, m / np.maximum(w ** 2, 1e-300), 1.0),
        }

    def _net_params(self):
        return {"likelihood": self.likelihood_, "beta": self.beta,
                "kl_warmup": self.kl_warmup,
                "bernoulli_logits": self.init == "random"}

    def score_samples(self, X):
        """Lower bound on the log-likelihood of each row, in nats (higher is better).

        The importance-weighted bound with ``SCORE_DRAWS`` posterior draws
        from a generator seeded by ``random_state`` (the same at every call);
        see Notes.

        Parameters
        ----------
        X : {array-like, DataFrame} or image array

        Returns
        -------
        log_likelihood_bound : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        net = self.net_
        generator = torch.Generator().manual_seed(self._score_seed)
        draws = torch.randn((SCORE_DRAWS, self.n_components_), generator=generator)

        def bound(module, batch):
            return net.log_likelihood_bound(module, batch, draws)

        return self._map_input(X, bound, 1).ravel()

    def _after_training(self, X, sample_weight=None):
        self._fit_reconstruction_scale(X, sample_weight)
        super()._after_training(X, sample_weight)

    def _fit_reconstruction_scale(self, X, sample_weight):
        """Fit ``reconstruction_scale_`` on up to ``SCALE_ROWS`` training rows; see Notes."""
        net = self.net_
        # Squared error is no criterion for a category: such codes decode unscaled.
        if not self._mixed:
            rows = spread_rows(len(X), SCALE_ROWS)
            codes = self._map_batches(X[rows], lambda module, batch: module.encode(batch),
                                      self.n_components_)
            targets = ArrayDataset(X[rows], self._module_input_shape).batch(
                start=0, stop=len(rows))
            weight = None if sample_weight is None else np.asarray(sample_weight)[rows]
            with torch_threads(self.n_threads):
                net.fit_reconstruction_scale(torch.from_numpy(codes).to(net.device),
                                             targets.to(net.device), weight)
        self.reconstruction_scale_ = net.module_.reconstruction_scale.cpu().numpy().copy()

    def _set_training_results(self, net, **kwargs):
        super()._set_training_results(net, **kwargs)
        self._score_seed = int(np.random.SeedSequence(net.random_seed).generate_state(4)[3])

    def sample(self, n_samples=1, random_state=None):
        """Decode ``n_samples`` draws from the standard normal prior.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; the same value gives the same samples.

        Returns
        -------
        X_new : ndarray
            New rows (or images) of the training data's kind, see
            :meth:`inverse_transform`; means of the decoder distribution.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples={n_samples!r} must be a positive int.")
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        Z = torch.randn((n_samples, self.n_components_), generator=generator).numpy()
        return self._decode_codes(Z, lambda module, batch: module.generate(batch))

    def interpolate(self, x_a, x_b, n_steps=8):
        """Decode evenly spaced points on the line between the codes of two samples.

        Parameters
        ----------
        x_a, x_b : array-like, DataFrame or Series
            One sample each: a row of ``n_features_in_`` values, or one image
            of the training images' shape; of a model fitted on a mixed
            table, a one-row frame or a row (Series) of it.
        n_steps : int, default=8
            Number of points, both ends included (at least 2).

        Returns
        -------
        path : ndarray
            ``n_steps`` decoded rows (or images) of the training data's kind,
            from ``x_a``'s reconstruction to ``x_b``'s.
        """
        check_is_fitted(self)
        if not isinstance(n_steps, Integral) or isinstance(n_steps, bool) or n_steps < 2:
            raise ValueError(f"n_steps={n_steps!r} must be an int of at least 2.")
        codes = [self.transform(self._one_sample(x, name)) for x, name in
                 ((x_a, "x_a"), (x_b, "x_b"))]
        weights = np.linspace(0.0, 1.0, n_steps, dtype=np.float32)[:, None]
        return self.inverse_transform((1 - weights) * codes[0] + weights * codes[1])

    def _one_sample(self, x, name):
        if self._mixed and (hasattr(x, "iloc") or _is_polars(x)):
            frame = to_pandas(x)
            if frame is None:  # a row as a Series: back to one row of the fitted dtypes
                frame = x.to_frame().T.set_axis(self._table.columns_, axis=1).astype(
                    self._table.dtypes_)
            if len(frame) != 1:
                raise ValueError(f"{name} has {len(frame)} rows; pass one row.")
            return frame
        x = np.asarray(x)
        if x.size != self.n_features_in_:
            raise ValueError(
                f"{name} has {x.size} values but {type(self).__name__} was fitted on "
                f"samples of {self.n_features_in_} features; pass one row or one image."
            )
        if self._sample_shape is not None:
            return x.reshape(1, *self._sample_shape)
        return x.reshape(1, -1)
