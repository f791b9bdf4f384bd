"""Mixed tables: the table encoding, the masked loss and AutoencoderImputer."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skae import AutoencoderImputer
from skae._tabular import TableEncoder, masked_table_loss


@pytest.fixture(scope="module")
def table():
    rng = np.random.RandomState(0)
    n = 120
    a = rng.normal(size=n)
    frame = pd.DataFrame({
        "num": a * 10 + 50,
        "count": pd.array(rng.randint(0, 5, n), dtype="Int64"),
        "color": pd.Categorical(np.where(a > 0, "red", "blue"),
                                categories=["blue", "red", "green"]),
        "word": np.where(a > 0.5, "hi", "lo").astype(object),
        "flag": a > 0,
    }, index=pd.RangeIndex(100, 100 + n))
    frame.loc[frame.index[::7], "num"] = np.nan
    frame.loc[frame.index[::5], "color"] = np.nan
    frame.loc[frame.index[3::9], "word"] = None
    frame.loc[frame.index[::11], "count"] = pd.NA
    return frame


def fast(**kwargs):
    return AutoencoderImputer(max_iter=kwargs.pop("max_iter", 10), random_state=0, **kwargs)


def test_encoder_round_trip_keeps_dtypes_categories_index(table):
    enc = TableEncoder().fit(table)
    assert enc.categorical_ == ["color", "word", "flag"]
    values, observed = enc.encode(table)
    assert values.shape == (len(table), enc.n_slots_) and not np.isnan(values).any()
    np.testing.assert_array_equal(observed.astype(bool), table.notna().to_numpy())
    back = enc.decode(values, index=table.index)
    assert list(back.dtypes) == list(table.dtypes)
    assert back.index.equals(table.index)
    assert list(back["color"].cat.categories) == ["blue", "red", "green"]
    seen = table.notna().to_numpy()
    for j, c in enumerate(table.columns):
        if c == "num":
            np.testing.assert_allclose(back[c][seen[:, j]], table[c][seen[:, j]], rtol=1e-5)
        else:
            assert (back[c][seen[:, j]] == table[c][seen[:, j]]).all()


@pytest.mark.parametrize("spec", [["word", "color"], [2, 3], [False, False, True, True, False]])
def test_categorical_features_by_name_index_or_mask(table, spec):
    enc = TableEncoder(spec).fit(table)
    assert enc.categorical_ == ["color", "word"]


def test_masked_loss_ignores_missing_placeholders():
    torch.manual_seed(0)
    output = torch.randn(4, 4)
    target = torch.tensor([[0.5, 1, 0, 0], [1.0, 0, 1, 0], [-1.0, 0, 0, 1], [2.0, 1, 0, 0]])
    observed = torch.tensor([[1.0, 1], [0, 1], [1, 0], [1, 1]])
    loss = masked_table_loss(output, target, observed, 1, [3])
    changed = target.clone()
    changed[1, 0] = 99.0          # a missing number
    changed[2, 1:] = torch.tensor([1.0, 0, 0])  # a missing category
    assert torch.equal(loss, masked_table_loss(output, changed, observed, 1, [3]))
    assert not torch.equal(loss, masked_table_loss(output + 1, target, observed, 1, [3]))


def test_imputer_fills_missing_and_keeps_observed(table):
    out = fast().fit(table).transform(table)
    assert isinstance(out, pd.DataFrame)
    assert list(out.dtypes) == list(table.dtypes) and out.index.equals(table.index)
    assert not out.isna().any().any()
    seen = table.notna()
    pd.testing.assert_frame_equal(out.where(seen), table.where(seen))


@pytest.mark.slow
def test_imputer_learns_more_than_the_mean():
    rng = np.random.RandomState(0)
    z = rng.normal(size=(400, 2))
    X = z @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(400, 6))
    X_missing = X.copy()
    mask = rng.rand(*X.shape) < 0.2
    X_missing[mask] = np.nan
    ae = AutoencoderImputer(max_iter=150, random_state=0).fit_transform(X_missing)
    mean = SimpleImputer().fit_transform(X_missing)
    err_ae = np.sqrt(np.mean((ae[mask] - X[mask]) ** 2))
    err_mean = np.sqrt(np.mean((mean[mask] - X[mask]) ** 2))
    assert err_ae < 0.6 * err_mean



@pytest.mark.slow
def test_imputer_beats_a_linear_imputer_on_nonlinear_columns():
    # Columns that are nonlinear functions of one variable: a regression on
    # the other columns (IterativeImputer) misses what a network can learn.
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    rng = np.random.RandomState(0)
    t = rng.uniform(-2, 2, size=(600, 1))
    X = np.hstack([t, t ** 2, np.sin(2 * t), np.cos(2 * t), np.abs(t), np.tanh(3 * t)])
    X += 0.05 * rng.normal(size=X.shape)
    train, test = X[:400], X[400:]
    mask = rng.rand(*test.shape) < 0.2
    hidden = np.where(mask, np.nan, test)
    ae = AutoencoderImputer(random_state=0).fit(train).transform(hidden)
    linear = IterativeImputer(random_state=0).fit(train).transform(hidden)
    assert np.all(ae[~mask] == test[~mask])
    err_ae = np.sqrt(np.mean((ae[mask] - test[mask]) ** 2))
    err_linear = np.sqrt(np.mean((linear[mask] - test[mask]) ** 2))
    assert err_ae < 0.7 * err_linear

def test_add_indicator_and_feature_names(table):
    imputer = fast(add_indicator=True).fit(table)
    out = imputer.transform(table)
    names = imputer.get_feature_names_out()
    assert list(out.columns) == list(names)
    assert list(names[5:]) == [f"missingindicator_{c}" for c in ["num", "count", "color", "word"]]
    assert (out["missingindicator_num"] == table["num"].isna()).all()
    X = np.array([[1.0, np.nan], [2.0, 3.0], [np.nan, 1.0], [4.0, 2.0]])
    arr = fast(add_indicator=True).fit(X)
    assert arr.transform(X).shape == (4, 4)


def test_polars_in_and_out(table):
    pl = pytest.importorskip("polars")
    frame = pl.from_pandas(table[["num", "word"]].reset_index(drop=True))
    out = fast().fit(frame).transform(frame)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == ["num", "word"] and out.null_count().sum_horizontal()[0] == 0


def test_in_a_pipeline():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    y = X.sum(axis=1)
    X[rng.rand(*X.shape) < 0.1] = np.nan
    model = make_pipeline(fast(), Ridge()).fit(X, y)
    assert model.score(X, y) > 0.5


def test_score_samples_flags_unusual_rows(table):
    imputer = fast(max_iter=20).fit(table)
    scores = imputer.score_samples(table)
    assert scores.shape == (len(table),) and (scores <= 0).all()
    odd = table.iloc[:5].copy()
    odd["num"] = 1e3
    assert imputer.score_samples(odd).mean() < scores.mean()


# -- bad input ---------------------------------------------------------------
def test_all_missing_column_is_an_error(table):
    bad = table.assign(empty=np.nan)
    with pytest.raises(ValueError, match=r"\['empty'\] have no observed value"):
        fast().fit(bad)


def test_unseen_category_warns_and_counts_as_missing(table):
    imputer = fast().fit(table)
    new = table.iloc[:3].copy()
    new["word"] = ["hi", "new", "lo"]
    with pytest.warns(UserWarning, match="'word' has categories unseen in fit"):
        out = imputer.transform(new)
    assert list(out["word"]) == ["hi", "new", "lo"]


def test_dtype_change_is_an_error(table):
    imputer = fast().fit(table)
    with pytest.raises(ValueError, match="changed dtype since fit"):
        imputer.transform(table.assign(num=table["num"].astype(str)))


def test_too_many_categories_is_an_error(table):
    ids = table.assign(id=[f"row{i}" for i in range(len(table))])
    with pytest.raises(ValueError, match=r"more categories than max_categories=100"):
        fast().fit(ids)
    with pytest.raises(ValueError, match=r"'word': 3"):
        fast(max_categories=2).fit(table.assign(word=table["word"].fillna("x")))


def test_all_missing_row_is_filled(table):
    imputer = fast().fit(table)
    row = table.iloc[:1].mask(np.ones((1, table.shape[1]), dtype=bool))
    assert row.isna().all().all()
    out = imputer.transform(row)
    assert not out.isna().any().any()
    assert imputer.score_samples(row)[0] == 0


def test_duplicate_column_names_are_an_error(table):
    dup = table[["num", "word"]].copy()
    dup.columns = ["a", "a"]
    with pytest.raises(ValueError, match=r"duplicate column names \['a'\]"):
        fast().fit(dup)


@parametrize_with_checks([AutoencoderImputer(max_iter=3, random_state=0)])
def test_sklearn_checks(estimator, check):
    check(estimator)


def test_imputer_fits_alike_in_threads_and_leaves_torch_rng_alone():
    """Issue 18's rule for the imputer: owned generators, bit-identical in threads."""
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from sklearn.datasets import load_diabetes

    from skae import AutoencoderImputer

    X = load_diabetes().data[:150].copy()
    X[np.random.default_rng(0).random(X.shape) < 0.2] = np.nan

    def fill(_):
        return AutoencoderImputer(max_iter=3, random_state=0).fit_transform(X)

    before = torch.get_rng_state()
    serial = fill(0)
    with ThreadPoolExecutor(4) as pool:
        filled = list(pool.map(fill, range(4)))
    assert all(np.array_equal(f, serial) for f in filled)
    assert torch.equal(torch.get_rng_state(), before)
