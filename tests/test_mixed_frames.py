"""The three estimators on mixed tables: categorical columns and missing cells."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer

ESTIMATORS = [AutoencoderTransformer, DenoisingAutoencoder, VAETransformer]
SMALL = dict(n_components=2, hidden_layer_sizes=(16,), max_iter=4, n_threads=1,
             random_state=0)


def _fit(model, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


@pytest.fixture(scope="module")
def frame():
    """Numeric, integer, category, string and boolean columns, cells missing in three."""
    rng = np.random.default_rng(0)
    n = 240
    kind = rng.choice(["x", "y", "z"], n)
    df = pd.DataFrame({
        "size": rng.normal(size=n) + (kind == "x") * 3.0,
        "count": rng.integers(0, 10, n),
        "kind": pd.Categorical(kind, categories=["x", "y", "z"]),
        "label": pd.array(rng.choice(["u", "v"], n), dtype="string"),
        "flag": rng.random(n) > 0.5,
    }, index=pd.RangeIndex(1000, 1000 + n, name="row"))
    df.loc[df.index[::7], "size"] = np.nan
    df.loc[df.index[::11], "kind"] = None
    df.loc[df.index[::13], "label"] = pd.NA
    return df


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_round_trips_keep_columns_dtypes_categories_and_index(Estimator, frame):
    model = _fit(Estimator(**SMALL), frame)
    assert model.n_features_in_ == 5
    assert list(model.feature_names_in_) == list(frame.columns)
    codes = model.transform(frame)
    assert codes.shape == (len(frame), 2) and np.isfinite(codes).all()
    for out, index in ((model.reconstruct(frame), frame.index),
                       (model.inverse_transform(codes), pd.RangeIndex(len(frame)))):
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == list(frame.columns)
        assert out.dtypes.to_dict() == frame.dtypes.to_dict()
        assert list(out["kind"].cat.categories) == ["x", "y", "z"]
        assert out.index.equals(index)
        # reconstruct fills every cell, the missing ones too.
        assert not out.isna().any().any()
    scores = model.score_samples(frame)
    assert scores.shape == (len(frame),) and np.isfinite(scores).all()


def test_set_output_gives_frames_of_codes(frame):
    model = _fit(AutoencoderTransformer(**SMALL).set_output(transform="pandas"), frame)
    codes = model.transform(frame)
    assert isinstance(codes, pd.DataFrame) and codes.index.equals(frame.index)
    assert list(codes.columns) == ["autoencodertransformer0", "autoencodertransformer1"]


def test_polars_in_and_out(frame):
    pl = pytest.importorskip("polars")
    table = pl.from_pandas(frame.reset_index(drop=True))
    model = _fit(AutoencoderTransformer(**SMALL), table)
    out = model.reconstruct(table)
    assert isinstance(out, pl.DataFrame) and out.columns == table.columns
    assert out.null_count().sum_horizontal().item() == 0
    assert isinstance(model.inverse_transform(model.transform(table)), pl.DataFrame)


def test_the_masked_loss_ignores_missing_cells(frame):
    # A missing cell's placeholder in the target, and the output there, change nothing.
    model = _fit(AutoencoderTransformer(**SMALL), frame)
    net, table = model.net_, model._table
    X = torch.from_numpy(model._validate_input(frame, reset=False))
    output = torch.randn(X.shape)
    missing = torch.from_numpy(~table.slot_mask(
        X[:, table.n_slots_:].numpy()[:, np.argsort(table.column_order())].astype(bool)))
    assert missing.any()
    changed_target, changed_output = X.clone(), output.clone()
    changed_target[:, :table.n_slots_][missing] = 7.0
    changed_output[:, :table.n_slots_][missing] = -5.0
    before = net.table_row_loss(output, X)
    torch.testing.assert_close(net.table_row_loss(output, changed_target), before)
    torch.testing.assert_close(net.table_row_loss(changed_output, X), before)
    # The encoder sees a missing cell as a zero value beside a cleared indicator.
    assert (X[:, :table.n_slots_][missing] == 0).all()


def test_the_pca_start_is_pca_of_the_encoded_columns(frame):
    model = _fit(AutoencoderTransformer(**{**SMALL, "max_iter": 1}, learning_rate_init=1e-12),
                 frame)
    encoded = model._validate_input(frame, reset=False)
    pca = PCA(2).fit(encoded.astype(np.float64))
    output = model._map_batches(encoded, lambda m, b: m.decode(m.encode(b)), encoded.shape[1])
    np.testing.assert_allclose(output, pca.inverse_transform(pca.transform(encoded)), atol=1e-4)


def test_numeric_arrays_with_nan_are_mixed_tables_and_others_are_not(frame):
    X = np.random.default_rng(1).normal(size=(200, 5)).astype(np.float32)
    plain = _fit(AutoencoderTransformer(**SMALL), X)
    assert plain._table is None
    X_nan = X.copy()
    X_nan[::5, 1] = np.nan
    model = _fit(AutoencoderTransformer(**SMALL), X_nan)
    filled = model.reconstruct(X_nan)
    assert isinstance(filled, np.ndarray) and filled.shape == X.shape
    assert np.isfinite(filled).all()
    numeric = frame[["size", "count"]].dropna()
    assert _fit(AutoencoderTransformer(**SMALL), numeric)._table is None


def test_score_samples_flags_rows_unlike_the_training_rows(frame):
    model = _fit(AutoencoderTransformer(**{**SMALL, "max_iter": 30}), frame)
    odd = frame.iloc[:20].copy()
    odd["size"] = 40.0
    assert model.score_samples(odd).mean() < model.score_samples(frame.iloc[:20]).mean()


def test_categorical_features_by_name_index_and_mask(frame):
    numeric = frame[["size", "count"]].fillna(0.0)
    for spec in (["count"], [1], [False, True]):
        model = _fit(AutoencoderTransformer(**SMALL, categorical_features=spec), numeric)
        assert model._table.categorical_ == ["count"]
        out = model.reconstruct(numeric)
        assert set(out["count"]) <= set(numeric["count"])


def test_warm_start_with_a_categorical_mask(frame):
    # A mask compares element by element: unchanged, the fit continues;
    # another mask is a change the warm start refuses.
    numeric = frame[["size", "count"]].fillna(0.0)
    model = _fit(AutoencoderTransformer(**SMALL, categorical_features=np.array([False, True])),
                 numeric)
    _fit(model.set_params(warm_start=True), numeric)
    assert model.n_iter_ == 2 * SMALL["max_iter"]
    with pytest.raises(ValueError, match="categorical_features=.*set up the training"):
        model.set_params(categorical_features=np.array([True, True])).fit(numeric)


def test_in_a_pipeline_and_a_search(frame):
    y = (frame["kind"] == "x").to_numpy()
    pipe = Pipeline([("ae", AutoencoderTransformer(**SMALL)), ("lr", LogisticRegression())])
    search = GridSearchCV(pipe, {"ae__n_components": [2, 3]}, cv=2)
    _fit(search, frame, y)
    assert search.best_estimator_.score(frame, y) > 0.5


def test_pickle_round_trip_and_save_refuses(frame, tmp_path):
    model = _fit(VAETransformer(**SMALL), frame)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.transform(frame), model.transform(frame))
    with pytest.raises(TypeError, match="mixed table.*pickle"):
        model.save(tmp_path / "model.safetensors")


def test_unseen_categories_warn_and_count_as_missing(frame):
    model = _fit(AutoencoderTransformer(**SMALL), frame)
    new = frame.iloc[:5].copy()
    new["label"] = pd.array(["w"] * 5, dtype="string")
    with pytest.warns(UserWarning, match="unseen in fit"):
        codes = model.transform(new)
    assert np.isfinite(codes).all()


@pytest.mark.parametrize("params, error", [
    (dict(architecture="conv"), "needs architecture='mlp'"),
    (dict(output_activation="sigmoid"), "does not apply to a table"),
])
def test_bad_parameters_for_mixed_tables(params, error, frame):
    with pytest.raises(ValueError, match=error):
        AutoencoderTransformer(**{**SMALL, **params}).fit(frame)


def test_bernoulli_vae_refuses_mixed_tables(frame):
    with pytest.raises(ValueError, match="likelihood='bernoulli' does not apply"):
        VAETransformer(**SMALL, likelihood="bernoulli").fit(frame)


def test_bad_mixed_input(frame):
    model = _fit(AutoencoderTransformer(**SMALL), frame)
    with pytest.raises(ValueError, match="columns"):
        model.transform(frame[["count", "size", "kind", "label", "flag"]])
    with pytest.raises(ValueError, match="4 features"):
        model.transform(frame.iloc[:, :4])
    with pytest.raises(ValueError, match="changed dtype"):
        model.transform(frame.astype({"kind": object}))
    empty = frame.assign(size=np.nan)
    with pytest.raises(ValueError, match="no observed value"):
        AutoencoderTransformer(**SMALL).fit(empty)
    ids = frame.assign(label=[f"id{i}" for i in range(len(frame))])
    with pytest.raises(ValueError, match="max_categories"):
        AutoencoderTransformer(**SMALL).fit(ids)
    with pytest.raises(ValueError, match="not a column"):
        AutoencoderTransformer(**SMALL, categorical_features=["nope"]).fit(frame)


def test_vae_samples_and_interpolates_mixed_rows(frame):
    vae = _fit(VAETransformer(**SMALL), frame)
    samples = vae.sample(5, random_state=0)
    assert isinstance(samples, pd.DataFrame) and samples.dtypes.to_dict() == frame.dtypes.to_dict()
    path = vae.interpolate(frame.iloc[0], frame.iloc[[1]], n_steps=4)
    assert isinstance(path, pd.DataFrame) and len(path) == 4
    with pytest.raises(ValueError, match="pass one row"):
        vae.interpolate(frame.iloc[:2], frame.iloc[[1]])


def test_a_masking_denoiser_hides_whole_cells(frame):
    dae = _fit(DenoisingAutoencoder(**SMALL, noise="masking", noise_level=0.5), frame)
    X = torch.from_numpy(dae._validate_input(frame, reset=False))
    corrupted = dae.net_.corruption(X, torch.Generator().manual_seed(0))
    table = dae._table
    hidden = (X[:, table.n_slots_:] == 1) & (corrupted[:, table.n_slots_:] == 0)
    assert 0.4 < hidden.float().mean() / X[:, table.n_slots_:].mean() < 0.6
    slot_of_column = torch.as_tensor(dae._table_cells["slot_index"])
    # A hidden cell's values are all zero; a kept cell's values are untouched.
    values, clean = corrupted[:, :table.n_slots_], X[:, :table.n_slots_]
    hidden_slots = hidden[:, slot_of_column]
    assert (values[hidden_slots] == 0).all()
    torch.testing.assert_close(values[~hidden_slots], clean[~hidden_slots])
    with pytest.raises(ValueError, match="salt_and_pepper"):
        DenoisingAutoencoder(**SMALL, noise="salt_and_pepper").fit(frame)


def test_arrays_on_disk_with_missing_values_are_refused(tmp_path):
    X = np.random.default_rng(2).normal(size=(300, 4)).astype(np.float32)
    X[::3, 0] = np.nan
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                   shape=X.shape)
    mm[:] = X
    with pytest.raises(ValueError, match="read chunk by chunk .* missing values"):
        AutoencoderTransformer(**SMALL).fit(np.load(tmp_path / "X.npy", mmap_mode="r"))


def test_codes_of_no_spread_do_not_magnify_rows_off_the_training_span():
    # A one-hot block sums to one on every row, so a code as wide as the data
    # reaches PCA's null space, whose spread is zero up to rounding. Rows that
    # leave that span (as hiding a categorical cell zeros its block) must stay tame.
    rng = np.random.default_rng(3)
    block = np.eye(3)[rng.integers(0, 3, 300)]
    X = np.hstack([rng.normal(size=(300, 5)), block]).astype(np.float32)
    model = _fit(AutoencoderTransformer(**{**SMALL, "n_components": 8, "max_iter": 5},
                                        early_stopping=False), X)
    moved = X.copy()
    moved[:, 5:] = 0.0
    error = np.mean((model.reconstruct(moved) - moved) ** 2)
    assert np.isfinite(error) and error < 10.0
