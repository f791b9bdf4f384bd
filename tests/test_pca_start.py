"""The PCA start (``init="pca"``) and the data-dependent defaults of issue 17."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
from skae._base import auto_batch_size, auto_hidden_layer_sizes

DATA = Path(__file__).resolve().parent / "data"

# Fits of one epoch, on purpose: the start is what these tests look at.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.* kept its:UserWarning", "ignore::sklearn.exceptions.ConvergenceWarning")


class StartCapture(Callback):
    """Records what the network computes before its first optimizer step."""

    def __init__(self, X):
        self.X = X

    def on_train_begin(self, net, **kwargs):
        module = net.module_
        X = torch.as_tensor(self.X)
        with torch.no_grad():
            module.train()
            self.train_output_ = module(X)[0].detach().clone()
            module.eval()
            codes = module.encode(X)
            self.codes_ = codes.numpy().copy()
            self.reconstruction_ = module.decode(codes).numpy().copy()
            if hasattr(net, "log_likelihood_bound"):
                draws = torch.randn((4, codes.shape[1]), generator=torch.Generator().manual_seed(0))
                self.bound_ = net.log_likelihood_bound(module, X, draws).numpy()
                self.log_scale_ = module.gaussian_log_scale().numpy().copy()


def _captured(estimator):
    """The StartCapture the fit used (skae copies the callbacks it is given)."""
    return next(cb for _, cb in estimator.net_.callbacks_ if isinstance(cb, StartCapture))


@pytest.fixture(scope="module")
def wine():
    return StandardScaler().fit_transform(load_wine().data).astype(np.float32)


def _pca_reconstruction(X, k):
    pca = PCA(k).fit(X.reshape(len(X), -1).astype(np.float64))
    return pca, pca.inverse_transform(pca.transform(X.reshape(len(X), -1)))


@pytest.mark.parametrize("cls", [AutoencoderTransformer, DenoisingAutoencoder])
@pytest.mark.parametrize("k", [2, 7])
def test_start_reconstructs_as_pca_on_tables(cls, k, wine):
    est = cls(k, max_iter=1, random_state=0, callbacks=[StartCapture(wine)]).fit(wine)
    capture = _captured(est)
    pca, expected = _pca_reconstruction(wine, k)
    np.testing.assert_allclose(capture.reconstruction_, expected, atol=2e-5)
    np.testing.assert_allclose(capture.train_output_.numpy(), expected, atol=2e-5)
    np.testing.assert_allclose(capture.codes_, pca.transform(wine), atol=2e-5)


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_start_on_unit_interval_images_is_clipped_pca(architecture, digits_split):
    X = digits_split[0][:300]
    images = X.reshape(-1, 8, 8)
    capture = StartCapture(X if architecture == "mlp" else images[:, None])
    est = AutoencoderTransformer(5, architecture=architecture, conv_channels=(4, 8),
                                 max_iter=1, random_state=0, callbacks=[capture])
    est.fit(X if architecture == "mlp" else images)
    capture = _captured(est)
    assert est.output_activation_ == "clip"
    _, expected = _pca_reconstruction(X, 5)
    # Linear while training; clamped into the data's range [0, 1] at inference,
    # which only brings each reconstruction closer to its target.
    train_output = capture.train_output_.numpy().reshape(len(X), -1)
    np.testing.assert_allclose(train_output, expected, atol=2e-5)
    reconstruction = capture.reconstruction_.reshape(len(X), -1)
    np.testing.assert_allclose(reconstruction, np.clip(expected, 0, 1), atol=2e-5)
    assert np.mean((reconstruction - X) ** 2) <= np.mean((expected - X) ** 2)


def test_start_from_uint8_images_is_pca_of_scaled_pixels(digits_split):
    images = np.rint(digits_split[0][:300] * 255).astype(np.uint8).reshape(-1, 8, 8)
    capture = StartCapture(images.reshape(300, -1).astype(np.float32) / 255)
    est = AutoencoderTransformer(4, max_iter=1, random_state=0, callbacks=[capture])
    capture = _captured(est.fit(images))
    _, expected = _pca_reconstruction(images.astype(np.float64) / 255, 4)
    np.testing.assert_allclose(capture.train_output_.numpy(), expected, atol=2e-5)


@pytest.mark.parametrize("k", [2, 5])
def test_vae_starts_at_probabilistic_pca(k, wine):
    est = VAETransformer(k, max_iter=1, random_state=0, callbacks=[StartCapture(wine)])
    capture = _captured(est.fit(wine))
    pca = PCA(k).fit(wine.astype(np.float64))
    # At PPCA's exact posterior every importance weight equals p(x).
    np.testing.assert_allclose(capture.bound_.mean(), pca.score(wine), rtol=1e-3)
    np.testing.assert_allclose(capture.bound_, pca.score_samples(wine), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(capture.log_scale_, 0.5 * np.log(pca.noise_variance_),
                               rtol=1e-5)
    # The posterior mean is shrunk; decoded through the reconstruction scale
    # it gives back PCA's own reconstruction.
    _, expected = _pca_reconstruction(wine, k)
    np.testing.assert_allclose(capture.reconstruction_, expected, atol=1e-4)
    shrunk = capture.codes_ @ (pca.components_.T * np.sqrt(
        pca.explained_variance_ - pca.noise_variance_)).T + pca.mean_
    assert np.mean((shrunk - wine) ** 2) > np.mean((expected - wine) ** 2) + 1e-3


def test_vae_kept_start_reconstructs_as_pca(wine):
    # A rate too small to move the weights: the start is kept, and its
    # refitted reconstruction scale stays the one that undoes the shrinkage.
    vae = VAETransformer(3, learning_rate_init=1e-12, max_iter=2, random_state=0).fit(wine)
    _, expected = _pca_reconstruction(wine, 3)
    np.testing.assert_allclose(vae.inverse_transform(vae.transform(wine)), expected,
                               atol=1e-4)
    pca = PCA(3).fit(wine.astype(np.float64))
    np.testing.assert_allclose(
        vae.reconstruction_scale_,
        pca.explained_variance_ / (pca.explained_variance_ - pca.noise_variance_), rtol=1e-3)


def test_bernoulli_vae_starts_at_clipped_pca(digits_split):
    X = digits_split[0][:300]
    est = VAETransformer(4, likelihood="bernoulli", max_iter=1, random_state=0,
                         callbacks=[StartCapture(X)])
    capture = _captured(est.fit(X))
    _, pca_reconstruction = _pca_reconstruction(X, 4)
    start_error = np.mean((capture.reconstruction_ - X) ** 2)
    assert start_error <= np.mean((pca_reconstruction - X) ** 2) + 1e-6


@pytest.mark.parametrize("cls", [AutoencoderTransformer, DenoisingAutoencoder,
                                 VAETransformer])
def test_selection_never_returns_worse_validation_loss_than_the_start(cls, wine):
    # A learning rate that makes training worse than the start.
    est = cls(3, learning_rate_init=0.05, early_stopping=True, max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(wine)
    assert est.validation_start_score_ is not None
    kept = (est.validation_start_score_ if est.best_epoch_ == 0
            else est.validation_scores_[est.best_epoch_ - 1])
    assert kept >= est.validation_start_score_
    # The kept weights themselves score so on the validation rows.
    net = est.net_
    from skae._data import ArrayDataset

    _, valid = net.train_split(ArrayDataset(wine, (wine.shape[1],)))
    net.on_train_begin(net)  # the validation generator of training
    assert -net.evaluate(valid)["valid_loss"] >= est.validation_start_score_ - 1e-5


def test_a_fit_that_never_beats_its_start_says_so(wine):
    est = AutoencoderTransformer(3, learning_rate_init=0.5, early_stopping=True,
                                 max_iter=12, n_iter_no_change=3, random_state=0)
    with pytest.warns(UserWarning, match="kept its PCA start"):
        est.fit(wine)
    assert est.best_epoch_ == 0
    pca, expected = _pca_reconstruction(wine, 3)
    np.testing.assert_allclose(est.inverse_transform(est.transform(wine)), expected,
                               atol=2e-5)


def test_float_n_components_keeps_the_pca_fraction(wine):
    est = AutoencoderTransformer(0.8, max_iter=2, random_state=0).fit(wine)
    expected = PCA(0.8).fit(wine).n_components_
    assert est.n_components_ == expected
    assert est.transform(wine).shape == (len(wine), expected)
    assert est.get_feature_names_out().shape == (expected,)
    vae = VAETransformer(0.5, max_iter=2, random_state=0).fit(wine)
    assert vae.n_components_ == PCA(0.5).fit(wine).n_components_
    assert vae.sample(3, random_state=0).shape == (3, wine.shape[1])


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, -0.2])
def test_float_n_components_outside_the_unit_interval_is_refused(bad, wine):
    with pytest.raises(ValueError, match="n_components"):
        AutoencoderTransformer(bad).fit(wine)


@pytest.mark.parametrize("n_features, n_components, expected", [
    (784, 2, (512, 256)), (784, 64, (512, 256)), (784, 300, (600, 600)),
    (64, 8, (64, 32)), (64, 32, (64, 64)), (13, 2, (64, 32)), (3000, 2, (512, 256)),
    (1, 1, (64, 32)),
])
def test_auto_widths_rule(n_features, n_components, expected):
    sizes = auto_hidden_layer_sizes(n_features, n_components)
    assert sizes == expected
    assert min(sizes) >= n_components


def test_auto_widths_and_batch_are_learned(wine):
    est = AutoencoderTransformer(4, max_iter=1, random_state=0).fit(wine)
    assert est.hidden_layer_sizes_ == auto_hidden_layer_sizes(13, 4)
    assert est.early_stopping_ is True  # 18 validation rows
    assert est.batch_size_ == auto_batch_size(len(wine) - 18)
    small = AutoencoderTransformer(2, max_iter=1, random_state=0).fit(wine[:60])
    assert small.early_stopping_ is False and small.validation_scores_ is None


@pytest.mark.parametrize("n_train, expected", [(1, 16), (120, 16), (600, 16), (1200, 32),
                                               (5000, 128), (54000, 256)])
def test_auto_batch_size_rule(n_train, expected):
    assert auto_batch_size(n_train) == expected


def test_init_random_reproduces_the_codes_of_version_0_1():
    """The codes the default network of skae 0.1 gave (tests/data, written at 46ad87f)."""
    reference = np.load(DATA / "random_init_codes.npz")
    X = (load_digits().data[:400] / 16.0).astype(np.float32)
    old = dict(init="random", hidden_layer_sizes=(128, 64), batch_size=128, max_iter=4,
               random_state=0, n_threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codes = {
            "ae": AutoencoderTransformer(3, early_stopping=False, **old).fit(X).transform(X),
            "ae_es": AutoencoderTransformer(3, early_stopping=True, **old).fit(X).transform(X),
            "dae": DenoisingAutoencoder(3, early_stopping=False, **old).fit(X).transform(X),
            "vae": VAETransformer(3, early_stopping=False, **old).fit(X).transform(X),
            "ae_conv": AutoencoderTransformer(
                3, init="random", architecture="conv", conv_channels=(4, 8),
                early_stopping=False, max_iter=2, batch_size=128, random_state=0,
                n_threads=1).fit(X.reshape(-1, 8, 8)).transform(X.reshape(-1, 8, 8)),
        }
    for name, value in codes.items():
        # oneDNN picks its convolution kernels by the CPU's instruction set
        # (AVX2 or AVX-512), which sum in different orders.
        atol = 2e-4 if name == "ae_conv" else 1e-5
        np.testing.assert_allclose(value, reference[name], rtol=1e-4, atol=atol,
                                   err_msg=name)


def test_sigmoid_cannot_start_from_pca(digits_split):
    with pytest.raises(ValueError, match="output_activation='sigmoid' cannot start"):
        AutoencoderTransformer(2, output_activation="sigmoid").fit(digits_split[0])
    est = AutoencoderTransformer(2, init="random", max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert est.fit(digits_split[0]).output_activation_ == "sigmoid"


def test_weight_decay_spares_the_linear_path(wine):
    est = AutoencoderTransformer(3, alpha=0.1, max_iter=1, random_state=0).fit(wine)
    linear = {id(p) for name, p in est.net_.module_.named_parameters() if ".linear." in name}
    for group in est.net_.optimizer_.param_groups:
        ids = {id(p) for p in group["params"]}
        if ids & linear:
            assert ids <= linear and group["weight_decay"] == 0.0
        else:
            assert group["weight_decay"] == 0.1


def test_vae_score_is_a_deterministic_bound(wine):
    vae = VAETransformer(3, max_iter=5, random_state=0).fit(wine)
    first, second = vae.score_samples(wine), vae.score_samples(wine)
    np.testing.assert_array_equal(first, second)
    assert vae.score(wine) == pytest.approx(first.mean())
    # A bound on log p(x): averaging over more draws can only tighten it on average.
    net = vae.net_
    with torch.no_grad():
        X = torch.as_tensor(wine)
        draws = torch.randn((64, 3), generator=torch.Generator().manual_seed(1))
        one = net.log_likelihood_bound(net.module_, X, draws[:1])
        many = net.log_likelihood_bound(net.module_, X, draws)
    assert many.mean() >= one.mean() - 1e-4
