"""DenoisingAutoencoder: corruption statistics, training-only noise, real denoising."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer, DenoisingAutoencoder
from skae._noise import Corruption

SMALL = dict(hidden_layer_sizes=(32,), max_iter=5, random_state=0)


@pytest.fixture
def clean_batch():
    return torch.rand((400, 250), generator=torch.Generator().manual_seed(1))


def test_gaussian_noise_has_the_asked_std(clean_batch):
    original = clean_batch.clone()
    corrupted = Corruption("gaussian", 0.2)(clean_batch, torch.Generator().manual_seed(0))
    noise = corrupted - clean_batch
    assert noise.mean().abs() < 0.005
    assert noise.std().item() == pytest.approx(0.2, rel=0.02)
    torch.testing.assert_close(clean_batch, original, rtol=0, atol=0)


def test_masking_zeroes_the_asked_fraction(clean_batch):
    original = clean_batch.clone()
    corrupted = Corruption("masking", 0.3)(clean_batch, torch.Generator().manual_seed(0))
    masked = corrupted == 0
    assert masked.float().mean().item() == pytest.approx(0.3, abs=0.01)
    # Values that survive are untouched.
    torch.testing.assert_close(corrupted[~masked], clean_batch[~masked], rtol=0, atol=0)
    torch.testing.assert_close(clean_batch, original, rtol=0, atol=0)


def test_salt_and_pepper_uses_data_extremes(clean_batch):
    original = clean_batch.clone()
    corrupted = Corruption("salt_and_pepper", 0.2, low=-1.0, high=2.0)(
        clean_batch, torch.Generator().manual_seed(0))
    salt, pepper = corrupted == 2.0, corrupted == -1.0
    assert salt.float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert pepper.float().mean().item() == pytest.approx(0.1, abs=0.01)
    unchanged = ~(salt | pepper)
    torch.testing.assert_close(corrupted[unchanged], clean_batch[unchanged], rtol=0, atol=0)
    torch.testing.assert_close(clean_batch, original, rtol=0, atol=0)


def test_clip_keeps_values_in_bounds(clean_batch):
    corrupted = Corruption("gaussian", 1.0, clip=(0.0, 1.0))(
        clean_batch, torch.Generator().manual_seed(0))
    assert corrupted.min() >= 0.0 and corrupted.max() <= 1.0
    assert (corrupted == 0.0).any() and (corrupted == 1.0).any()


def test_same_generator_seed_same_noise(clean_batch):
    corruption = Corruption("gaussian", 0.2)
    a = corruption(clean_batch, torch.Generator().manual_seed(5))
    b = corruption(clean_batch, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_noise_is_fresh_each_batch_and_epoch(digits_split):
    """Record every corrupted batch the net sees: no two are corrupted alike."""
    X = digits_split[0][:256]
    seen = []

    def recording_noise(X_batch, generator):
        noisy = X_batch + 0.2 * torch.randn(X_batch.shape, generator=generator)
        seen.append((noisy - X_batch).clone())
        return noisy

    DenoisingAutoencoder(noise=recording_noise, batch_size=128, early_stopping=False,
                         **dict(SMALL, max_iter=3)).fit(X)
    assert len(seen) == 6  # 2 batches x 3 epochs
    for i in range(len(seen)):
        for j in range(i + 1, len(seen)):
            assert not torch.equal(seen[i], seen[j])


def test_transform_and_scores_never_see_noise(digits_split):
    X = digits_split[0][:300]
    dae = DenoisingAutoencoder(noise_level=0.5, **SMALL).fit(X)
    np.testing.assert_array_equal(dae.transform(X), dae.transform(X))
    np.testing.assert_array_equal(dae.score_samples(X), dae.score_samples(X))
    np.testing.assert_array_equal(dae.denoise(X), dae.denoise(X))
    # denoise is the deterministic reconstruction of the input as given.
    np.testing.assert_allclose(dae.denoise(X), dae.inverse_transform(dae.transform(X)),
                               rtol=1e-5, atol=1e-6)


def test_same_random_state_bit_identical_with_early_stopping(digits_split):
    X = digits_split[0][:300]
    params = dict(SMALL, early_stopping=True, noise="masking", noise_level=0.3)
    a = DenoisingAutoencoder(**params).fit(X)
    b = DenoisingAutoencoder(**params).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    # The validation noise is fixed by random_state, so validation losses match too.
    assert a.validation_scores_ == b.validation_scores_


def test_denoise_keeps_shape_and_type(digits_split):
    X = digits_split[0][:200]
    images = X.reshape(-1, 8, 8)
    dae = DenoisingAutoencoder(**SMALL).fit(images)
    assert dae.denoise(images).shape == images.shape
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(64)])
    dae = DenoisingAutoencoder(**SMALL).set_output(transform="pandas").fit(frame)
    out = dae.denoise(frame)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(frame.columns)


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"noise": "poisson"}, ValueError, "'noise' parameter .*gaussian"),
        ({"noise": "masking", "noise_level": 1.5}, ValueError, "noise_level=1.5 is a probability"),
        ({"noise_level": -0.1}, ValueError, "'noise_level' parameter"),
        ({"clip": (1.0, 0.0)}, ValueError, "clip=\\(1.0, 0.0\\) must be"),
        ({"noise": lambda X, g: X.numpy()}, TypeError, "must return a torch.Tensor"),
    ],
)
def test_bad_noise_parameters(params, error, message, digits_split):
    with pytest.raises(error, match=message):
        DenoisingAutoencoder(**dict(SMALL, **params)).fit(digits_split[0][:100])


def test_denoising_beats_noisy_and_pca_on_fashion_mnist(fashion_mnist_subset):
    """Gaussian noise 0.2 on test images: DAE output is closer to clean than noisy and PCA."""
    X_train, _, X_test, _ = fashion_mnist_subset
    X_train = X_train.reshape(len(X_train), -1).astype(np.float32) / 255.0
    X_test = X_test.reshape(len(X_test), -1).astype(np.float32) / 255.0
    noisy = X_test + np.random.default_rng(0).normal(0, 0.2, X_test.shape).astype(np.float32)

    n_components = 32
    dae = DenoisingAutoencoder(
        n_components=n_components, noise="gaussian", noise_level=0.2,
        hidden_layer_sizes=(256,), batch_size=32, max_iter=20, learning_rate_init=2e-3,
        random_state=0,
    ).fit(X_train)
    pca = PCA(n_components).fit(X_train)

    mse_noisy = np.mean((noisy - X_test) ** 2)
    mse_pca = np.mean((pca.inverse_transform(pca.transform(noisy)) - X_test) ** 2)
    mse_dae = np.mean((dae.denoise(noisy) - X_test) ** 2)
    print(f"MSE noisy={mse_noisy:.5f} PCA={mse_pca:.5f} DAE={mse_dae:.5f} "
          f"DAE/noisy={mse_dae / mse_noisy:.3f} DAE/PCA={mse_dae / mse_pca:.3f}")
    assert mse_dae < mse_noisy
    assert mse_dae < mse_pca


def test_denoiser_beats_plain_autoencoder_on_noisy_input(digits_split):
    X_train, X_test = digits_split[0], digits_split[1]
    noisy = X_test + np.random.default_rng(0).normal(0, 0.3, X_test.shape).astype(np.float32)
    params = dict(n_components=16, hidden_layer_sizes=(64,), batch_size=32, max_iter=40,
                  random_state=0)
    plain = AutoencoderTransformer(**params).fit(X_train)
    dae = DenoisingAutoencoder(noise_level=0.3, **params).fit(X_train)
    assert np.mean((dae.denoise(noisy) - X_test) ** 2) < \
        np.mean((plain.reconstruct(noisy) - X_test) ** 2)


def test_preserve_clean_decides_whether_heavy_masking_leaves_the_start(digits_split):
    # Masking 40% of the pixels: the first epochs denoise better than PCA but
    # reconstruct clean rows worse, so only preserve_clean=False keeps them.
    X = digits_split[0][:600]
    params = dict(n_components=16, noise="masking", noise_level=0.4, max_iter=4,
                  n_iter_no_change=3, early_stopping=True, random_state=0)
    with pytest.warns(UserWarning, match="held valid_clean_mse above the start's; set "
                                         "preserve_clean=False"):
        kept = DenoisingAutoencoder(**params).fit(X)
    assert kept.best_epoch_ == 0
    free = DenoisingAutoencoder(preserve_clean=False, **params).fit(X)
    assert free.best_epoch_ > 0
    assert max(free.validation_scores_) > free.validation_start_score_

    # The price the default refuses: clean rows come back worse than PCA's.
    def clean_mse(model):
        return np.mean((model.inverse_transform(model.transform(X)) - X) ** 2)

    assert clean_mse(free) > clean_mse(kept)
