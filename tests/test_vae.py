"""VAETransformer: ELBO, KL, sampling, interpolation and its errors."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from skae import VAETransformer

SMALL = dict(hidden_layer_sizes=(32,), max_iter=5, random_state=0)


@pytest.fixture(scope="module")
def trained_vae(digits_split):
    X_train = digits_split[0]
    return VAETransformer(n_components=2, early_stopping=True, max_iter=40, batch_size=32,
                          random_state=0).fit(X_train)


def test_validation_elbo_rises_and_kl_is_positive(trained_vae):
    scores = trained_vae.validation_scores_  # -(negative ELBO) per row, in nats
    assert len(scores) == trained_vae.n_iter_
    assert scores[-1] > scores[0] + 3.0
    history = trained_vae.net_.history
    kl = np.array(history[:, "train_kl"])
    recon = np.array(history[:, "train_recon"])
    assert np.isfinite(kl).all() and (kl > 0).all()
    assert recon[-1] < recon[0]
    # The total loss is the sum of its terms (beta=1, no warm-up).
    np.testing.assert_allclose(trained_vae.loss_curve_, recon + kl, rtol=1e-4)
    assert "valid_kl" in history[-1] and "valid_recon" in history[-1]


def test_likelihood_auto_and_score_is_mean_bound(trained_vae, digits_split):
    X_test = digits_split[1]
    # Gaussian from the PCA start; Bernoulli for [0, 1] data from a random one.
    assert trained_vae.likelihood_ == "gaussian"
    random_start = VAETransformer(init="random", max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert random_start.fit(X_test).likelihood_ == "bernoulli"
        assert np.all(random_start.score_samples(X_test) < 0)  # probabilities of pixels
    elbo = trained_vae.score_samples(X_test)
    assert elbo.shape == (len(X_test),) and np.all(np.isfinite(elbo))
    assert trained_vae.score(X_test) == pytest.approx(elbo.mean(), rel=1e-6)
    np.testing.assert_array_equal(elbo, trained_vae.score_samples(X_test))


def test_transform_is_deterministic_posterior_mean(trained_vae, digits_split):
    X_test = digits_split[1]
    np.testing.assert_array_equal(trained_vae.transform(X_test), trained_vae.transform(X_test))


def test_sample_in_unit_interval_and_reproducible(trained_vae):
    samples = trained_vae.sample(16, random_state=1)
    assert samples.shape == (16, 64)
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    np.testing.assert_array_equal(samples, trained_vae.sample(16, random_state=1))
    assert not np.array_equal(samples, trained_vae.sample(16, random_state=2))


def test_interpolate_runs_between_the_two_reconstructions(trained_vae, digits_split):
    X_test = digits_split[1]
    path = trained_vae.interpolate(X_test[0], X_test[1], n_steps=8)
    assert path.shape == (8, 64)
    ends = trained_vae.inverse_transform(trained_vae.transform(X_test[:2]))
    np.testing.assert_allclose(path[[0, -1]], ends, atol=1e-6)


def test_vae_codes_beat_pca_for_5nn(trained_vae, digits_split):
    X_train, X_test, y_train, y_test = digits_split

    def knn_accuracy(model):
        return KNeighborsClassifier(5).fit(model.transform(X_train), y_train).score(
            model.transform(X_test), y_test)

    assert knn_accuracy(trained_vae) > knn_accuracy(PCA(2).fit(X_train))


def test_gaussian_likelihood_on_standardized_table(digits_split):
    X = StandardScaler().fit_transform(digits_split[0])
    learned = VAETransformer(**dict(SMALL, max_iter=10)).fit(X)
    assert learned.likelihood_ == "gaussian"
    assert np.isfinite(learned.score_samples(X)).all()
    assert learned.loss_curve_[-1] < learned.loss_curve_[0]
    fixed = VAETransformer(gaussian_scale=0.5, **SMALL).fit(X)
    np.testing.assert_allclose(fixed.net_.module_.log_scale.numpy(), np.log(0.5), rtol=1e-6)


def test_kl_warmup_ramps_the_weight(digits_split):
    vae = VAETransformer(kl_warmup=4, beta=2.0, **SMALL).fit(digits_split[0][:200])
    history = vae.net_.history
    recon, kl = np.array(history[:, "train_recon"]), np.array(history[:, "train_kl"])
    weights = (np.array(vae.loss_curve_) - recon) / kl
    np.testing.assert_allclose(weights, [0.0, 0.5, 1.0, 1.5, 2.0], atol=1e-3)


def test_same_random_state_same_samples(digits_split):
    X = digits_split[0][:200]
    a = VAETransformer(**SMALL).fit(X).sample(5, random_state=0)
    b = VAETransformer(**SMALL).fit(X).sample(5, random_state=0)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"beta": -1.0}, "'beta' parameter"),
        ({"likelihood": "poisson"}, "'likelihood' parameter"),
        ({"gaussian_scale": 0.0}, "'gaussian_scale' parameter"),
    ],
)
def test_bad_vae_parameters(params, message, digits_split):
    with pytest.raises(ValueError, match=message):
        VAETransformer(**dict(SMALL, **params)).fit(digits_split[0][:100])


def test_bernoulli_rejects_data_outside_unit_interval(digits_split):
    with pytest.raises(ValueError, match="likelihood='bernoulli' needs data in \\[0, 1\\]"):
        VAETransformer(likelihood="bernoulli", **SMALL).fit(digits_split[0][:100] * 2)


def test_sample_and_interpolate_errors(digits_split):
    X = digits_split[0][:100]
    vae = VAETransformer(**SMALL).fit(X)
    with pytest.raises(ValueError, match="n_steps=1 must be an int of at least 2"):
        vae.interpolate(X[0], X[1], n_steps=1)
    with pytest.raises(ValueError, match="x_a has 10 values"):
        vae.interpolate(X[0][:10], X[1])
    with pytest.raises(ValueError, match="n_samples=0 must be a positive int"):
        vae.sample(0)


def test_reconstruction_scale_only_lowers_the_training_error(digits_split):
    X = digits_split[0][:400]
    vae = VAETransformer(3, max_iter=15, random_state=0).fit(X)
    module = vae.net_.module_
    codes = torch.as_tensor(vae.transform(X))
    with torch.no_grad():
        unscaled = module.generate(codes).numpy()
    scaled = vae.inverse_transform(codes.numpy())
    assert np.mean((scaled - X) ** 2) <= np.mean((unscaled - X) ** 2)
    assert vae.reconstruction_scale_.shape == (3,)
    assert np.all(vae.reconstruction_scale_ > 0)
    np.testing.assert_allclose(
        scaled, module.generate(codes * torch.as_tensor(vae.reconstruction_scale_)).detach(),
        atol=1e-6)


def test_sample_decodes_prior_draws_without_the_reconstruction_scale(digits_split):
    vae = VAETransformer(2, max_iter=3, random_state=0).fit(digits_split[0][:300])
    assert not np.allclose(vae.reconstruction_scale_, 1.0)
    draws = torch.randn((5, 2), generator=torch.Generator().manual_seed(
        int(np.random.RandomState(7).randint(np.iinfo(np.int32).max))))
    with torch.no_grad():
        expected = vae.net_.module_.generate(draws).numpy()
    np.testing.assert_allclose(vae.sample(5, random_state=7), expected, atol=1e-6)


def test_mixed_table_codes_decode_unscaled():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120),
                          "c": pd.Categorical(rng.choice(["x", "y", "z"], size=120))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(2, max_iter=3, random_state=0).fit(frame)
    np.testing.assert_array_equal(vae.reconstruction_scale_, np.ones(2))
    assert list(vae.inverse_transform(vae.transform(frame)).columns) == ["a", "b", "c"]
