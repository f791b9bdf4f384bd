"""Property-based tests: every estimator meets random, hostile input with grace.

hypothesis generates arrays and frames of 0 to a few rows and columns, of
every dtype (bool, signed and unsigned ints, float16/32/64, complex, object,
strings, bytes), with NaN, inf, huge and tiny magnitudes, constant columns
and duplicated rows; pandas frames mixing float, int, nullable, categorical,
string and datetime columns; scipy sparse matrices; lists of lists (ragged
too); images; scalars and arrays of other dimensions.

The property: each call either works, and then returns arrays without NaN, of
the expected shape, or raises ``ValueError``/``TypeError`` whose message says
what was wrong; never another exception, never a hang. Where the input's
fault is known (NaN, inf, no rows, complex, sparse, renamed columns, ...) the
message must name it. Inputs rejected by design: sparse matrices (TypeError
asking to densify with ``.toarray()``), complex numbers, NaN/inf, non-numeric
strings and categories, datetime columns, 1-D and 5-D arrays.

Each case meets an estimator with either start, ``init="pca"`` or
``"random"``, drawn with it. Valid input of one row meets the property above
from the random start; the PCA start, which needs two rows, must refuse it
with a message that says so.

``SKAE_PROPERTY_EXAMPLES`` scales the number of generated cases (default 1.0;
e.g. 10 for a long hunt).
"""

import math
import os
import re
import warnings
from collections import Counter

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer

ESTIMATORS = [AutoencoderTransformer, DenoisingAutoencoder, VAETransformer]
# Each generated case meets one of the starts, drawn with it.
INITS = ["pca", "random"]
SCALE = float(os.environ.get("SKAE_PROPERTY_EXAMPLES", "1"))
FLOAT32_MAX = float(np.finfo(np.float32).max)

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

# Calls per test and outcome, and generated inputs per test, reported at the
# end of the module.
CASES = Counter()
INPUTS = Counter()


def _settings(max_examples):
    return settings(
        max_examples=max(1, int(max_examples * SCALE)), deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request):
    yield
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(
            f"\nProperty tests: {sum(INPUTS.values())} generated inputs "
            f"({dict(INPUTS)}), {sum(CASES.values())} calls:")
        for (test, outcome), n in sorted(CASES.items()):
            reporter.write_line(f"  {test} {outcome}: {n}")


# ----------------------------------------------------------------------
# Strategies. Each yields (X, expected): expected is None when the call must
# work (or fail only because training diverged), a regex the error message
# must match, or "any" when any ValueError/TypeError is acceptable.
# ----------------------------------------------------------------------
SPECIAL_VALUES = [0.0, -0.0, 1.0, 5e-324, 1e-300, 1e-45, -1e-30, 1e15, -1e20, 1e30,
                  3e38, -3.4e38, 1e39, 1e300, -1e300, math.nan, math.inf, -math.inf]
INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]


def _float_elements(max_magnitude=None):
    values = st.one_of(st.floats(), st.sampled_from(SPECIAL_VALUES),
                       st.floats(-1e3, 1e3))
    if max_magnitude is not None:
        values = values.filter(lambda v: not math.isfinite(v) or abs(v) <= max_magnitude
                               or abs(v) > 1.1 * FLOAT32_MAX)
    return values


@st.composite
def numeric_tables(draw, n_cols=st.integers(0, 4), max_magnitude=None, dtypes=None):
    """2-D arrays of a numeric dtype with optional constant columns and duplicated rows."""
    dtype = np.dtype(draw(st.sampled_from(dtypes or [
        "bool", *INT_DTYPES, *FLOAT_DTYPES, "complex64", "complex128"])))
    shape = (draw(st.integers(0, 6)), draw(n_cols))
    if dtype.kind in "fc":
        X = draw(hnp.arrays(np.float64, shape, elements=_float_elements(max_magnitude)))
        with np.errstate(all="ignore"):
            X = X.astype(dtype)
        if dtype.kind == "c" and X.size and draw(st.booleans()):
            X = X + 1j
    else:
        X = draw(hnp.arrays(dtype, shape))
    if X.size and draw(st.booleans()):
        column = draw(st.integers(0, shape[1] - 1))
        X[:, column] = X[0, column]
    if X.size and draw(st.booleans()):
        X = np.concatenate([X, X[: draw(st.integers(1, shape[0]))]])
    return X


def numeric_expectation(X):
    """What fitting or transforming the 2-D numeric array X must do."""
    if X.dtype.kind == "c":
        return "Complex data not supported"
    if X.shape[0] == 0:
        return "0 sample"
    if X.shape[1] == 0:
        return "0 feature"
    values = X.astype(np.float64) if X.dtype.kind in "fc" else None
    if values is not None and np.isnan(values).any():
        return "contains NaN"
    if values is not None and (np.abs(values) > FLOAT32_MAX).any():
        return "infinity or a value too large"
    return None


def fit_expectation(X, expected):
    """What fitting X must do: in fit, NaN marks a missing cell of a mixed table.

    A column needs one observed value, and infinity stays an error.
    """
    if expected != "contains NaN":
        return expected
    values = X.astype(np.float64)
    if (np.abs(values[~np.isnan(values)]) > FLOAT32_MAX).any():
        return "infinity or a value too large"
    if np.isnan(values).all(axis=0).any():
        return "no observed value"
    return None


@st.composite
def numeric_cases(draw, **kwargs):
    X = draw(numeric_tables(**kwargs))
    return X, numeric_expectation(X)


OBJECT_ELEMENTS = st.one_of(
    st.integers(-10**6, 10**6), st.floats(), st.booleans(), st.none(),
    st.sampled_from(["1.5", "-2", "1e3", "nan", "inf", "abc", "", " 3 "]),
    st.text(max_size=3),
)


@st.composite
def object_cases(draw):
    """Object arrays, unicode strings and bytes."""
    shape = (draw(st.integers(0, 4)), draw(st.integers(0, 3)))
    kind = draw(st.sampled_from(["object", "unicode", "bytes"]))
    if kind == "object":
        X = draw(hnp.arrays(object, shape, elements=OBJECT_ELEMENTS))
    else:
        texts = draw(hnp.arrays(object, shape, elements=st.one_of(
            st.sampled_from(["0", "0.5", "1", "-3", "1e40", "nan", "x"]),
            st.text(alphabet="abc0123456789.-e", max_size=4))))
        X = texts.astype("U8")
        if kind == "bytes":
            X = np.char.encode(X, "ascii")
    return X, "any"


@st.composite
def image_cases(draw):
    """Image stacks (n, H, W) or (n, C, H, W)."""
    ndim = draw(st.sampled_from([3, 4]))
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from(["uint8", "float32", "float64", "int16"]))
    if np.dtype(dtype).kind == "f":
        X = draw(hnp.arrays(np.float64, shape, elements=_float_elements())).astype(dtype)
    else:
        X = draw(hnp.arrays(dtype, shape))
    flat = X.reshape(shape[0], math.prod(shape[1:]))
    return X, numeric_expectation(flat)


@st.composite
def other_dimension_cases(draw):
    kind = draw(st.sampled_from(["scalar", "1d", "5d", "none", "string"]))
    if kind == "scalar":
        return np.float64(draw(st.floats())), "Expected 2D array"
    if kind == "1d":
        return draw(hnp.arrays(np.float64, draw(st.integers(0, 5)))), "Expected 2D array"
    if kind == "5d":
        return np.zeros((2, 1, 2, 2, 2)), "5 dimensions"
    if kind == "none":
        return None, "any"
    return draw(st.text(max_size=5)), "any"


SPARSE_FORMATS = ["csr_matrix", "csc_matrix", "coo_matrix", "lil_matrix", "dok_matrix",
                  "bsr_matrix", "csr_array", "coo_array"]


@st.composite
def sparse_cases(draw):
    X = draw(numeric_tables(dtypes=["float64", "float32", "int64", "bool"]))
    matrix = getattr(sp, draw(st.sampled_from(SPARSE_FORMATS)))(X)
    # Rejected by design: densify first. The message must say how.
    return matrix, r"dense data is required.*\.toarray\(\)"


@st.composite
def list_cases(draw):
    kind = draw(st.sampled_from(["table", "images", "ragged"]))
    if kind == "ragged":
        rows = draw(st.lists(st.lists(st.floats(-5, 5), min_size=1, max_size=3),
                             min_size=2, max_size=4))
        if len({len(row) for row in rows}) == 1:
            rows[0].append(1.0)
        return rows, "inhomogeneous"
    if kind == "images":
        X, expected = draw(image_cases())
        return X.tolist(), expected if X.shape[0] else "any"
    X = draw(numeric_tables(dtypes=["float64", "int64", "bool"]))
    return X.tolist(), numeric_expectation(X) if X.shape[0] else "any"


# Frame columns: how to draw values, and whether skae must accept the column.
def _column(kind, n_rows, draw):
    with_na = draw(st.booleans())

    def nullable(values, dtype):
        values = list(values)
        if with_na and values:
            values[draw(st.integers(0, len(values) - 1))] = None
        # A missing cell is fine beside an observed one.
        return pd.array(values, dtype=dtype), not (with_na and len(values) == 1)

    floats = st.floats(-1e6, 1e6)
    if kind == "float64":
        values = draw(st.lists(st.one_of(floats, st.sampled_from([math.nan, math.inf])),
                               min_size=n_rows, max_size=n_rows))
        # NaN is a missing cell; a column needs one observed value, and no inf.
        return np.array(values), (not any(math.isinf(v) for v in values)
                                   and any(math.isfinite(v) for v in values))
    if kind == "float32":
        return np.array(draw(st.lists(floats, min_size=n_rows, max_size=n_rows)),
                        dtype=np.float32), True
    if kind == "int64":
        return np.array(draw(st.lists(st.integers(-2**62, 2**62), min_size=n_rows,
                                      max_size=n_rows)), dtype=np.int64), True
    if kind == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=n_rows, max_size=n_rows))), True
    if kind == "Int64":
        return nullable(draw(st.lists(st.integers(-100, 100), min_size=n_rows,
                                      max_size=n_rows)), "Int64")
    if kind == "Float64":
        return nullable(draw(st.lists(floats, min_size=n_rows, max_size=n_rows)), "Float64")
    if kind == "boolean":
        return nullable(draw(st.lists(st.booleans(), min_size=n_rows, max_size=n_rows)),
                        "boolean")
    if kind == "category_int":
        return pd.Categorical(draw(st.lists(st.integers(0, 3), min_size=n_rows,
                                            max_size=n_rows))), True
    if kind == "category_str":
        return pd.Categorical(draw(st.lists(st.sampled_from(["x", "y"]), min_size=n_rows,
                                            max_size=n_rows))), True
    if kind == "string":
        values = draw(st.lists(st.sampled_from(["1", "2.5", "x"]), min_size=n_rows,
                               max_size=n_rows))
        return pd.array(values, dtype="string"), True  # categorical
    if kind == "object":
        values = draw(st.lists(OBJECT_ELEMENTS, min_size=n_rows, max_size=n_rows))
        return pd.Series(values, dtype=object), False
    assert kind == "datetime"
    return pd.date_range("2020-01-01", periods=n_rows), n_rows == 0


NUMERIC_KINDS = {"float64", "float32", "int64", "bool", "Int64", "Float64", "boolean"}
COLUMN_KINDS = ["float64", "float32", "int64", "bool", "Int64", "Float64", "boolean",
                "category_int", "category_str", "string", "object", "datetime"]


@st.composite
def frame_cases(draw):
    n_rows = draw(st.integers(0, 5))
    kinds = draw(st.lists(st.sampled_from(COLUMN_KINDS), max_size=4))
    name_kind = draw(st.sampled_from(["str", "str", "int", "mixed"]))
    columns, clean = {}, True
    for i, kind in enumerate(kinds):
        name = i if name_kind == "int" or (name_kind == "mixed" and i % 2) else f"c{i}"
        columns[name], column_clean = _column(kind, n_rows, draw)
        clean = clean and column_clean
    X = pd.DataFrame(columns, index=pd.RangeIndex(n_rows))
    if name_kind == "mixed" and len(kinds) >= 2:
        # Either problem may be reported first.
        return X, "string names|dates or durations" if "datetime" in kinds else "string names"
    if n_rows == 0:
        # Non-numeric columns may be refused for their dtype before the row count.
        return X, "0 sample" if kinds and set(kinds) <= NUMERIC_KINDS else "any"
    if not kinds:
        # scikit-learn's check_array would pass numpy's "at least one array
        # or dtype is required" through here; skae says what is wrong.
        return X, "DataFrame with 0 columns"
    # Columns skae must accept; others may fail with any clear error.
    return X, None if clean else "any"


@st.composite
def clean_cases(draw):
    """Valid tables of moderate values (these must fit), as arrays or frames."""
    dtype = draw(st.sampled_from(["float64", "float32", "int64", "uint8", "bool"]))
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 4)))
    elements = st.floats(-1e4, 1e4) if dtype.startswith("float") else None
    X = draw(hnp.arrays(dtype, shape, elements=elements))
    if draw(st.booleans()):
        X = np.concatenate([X, X[:1]])  # a duplicated row
    if draw(st.booleans()):
        X[:, 0] = X[0, 0]  # a constant column
    if draw(st.booleans()):
        X = pd.DataFrame(X, columns=[f"c{i}" for i in range(shape[1])])
    return X, None


def any_input():
    return st.one_of(clean_cases(), clean_cases(), numeric_cases(), object_cases(),
                     image_cases(), other_dimension_cases(), sparse_cases(), list_cases(),
                     frame_cases())


# ----------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------
def _check_error(exc, expected, where):
    """The exception is a ValueError/TypeError whose message says what was wrong."""
    assert isinstance(exc, (ValueError, TypeError)), (
        f"{where} raised {type(exc).__name__}: {exc}")
    message = str(exc)
    assert len(message) > 10, f"{where} raised an unhelpful message {message!r}"
    if expected == "any":
        return
    if expected is None:
        # Finite numeric input may only fail because training diverged, or
        # because its values overflow the fitted network (huge magnitudes).
        assert re.search("Training diverged at epoch|too large for this model", message), (
            f"{where} failed: {message}")
        return
    assert re.search(expected, message, flags=re.DOTALL), (
        f"{where}: expected a message matching {expected!r}, got {message!r}")


def _call(test, outcome_key, function, expected, where):
    """Run ``function``; check its error if it fails. Return (ok, result)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = function()
    except Exception as exc:  # noqa: BLE001 - the property is about the type
        _check_error(exc, expected, where)
        CASES[test, f"{outcome_key}:{type(exc).__name__}"] += 1
        return False, None
    CASES[test, f"{outcome_key}:ok"] += 1
    return True, result


def _assert_no_nan(array, where):
    if hasattr(array, "isna"):  # a mixed table's frame: every cell filled
        assert not array.isna().to_numpy().any(), f"{where} returned missing cells"
        return
    array = np.asarray(array)
    assert not np.isnan(array.astype(np.float64)).any(), f"{where} returned NaN"


def _estimator(cls, draw):
    return cls(
        n_components=1,
        init=draw(st.sampled_from(INITS)),
        hidden_layer_sizes=draw(st.sampled_from([(2,), ()])),
        max_iter=draw(st.integers(1, 2)),
        batch_size=draw(st.sampled_from([2, 4, 128])),
        device="cpu", n_threads=1, random_state=0,
    )


@pytest.mark.parametrize("cls", ESTIMATORS)
@_settings(max_examples=300)
@given(case=any_input(), data=st.data())
def test_fit_works_or_raises_a_clear_error(cls, case, data):
    X, expected = case
    if isinstance(X, np.ndarray) and X.ndim == 2:
        expected = fit_expectation(X, expected)
    INPUTS["fit"] += 1
    est = _estimator(cls, data.draw)
    if expected is None and est.init == "pca" and len(X) == 1:
        # Valid input, but PCA needs two rows: the message says so and how to go on.
        expected = (r"n_samples=1: the PCA start \(init='pca'\) needs at least 2 "
                    r"samples.*init='random'")
    ok, _ = _call("fit", f"{cls.__name__}[{est.init}]", lambda: est.fit(X), expected,
                  f"{cls.__name__}(init={est.init!r}).fit")
    if not ok:
        return
    assert expected is None or expected == "any", f"fit accepted input that must fail: {expected}"
    n_samples = len(X)
    codes = est.transform(X)
    assert codes.shape == (n_samples, 1) and codes.dtype == np.float32
    _assert_no_nan(codes, "transform")
    decoded = est.inverse_transform(codes)
    assert len(decoded) == n_samples
    _assert_no_nan(decoded, "inverse_transform")
    # Huge magnitudes may overflow the VAE's bound (a scale learned near zero):
    # a clear error then, as _check_error allows for fit.
    ok, scores = _call("fit", f"{cls.__name__}.score_samples", lambda: est.score_samples(X),
                       None, f"{cls.__name__}.score_samples")
    if ok:
        assert scores.shape == (n_samples,)
        _assert_no_nan(scores, "score_samples")
    _assert_no_nan(est.reconstruct(X), "reconstruct")


# ----------------------------------------------------------------------
# A fitted estimator meets hostile input
# ----------------------------------------------------------------------
COLUMNS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def fitted():
    """A model of each estimator and init, keyed ``(cls, init)``.

    The two inits check their input on different first layers (the linear
    path, the network's first hidden layer).
    """
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 3)), columns=COLUMNS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {(cls, init): cls(n_components=1, init=init, hidden_layer_sizes=(2,),
                                 max_iter=2, device="cpu", n_threads=1,
                                 random_state=0).fit(X)
                for cls in ESTIMATORS for init in INITS}


@st.composite
def renamed_frames(draw):
    """Float frames whose columns are the fitted ones, reordered, renamed or changed."""
    names = draw(st.one_of(
        st.just(COLUMNS), st.permutations(COLUMNS),
        st.lists(st.sampled_from(["a", "b", "c", "d", "A"]), min_size=1, max_size=4,
                 unique=True)))
    n_rows = draw(st.integers(1, 4))
    X = pd.DataFrame(draw(hnp.arrays(np.float64, (n_rows, len(names)),
                                     elements=st.floats(-1e6, 1e6))), columns=names)
    if list(names) == COLUMNS:
        return X, None
    if sorted(names) == COLUMNS:
        return X, "same order as they were in fit"
    return X, "feature names should match"


# Magnitudes up to 1e30 stay inside float32 through the tiny network; larger
# finite ones overflow in it (reported, see test_reliability.py).
def fitted_input():
    return st.one_of(
        numeric_cases(n_cols=st.sampled_from([3, 3, 3, 0, 1, 4]), max_magnitude=1e30),
        numeric_cases(n_cols=st.just(3), max_magnitude=1e30,
                      dtypes=["float64", "float32", "int32", "uint8", "bool"]),
        renamed_frames(), renamed_frames(), object_cases(), image_cases(), other_dimension_cases(),
        sparse_cases(), list_cases(), frame_cases().map(_other_frame))


def _other_frame(case):
    """A frame from ``frame_cases`` has other column names than the fitted one."""
    X, expected = case
    return X, expected if expected == "string names" else "any"


def _fitted_expectation(X, expected):
    """Adjust a fit-time expectation to a model fitted on 3 named columns."""
    n_features = None
    if isinstance(X, np.ndarray) and X.ndim >= 2 and X.dtype.kind not in "cOUS":
        n_features = math.prod(X.shape[1:])
    if expected is None and n_features is not None and n_features != 3:
        return "expecting 3 features"
    if expected in ("contains NaN", "infinity or a value too large"):
        # transform checks finiteness while encoding, after the width.
        return f"{expected}|expecting 3 features"
    if expected is None and isinstance(X, (pd.DataFrame, list)):
        return "any"  # other columns or widths: the model cannot use them
    return expected


@pytest.mark.parametrize("cls", ESTIMATORS)
@_settings(max_examples=300)
@given(case=fitted_input(), init=st.sampled_from(INITS))
def test_fitted_methods_work_or_raise_a_clear_error(cls, fitted, case, init):
    X, expected = case
    INPUTS["fitted"] += 1
    expected = _fitted_expectation(X, expected)
    est = fitted[cls, init]
    for method in ("transform", "score_samples", "reconstruct", "score"):
        ok, result = _call(f"fitted.{method}", f"{cls.__name__}[{init}]",
                           lambda: getattr(est, method)(X), expected,
                           f"{cls.__name__}(init={init!r}).{method}")
        if not ok:
            continue
        assert expected in (None, "any"), f"{method} accepted input that must fail: {expected}"
        _assert_no_nan(result, method)
        if method == "transform":
            assert result.shape == (len(X), 1) and result.dtype == np.float32


def _anything_but_unexpected_success(case):
    """Keep an expected error's message, but let any clear error do."""
    return case[0], "any"


@st.composite
def code_cases(draw):
    """Codes for inverse_transform: right and wrong widths, and hostile input."""
    X, expected = draw(st.one_of(
        numeric_cases(n_cols=st.sampled_from([1, 1, 1, 0, 2]), max_magnitude=1e30),
        numeric_cases(n_cols=st.just(1), max_magnitude=1e30, dtypes=["float64", "float32"]),
        object_cases(), sparse_cases(),
        # Images and 5-D arrays are not codes: check_array names their dimension.
        image_cases().map(_anything_but_unexpected_success),
        other_dimension_cases().map(_anything_but_unexpected_success),
        list_cases().map(_anything_but_unexpected_success)))
    if expected is None and np.shape(X)[1] != 1:
        expected = "fitted with n_components_=1"
    return X, expected


@pytest.mark.parametrize("cls", ESTIMATORS)
@_settings(max_examples=150)
@given(case=code_cases(), init=st.sampled_from(INITS))
def test_inverse_transform_works_or_raises_a_clear_error(cls, fitted, case, init):
    Z, expected = case
    INPUTS["codes"] += 1
    ok, result = _call("fitted.inverse_transform", f"{cls.__name__}[{init}]",
                       lambda: fitted[cls, init].inverse_transform(Z), expected,
                       f"{cls.__name__}(init={init!r}).inverse_transform")
    if ok:
        assert expected in (None, "any"), (
            f"inverse_transform accepted input that must fail: {expected}")
        assert result.shape == (len(Z), 3)
        _assert_no_nan(result, "inverse_transform")


def test_enough_cases_ran():
    """The property tests above must have run their generated cases (not been skipped)."""
    if not all(INPUTS[test] for test in ("fit", "fitted", "codes")):
        pytest.skip("run with the property tests above to count their cases")
    assert INPUTS["fit"] >= int(3 * 300 * SCALE * 0.9)
    assert INPUTS["fitted"] >= int(3 * 300 * SCALE * 0.9)
    assert INPUTS["codes"] >= int(3 * 150 * SCALE * 0.9)
    # Both outcomes occur, from either start: valid input works, hostile input
    # is refused.
    for test in ("fit", "fitted.transform", "fitted.inverse_transform"):
        for init in INITS:
            outcomes = {key.split(":")[1] for (name, key) in CASES
                        if name == test and key.split(":")[0].endswith(f"[{init}]")}
            assert {"ok", "ValueError", "TypeError"} <= outcomes, (test, init, outcomes)
