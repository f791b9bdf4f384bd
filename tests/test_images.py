"""Image input: convolutional architecture, image shapes, uint8 scaling."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
from skae._modules import ConvDecoder, ConvEncoder

ESTIMATOR_CLASSES = [AutoencoderTransformer, DenoisingAutoencoder, VAETransformer]
TINY_CONV = dict(architecture="conv", conv_channels=(4, 8), max_iter=2, random_state=0)


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (2, 5, 7),
                                         (1, 1, 1), (1, 9, 4)])
def test_conv_decoder_restores_exact_size(input_shape):
    import torch

    encoder = ConvEncoder(input_shape, (4, 8, 8), 3, "leaky_relu")
    decoder = ConvDecoder(3, (4, 8, 8), input_shape, "leaky_relu")
    x = torch.zeros((2, *input_shape))
    assert decoder(encoder(x)).shape == x.shape


@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
@pytest.mark.parametrize("shape", [(30, 8, 8), (30, 3, 32, 32), (30, 5, 7)])
def test_every_estimator_fits_conv_on_odd_image_sizes(Estimator, shape):
    images = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    est = Estimator(n_components=3, **TINY_CONV).fit(images)
    assert est.input_shape_ == ((1, *shape[1:]) if len(shape) == 3 else shape[1:])
    codes = est.transform(images)
    assert codes.shape == (30, 3)
    assert est.inverse_transform(codes).shape == images.shape
    assert est.reconstruct(images).shape == images.shape


def test_flat_rows_with_input_shape(digits_split):
    X = digits_split[0][:100]
    est = AutoencoderTransformer(input_shape=(8, 8), **TINY_CONV).fit(X)
    assert est.input_shape_ == (1, 8, 8)
    assert est.inverse_transform(est.transform(X)).shape == X.shape
    # The same images as an (n, 8, 8) array give the same codes.
    np.testing.assert_allclose(est.transform(X.reshape(-1, 8, 8)), est.transform(X), atol=1e-6)


def test_mlp_flattens_images(digits_split):
    images = digits_split[0][:100].reshape(-1, 8, 8)
    est = AutoencoderTransformer(hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(images)
    assert est.n_features_in_ == 64 and est.input_shape_ == (1, 8, 8)
    assert est.inverse_transform(est.transform(images)).shape == (100, 8, 8)


@pytest.mark.parametrize(
    "X, params, message",
    [
        (np.zeros((10, 64)), {}, "architecture='conv' needs images"),
        (np.zeros((10, 64)), {"input_shape": (7, 7)}, "holds 49 values but X has 64"),
        (np.zeros((10, 8, 8)), {"input_shape": (1, 4, 16)}, "disagrees with the images' shape"),
        (np.zeros((10, 64)), {"input_shape": (2, 2, 2, 8)}, "must be \\(H, W\\) or \\(C, H, W\\)"),
        (np.zeros((10, 8, 8)), {"conv_channels": ()}, "conv_channels=\\(\\) must be a tuple"),
    ],
)
def test_image_shape_errors(X, params, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderTransformer(**dict(TINY_CONV, **params)).fit(X)


def test_transform_checks_image_shape():
    est = AutoencoderTransformer(**TINY_CONV).fit(np.zeros((10, 4, 6), np.float32))
    with pytest.raises(ValueError, match="images of shape \\(6, 4\\) but .* fitted on images of shape \\(4, 6\\)"):
        est.transform(np.zeros((3, 6, 4), np.float32))


def test_uint8_images_scale_and_return_uint8():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8)
    est = AutoencoderTransformer(**TINY_CONV).fit(images)
    assert est.output_activation_ == "clip"
    decoded = est.inverse_transform(est.transform(images))
    assert decoded.dtype == np.uint8 and decoded.shape == images.shape
    # uint8 input is the float input divided by 255: same codes, same scores.
    as_float = images.astype(np.float32) / 255.0
    np.testing.assert_allclose(est.transform(images), est.transform(as_float), atol=1e-6)
    np.testing.assert_allclose(est.score_samples(images), est.score_samples(as_float), rtol=1e-5)
    # reconstruct follows its argument's kind.
    assert est.reconstruct(images).dtype == np.uint8
    assert est.reconstruct(as_float).dtype == np.float32


def test_conv_autoencoder_beats_pca_on_fashion_mnist(fashion_mnist_subset):
    """n_components=2 conv autoencoder on 5,000 images: lower test MSE than PCA(2)."""
    X_train, _, X_test, _ = fashion_mnist_subset
    ae = AutoencoderTransformer(n_components=2, architecture="conv", max_iter=4,
                                batch_size=64, random_state=0).fit(X_train)

    def scaled(images):
        return images.reshape(len(images), -1).astype(np.float32) / 255.0

    ae_mse = np.mean((scaled(ae.inverse_transform(ae.transform(X_test))) - scaled(X_test)) ** 2)
    pca = PCA(2).fit(scaled(X_train))
    pca_mse = np.mean((pca.inverse_transform(pca.transform(scaled(X_test))) - scaled(X_test)) ** 2)
    print(f"conv AE MSE={ae_mse:.5f} PCA(2) MSE={pca_mse:.5f} ratio={ae_mse / pca_mse:.3f}")
    assert ae_mse < pca_mse
    # -score is the same MSE, computed in the [0, 1] space without rounding to uint8.
    assert -ae.score(X_test) == pytest.approx(ae_mse, rel=0.05)
