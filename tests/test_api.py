"""The scikit-learn face shared by every estimator: pipelines, search, persistence, pandas."""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.manifold import TSNE
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer

ESTIMATOR_CLASSES = [AutoencoderTransformer, DenoisingAutoencoder, VAETransformer]
SMALL = dict(hidden_layer_sizes=(32,), max_iter=5, random_state=0)


@pytest.fixture(scope="module")
def X_small(digits_split):
    return digits_split[0][:300]


@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
def test_pipeline_with_kmeans(Estimator, X_small):
    pipe = Pipeline([("ae", Estimator(n_components=8, **SMALL)),
                     ("km", KMeans(10, n_init=2, random_state=0))])
    labels = pipe.fit_predict(X_small)
    codes = pipe[:-1].transform(X_small)
    assert codes.shape == (len(X_small), 8)
    assert codes.dtype == np.float32
    assert len(np.unique(labels)) == 10


@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
def test_tsne_after_autoencoder(Estimator, X_small):
    pipe = Pipeline([("ae", Estimator(n_components=8, **SMALL)),
                     ("tsne", TSNE(n_components=2, perplexity=10, max_iter=250, random_state=0))])
    embedding = pipe.fit_transform(X_small[:100])
    assert embedding.shape == (100, 2)
    assert np.isfinite(embedding).all()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_without_scorer(n_jobs, X_small):
    grid = {"n_components": [2, 8], "hidden_layer_sizes": [(16,), (32, 16)]}
    search = GridSearchCV(AutoencoderTransformer(max_iter=30, batch_size=32, learning_rate_init=0.01, random_state=0), grid,
                          cv=3, n_jobs=n_jobs).fit(X_small)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores < 0) and np.isfinite(scores).all()
    # More components reconstruct better: the search must prefer 8.
    assert search.best_params_["n_components"] == 8


def test_grid_search_parallel_matches_serial(X_small):
    grid = {"n_components": [2, 4]}
    results = [
        GridSearchCV(AutoencoderTransformer(**SMALL), grid, cv=2, n_jobs=n_jobs)
        .fit(X_small).cv_results_["mean_test_score"]
        for n_jobs in (1, 2)
    ]
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)


@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
def test_cross_val_score_uses_score(Estimator, X_small):
    scores = cross_val_score(Estimator(**SMALL), X_small, cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all()


@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
def test_clone_pickle_joblib_give_identical_codes(Estimator, X_small, tmp_path):
    est = Estimator(n_components=4, **SMALL).fit(X_small)
    codes = est.transform(X_small)
    from_pickle = pickle.loads(pickle.dumps(est))
    joblib.dump(est, tmp_path / "est.joblib")
    from_joblib = joblib.load(tmp_path / "est.joblib")
    np.testing.assert_array_equal(from_pickle.transform(X_small), codes)
    np.testing.assert_array_equal(from_joblib.transform(X_small), codes)
    # A clone is unfitted with the same parameters and refits to the same codes.
    cloned = clone(est)
    assert not hasattr(cloned, "net_")
    np.testing.assert_array_equal(cloned.fit(X_small).transform(X_small), codes)


@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
def test_same_random_state_bit_identical_and_none_varies(Estimator, X_small):
    first = Estimator(n_components=3, **SMALL).fit(X_small).transform(X_small)
    second = Estimator(n_components=3, **SMALL).fit(X_small).transform(X_small)
    np.testing.assert_array_equal(first, second)
    unseeded = dict(SMALL, random_state=None)
    a = Estimator(n_components=3, **unseeded).fit(X_small).transform(X_small)
    b = Estimator(n_components=3, **unseeded).fit(X_small).transform(X_small)
    assert not np.array_equal(a, b)


def test_fit_leaves_global_torch_state_alone(X_small):
    torch.manual_seed(123)
    expected = torch.rand(3)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    AutoencoderTransformer(n_threads=1, **SMALL).fit(X_small)
    np.testing.assert_array_equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
def test_pandas_in_pandas_out(Estimator, X_small):
    frame = pd.DataFrame(X_small, columns=[f"pixel_{i}" for i in range(X_small.shape[1])])
    est = Estimator(n_components=3, **SMALL).set_output(transform="pandas").fit(frame)
    prefix = Estimator.__name__.lower()
    expected_names = [f"{prefix}{i}" for i in range(3)]
    assert list(est.get_feature_names_out()) == expected_names
    codes = est.transform(frame)
    assert isinstance(codes, pd.DataFrame)
    assert list(codes.columns) == expected_names
    assert codes.index.equals(frame.index)
    np.testing.assert_array_equal(est.feature_names_in_, frame.columns)
    reconstruction = est.reconstruct(frame)
    assert isinstance(reconstruction, pd.DataFrame)
    assert list(reconstruction.columns) == list(frame.columns)


def test_learning_beats_pca_on_digits(digits_split):
    """n_components=2: lower test MSE than PCA(2) and 5-NN accuracy at least 0.1 higher."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    X_train, X_test, y_train, y_test = digits_split
    ae = AutoencoderTransformer(n_components=2, max_iter=100, random_state=0).fit(X_train)
    pca = PCA(n_components=2).fit(X_train)

    def evaluate(model):
        codes_train, codes_test = model.transform(X_train), model.transform(X_test)
        mse = np.mean((model.inverse_transform(codes_test) - X_test) ** 2)
        knn = KNeighborsClassifier(5).fit(codes_train, y_train).score(codes_test, y_test)
        return mse, knn

    ae_mse, ae_knn = evaluate(ae)
    pca_mse, pca_knn = evaluate(pca)
    assert ae_mse < 0.8 * pca_mse
    assert ae_knn >= pca_knn + 0.1
    # Training started from PCA's reconstruction and went well below it.
    pca_train_mse = np.mean((pca.inverse_transform(pca.transform(X_train)) - X_train) ** 2)
    assert ae.loss_curve_[-1] < 0.8 * pca_train_mse
    assert ae.best_epoch_ > 0


def test_learned_attributes(X_small):
    est = AutoencoderTransformer(**SMALL).fit(X_small)
    assert est.n_features_in_ == X_small.shape[1]
    assert est.input_shape_ == (X_small.shape[1],)
    assert est.n_iter_ == 5 == len(est.loss_curve_)
    assert est.early_stopping_ and len(est.validation_scores_) == 5  # 30 rows held out
    assert est.output_activation_ == "clip"  # digits / 16 lie in [0, 1]
    assert len(est.net_.history) == 5
    assert est.n_components_ == 2 and est.hidden_layer_sizes_ == (32,)
    assert est.batch_size_ == 16 and 0 <= est.best_epoch_ <= 5
    assert est.validation_start_score_ < 0
    without = AutoencoderTransformer(**SMALL, early_stopping=False).fit(X_small)
    assert without.validation_scores_ is None and without.best_epoch_ == 5
    centered = AutoencoderTransformer(**SMALL).fit(X_small - 0.5)
    assert centered.output_activation_ == "identity"


def test_early_stopping_records_validation_and_stops(X_small):
    est = AutoencoderTransformer(early_stopping=True, n_iter_no_change=2, tol=10.0,
                                 max_iter=50, random_state=0)
    with pytest.warns(UserWarning, match="kept its PCA start"):
        est.fit(X_small)
    # A huge tol means no epoch improves on the first trained one, nor on the
    # start: stop after the first epoch and patience more, and keep the start.
    assert est.n_iter_ == 3 and est.best_epoch_ == 0
    assert len(est.validation_scores_) == est.n_iter_
    assert all(score < 0 for score in est.validation_scores_)


def test_convergence_warning_at_max_iter(X_small):
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        AutoencoderTransformer(max_iter=2, random_state=0).fit(X_small)


def test_score_samples_flags_outliers(X_small):
    est = AutoencoderTransformer(n_components=8, max_iter=60, random_state=0).fit(X_small)
    outliers = np.random.default_rng(0).uniform(0, 1, size=(20, X_small.shape[1]))
    scores_in, scores_out = est.score_samples(X_small), est.score_samples(outliers)
    assert scores_in.shape == (len(X_small),)
    assert np.median(scores_in) > np.max(scores_out)
    assert est.score(X_small) == pytest.approx(scores_in.mean(), rel=1e-6)


def test_verbose_controls_printing(X_small, capsys):
    AutoencoderTransformer(**SMALL).fit(X_small)
    assert capsys.readouterr().out == ""
    AutoencoderTransformer(**dict(SMALL, verbose=1)).fit(X_small)
    assert "train_loss" in capsys.readouterr().out


def test_user_callbacks_run_and_are_not_mutated(X_small):
    class CountEpochs(Callback):
        def __init__(self):
            self.epochs = 0

        def on_epoch_end(self, net, **kwargs):
            self.epochs += 1

    counter = CountEpochs()
    est = AutoencoderTransformer(callbacks=[("count", counter)], **SMALL).fit(X_small)
    assert counter.epochs == 0  # the estimator trains a copy
    assert dict(est.net_.callbacks_)["count"].epochs == 5


@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
@pytest.mark.parametrize(
    "bad_X, message",
    [
        # NaN marks a missing cell (a mixed table), but a column needs one observed value.
        (np.array([[np.nan, np.nan], [np.nan, 0.3]]), "no observed value"),
        (np.array([[0.1, np.nan], [0.2, np.inf]]), "infinity"),
        (np.array([[0.1, np.inf], [0.2, 0.3]]), "infinity"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert"),
        (np.array([[1 + 1j, 2], [3, 4]]), "[Cc]omplex"),
        (np.arange(5.0), "Expected 2D array"),
        (np.zeros((0, 3)), "0 sample"),
        (np.zeros((2, 2, 2, 2, 2)), "5 dimensions"),
    ],
)
def test_bad_fit_input_gets_clear_error(Estimator, bad_X, message):
    with pytest.raises(ValueError, match=message):
        Estimator(n_components=1, **SMALL).fit(bad_X)


@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
def test_transform_checks_features_and_codes(Estimator, X_small):
    est = Estimator(n_components=3, **SMALL).fit(X_small)
    with pytest.raises(ValueError, match="X has 10 features, but .* is expecting 64"):
        est.transform(X_small[:, :10])
    with pytest.raises(ValueError, match="X has 5 columns but .* n_components_=3"):
        est.inverse_transform(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        est.inverse_transform(np.full((2, 3), np.nan))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_components": 0}, "'n_components' parameter .* range \\[1, inf\\)"),
        ({"validation_fraction": 1.5}, "'validation_fraction' parameter"),
        ({"activation": "swish"}, "'activation' parameter .*relu"),
        ({"optimizer": "lbfgs"}, "'optimizer' parameter"),
        ({"hidden_layer_sizes": (16, 0)}, "hidden_layer_sizes=\\(16, 0\\) must be a tuple of positive ints"),
        ({"n_components": 100}, "n_components=100 must be at most n_features=64"),
        ({"device": "tpu9"}, "device='tpu9' is not a torch device"),
        ({"callbacks": ["not a callback"]}, "callbacks must hold skorch Callback"),
    ],
)
def test_invalid_parameters_get_clear_errors(params, message, X_small):
    with pytest.raises((ValueError, TypeError), match=message):
        AutoencoderTransformer(**dict(SMALL, **params)).fit(X_small)


@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
def test_not_fitted_errors(Estimator, X_small):
    est = Estimator()
    for method in (est.transform, est.inverse_transform, est.score_samples, est.reconstruct):
        with pytest.raises(NotFittedError):
            method(X_small)


def test_failed_refit_keeps_previous_model(X_small):
    est = AutoencoderTransformer(**SMALL).fit(X_small)
    codes = est.transform(X_small)
    with pytest.raises(ValueError):
        est.fit(np.full_like(X_small, np.nan))
    np.testing.assert_array_equal(est.transform(X_small), codes)
    assert est.n_features_in_ == X_small.shape[1]


def test_fit_accepts_integer_bool_and_float64_input(X_small):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for X in (X_small.astype(np.float64), (X_small > 0.5), (X_small * 16).astype(np.int64)):
            codes = AutoencoderTransformer(**SMALL).fit_transform(X)
            assert codes.dtype == np.float32 and np.isfinite(codes).all()
