"""VAETransformer: a variational autoencoder as a scikit-learn transformer."""

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import _BaseAutoencoder, fill_doc
from ._modules import VariationalAutoencoder
from ._net import VAENet


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
    n_components : int, default=2
        Dimension of the latent space.

    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        Decoder distribution. "bernoulli" (binary cross-entropy) needs data
        in [0, 1]; "gaussian" suits any real data, e.g. standardized tables.
        "auto" picks "bernoulli" for data in [0, 1], "gaussian" otherwise;
        the choice is ``likelihood_``.

    beta : float, default=1.0
        Weight of the KL term (beta-VAE).

    kl_warmup : int, default=0
        Epochs over which the KL weight ramps linearly from 0 to ``beta``.

    gaussian_scale : "learned" or float, default="learned"
        Standard deviation of the Gaussian likelihood: learned per feature,
        or fixed to this positive value.

    %(common_parameters)s

    Attributes
    ----------
    %(common_attributes)s

    likelihood_ : str
        The likelihood used, "bernoulli" or "gaussian".

    Notes
    -----
    ``transform`` returns the posterior mean, so the same input always gives
    the same codes. ``score_samples`` is the ELBO of each row in nats,
    evaluated at the posterior mean (the reconstruction term uses ``z = mu``
    rather than a random draw) with the exact KL term: deterministic, and a
    close single-point estimate of the ELBO. The training history
    ``net_.history`` holds ``train_recon``, ``train_kl`` (and ``valid_*``
    with early stopping) per epoch.

    References
    ----------
    Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes.
    ICLR.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAETransformer
    >>> X = load_digits().data / 16.0
    >>> vae = VAETransformer(n_components=2, max_iter=5, random_state=0).fit(X)
    >>> vae.likelihood_
    'bernoulli'
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

    def __init__(
        self,
        n_components=2,
        *,
        likelihood="auto",
        beta=1.0,
        kl_warmup=0,
        gaussian_scale="learned",
        architecture="mlp",
        hidden_layer_sizes=(128, 64),
        conv_channels=(32, 64, 64),
        input_shape=None,
        activation=None,
        dropout=0.0,
        batch_norm=None,
        optimizer="adam",
        learning_rate_init=1e-3,
        alpha=0.0,
        batch_size=128,
        max_iter=200,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        n_threads=None,
        callbacks=None,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            n_components,
            architecture=architecture,
            hidden_layer_sizes=hidden_layer_sizes,
            conv_channels=conv_channels,
            input_shape=input_shape,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
            optimizer=optimizer,
            learning_rate_init=learning_rate_init,
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
            random_state=random_state,
            verbose=verbose,
        )
        self.likelihood = likelihood
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.gaussian_scale = gaussian_scale

    def _check_fit_data(self, X):
        low, high = self._data_range(X)
        in_unit_interval = low >= 0.0 and high <= 1.0
        if self.likelihood == "bernoulli" and not in_unit_interval:
            raise ValueError(
                f"likelihood='bernoulli' needs data in [0, 1] but X spans "
                f"[{low:.4g}, {high:.4g}]; scale it with MinMaxScaler or use "
                "likelihood='gaussian'."
            )
        if self.likelihood == "auto":
            self.likelihood_ = "bernoulli" if in_unit_interval else "gaussian"
        else:
            self.likelihood_ = self.likelihood

    def _build_module(self):
        encoder, decoder = self._build_encoder_decoder(2 * self.n_components)
        learned = self.gaussian_scale == "learned"
        return VariationalAutoencoder(
            encoder, decoder,
            output_activation="sigmoid" if self.likelihood_ == "bernoulli" else "identity",
            n_features=self.n_features_in_,
            learn_scale=learned,
            init_log_scale=0.0 if learned else math.log(self.gaussian_scale),
        )

    def _net_params(self):
        return {"likelihood": self.likelihood_, "beta": self.beta,
                "kl_warmup": self.kl_warmup}

    def score_samples(self, X):
        """ELBO of each row in nats, at the posterior mean (higher is better).

        Parameters
        ----------
        X : {array-like, DataFrame} or image array

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            ``-(reconstruction NLL at z = mu + KL)``; see Notes.
        """
        check_is_fitted(self)
        net = self.net_

        def elbo(module, batch):
            recon, kl = net.negative_elbo_terms(module(batch), batch)
            return -(recon + kl)

        return self._map_input(X, elbo, 1).ravel()

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
        Z = torch.randn((n_samples, self.n_components), generator=generator).numpy()
        return self.inverse_transform(Z)

    def interpolate(self, x_a, x_b, n_steps=8):
        """Decode evenly spaced points on the line between the codes of two samples.

        Parameters
        ----------
        x_a, x_b : array-like
            One sample each: a row of ``n_features_in_`` values, or one image
            of the training images' shape.
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
        x = np.asarray(x)
        if x.size != self.n_features_in_:
            raise ValueError(
                f"{name} has {x.size} values but {type(self).__name__} was fitted on "
                f"samples of {self.n_features_in_} features; pass one row or one image."
            )
        if self._sample_shape is not None:
            return x.reshape(1, *self._sample_shape)
        return x.reshape(1, -1)
