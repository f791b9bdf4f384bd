"""sample_weight in fit, partial_fit and score: its effect, its routing, its errors."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
from skae._base import _weighted_rows
from skae._data import ArrayDataset, BatchIterator, ChunkedDataset, ChunkIterator

ESTIMATORS = [AutoencoderTransformer, DenoisingAutoencoder, VAETransformer]
SMALL = dict(n_components=4, hidden_layer_sizes=(32,), max_iter=15, early_stopping=False,
             n_threads=1)
SEEDS = (0, 1, 2)


def _fit(model, X, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, **fit_params)


def _test_mse(model, X):
    return float(np.mean((model.reconstruct(X) - X) ** 2))


def _mean_test_mse(X_train, X_test, **fit_params):
    return np.mean([_test_mse(_fit(AutoencoderTransformer(random_state=seed, **SMALL),
                                   X_train, **fit_params), X_test) for seed in SEEDS])


@pytest.fixture(scope="module")
def digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    return X_train, X_test, y_train, y_test


def test_zero_weights_remove_a_block_of_outliers(digits):
    X_train, X_test, _, _ = digits
    outliers = np.random.default_rng(0).uniform(0, 6, (200, X_train.shape[1]))
    X_dirty = np.concatenate([X_train, outliers.astype(np.float32)])
    weights = np.r_[np.ones(len(X_train)), np.zeros(len(outliers))]
    clean = _mean_test_mse(X_train, X_test)
    weighted = _mean_test_mse(X_dirty, X_test, sample_weight=weights)
    unweighted = _mean_test_mse(X_dirty, X_test)
    # The outliers matter when weighted 1, so the test can tell weights from none.
    assert unweighted > 1.2 * clean
    assert abs(weighted - clean) < 0.05 * clean, (weighted, clean)


def test_integer_weights_behave_like_repeated_rows(digits):
    X_train, X_test, _, _ = digits
    counts = np.random.default_rng(1).integers(1, 4, len(X_train))
    repeated = _mean_test_mse(np.repeat(X_train, counts, axis=0), X_test)
    weighted = _mean_test_mse(X_train, X_test, sample_weight=counts)
    assert abs(weighted - repeated) < 0.05 * repeated, (weighted, repeated)


def test_weights_move_the_model_toward_the_heavy_rows(digits):
    X_train, X_test, y_train, y_test = digits
    heavy = np.where(y_train == 0, 20.0, 1.0)
    zeros = X_test[y_test == 0]
    plain = _mean_test_mse(X_train, zeros)
    weighted = _mean_test_mse(X_train, zeros, sample_weight=heavy)
    assert weighted < 0.8 * plain, (weighted, plain)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_the_pca_start_is_the_weighted_pca(Estimator, digits):
    # With a vanishing learning rate the model stays at its start, which must
    # be the PCA of the rows repeated as often as their weights say (clipped
    # to the data's range [0, 1], as the model's output is).
    X_train = digits[0]
    counts = np.random.default_rng(2).integers(0, 4, len(X_train))
    model = _fit(Estimator(random_state=0, **{**SMALL, "max_iter": 1},
                           learning_rate_init=1e-12), X_train, sample_weight=counts)
    pca = PCA(4).fit(np.repeat(X_train, counts, axis=0))
    if Estimator is VAETransformer:  # the posterior mean's reconstruction shrinks: compare subspaces
        codes = model.transform(X_train)
        projected = pca.transform(X_train)
        _, residuals, *_ = np.linalg.lstsq(
            np.c_[codes, np.ones(len(codes))], projected, rcond=None)
        assert residuals.max() < 1e-6 * len(codes)
    else:
        np.testing.assert_allclose(model.reconstruct(X_train),
                                   np.clip(pca.inverse_transform(pca.transform(X_train)), 0, 1),
                                   atol=1e-4)


def test_the_validation_loss_is_weighted(digits):
    X_train = digits[0]
    weights = np.random.default_rng(3).uniform(0, 2, len(X_train))
    model = _fit(AutoencoderTransformer(random_state=0, **{**SMALL, "early_stopping": True}),
                 X_train, sample_weight=weights)
    net = model.net_
    _, valid = net.train_split(ArrayDataset(X_train, (X_train.shape[1],)))
    rows = valid.indices
    # The start is the weighted PCA of all rows; its validation loss is the
    # weighted mean of the held-out rows' errors.
    pca = PCA(4, svd_solver="full").fit(_weighted_rows(X_train.astype(np.float64), weights))
    start = np.clip(pca.inverse_transform(pca.transform(X_train[rows])), 0, 1)
    errors = ((start - X_train[rows]) ** 2).mean(1)
    expected = np.average(errors, weights=weights[rows])
    np.testing.assert_allclose(-model.validation_start_score_, expected, rtol=1e-4)


def test_equal_weights_are_the_unweighted_fit(digits):
    X_train = digits[0][:400]
    plain = _fit(AutoencoderTransformer(random_state=0, **SMALL), X_train)
    twos = _fit(AutoencoderTransformer(random_state=0, **SMALL), X_train,
                sample_weight=np.full(len(X_train), 2.0))
    np.testing.assert_array_equal(plain.transform(X_train), twos.transform(X_train))


def test_partial_fit_takes_weights(digits):
    X_train = digits[0][:600]
    weights = np.random.default_rng(4).integers(0, 3, len(X_train))
    model = AutoencoderTransformer(random_state=0, **SMALL)
    for chunk, w in zip(np.array_split(X_train, 3), np.array_split(weights, 3)):
        model.partial_fit(chunk, sample_weight=w)
    assert model.n_iter_ == 3
    assert all(np.isfinite(model.loss_curve_))
    assert "train_batch_weight" in model.net_.history[-1]["batches"][0]
    with pytest.raises(ValueError, match="sample_weight.shape"):
        model.partial_fit(X_train[:10], sample_weight=np.ones(3))


def test_sample_weight_through_a_pipeline_and_metadata_routing(digits):
    X_train = digits[0][:400]
    weights = np.random.default_rng(5).uniform(0, 1, len(X_train))
    direct = _fit(AutoencoderTransformer(random_state=0, **SMALL), X_train,
                  sample_weight=weights).transform(X_train)
    pipe = Pipeline([("ae", AutoencoderTransformer(random_state=0, **SMALL))])
    routed = _fit(pipe, X_train, ae__sample_weight=weights).transform(X_train)
    np.testing.assert_array_equal(direct, routed)
    with sklearn.config_context(enable_metadata_routing=True):
        ae = AutoencoderTransformer(random_state=0, **SMALL).set_fit_request(sample_weight=True)
        requested = _fit(Pipeline([("ae", ae)]), X_train, sample_weight=weights)
        np.testing.assert_array_equal(direct, requested.transform(X_train))


def test_score_with_weights_is_the_weighted_mean(digits):
    X_train = digits[0][:300]
    model = _fit(AutoencoderTransformer(random_state=0, **{**SMALL, "max_iter": 2}), X_train)
    weights = np.random.default_rng(6).uniform(0, 1, len(X_train))
    np.testing.assert_allclose(model.score(X_train, sample_weight=weights),
                               np.average(model.score_samples(X_train), weights=weights),
                               rtol=1e-6)


@pytest.mark.parametrize("weights, error", [
    (-np.ones(50), "Negative values in data passed to `sample_weight`"),
    (np.ones(7), r"sample_weight.shape == \(7,\), expected \(50,\)"),
    (np.r_[np.nan, np.ones(49)], "Input sample_weight contains NaN"),
    (np.zeros(50), "Sample weights must contain at least one non-zero number"),
    (np.ones((50, 2)), "Sample weights must be 1D array or scalar"),
])
def test_bad_weights_raise_scikit_learns_errors(weights, error, digits):
    model = AutoencoderTransformer(random_state=0, **SMALL)
    with pytest.raises(ValueError, match=error):
        model.fit(digits[0][:50], sample_weight=weights)
    assert not hasattr(model, "net_")


@pytest.mark.parametrize("chunked", [False, True])
def test_batches_carry_the_weights_of_their_rows(chunked, tmp_path):
    # Column 0 holds the row number and the weights are the row numbers, so
    # every batch must pair each row with its own weight, shuffled or not.
    n = 5000
    X = np.tile(np.arange(n, dtype=np.float32)[:, None], (1, 4))
    extras = {"sample_weight": np.arange(n, dtype=np.float32)}
    if chunked:
        mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                       shape=X.shape)
        mm[:] = X
        from skae._data import as_chunked_source

        dataset = ChunkedDataset(as_chunked_source(mm), (4,), extras=extras)
        iterator = ChunkIterator
    else:
        dataset, iterator = ArrayDataset(X, (4,), extras=extras), BatchIterator
    import torch

    for shuffle in (False, True):
        seen = []
        for rows, batch_extras in iterator(dataset, 64, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(0)):
            np.testing.assert_array_equal(rows[:, 0].numpy(),
                                          batch_extras["sample_weight"].numpy())
            seen.append(rows[:, 0].numpy())
        assert sorted(np.concatenate(seen).tolist()) == list(range(n))


def test_fit_from_a_memmap_with_weights(tmp_path, digits):
    X_train = digits[0]
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                   shape=X_train.shape)
    mm[:] = X_train
    counts = np.random.default_rng(7).integers(0, 4, len(X_train))
    model = _fit(AutoencoderTransformer(random_state=0, learning_rate_init=1e-12,
                                        **{**SMALL, "max_iter": 1}),
                 np.load(tmp_path / "X.npy", mmap_mode="r"), sample_weight=counts)
    pca = PCA(4).fit(np.repeat(X_train, counts, axis=0))
    np.testing.assert_allclose(model.reconstruct(X_train),
                               np.clip(pca.inverse_transform(pca.transform(X_train)), 0, 1),
                                   atol=1e-4)
