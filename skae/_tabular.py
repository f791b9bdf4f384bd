"""Mixed tables: numeric and categorical columns with missing cells.

:class:`TableEncoder` turns a frame (or a numeric array) into the float
matrix the networks see, with scikit-learn's own ``ColumnTransformer``,
``StandardScaler`` and ``OneHotEncoder`` inside, and decodes network outputs
back into a frame of the user's columns, dtypes, categories and index.

The encoded matrix has one slot per numeric column (standardized on its
observed values) and one block of slots per categorical column (its one-hot
code). A missing cell encodes as zeros; the observed mask, one entry per
column, travels beside it so that the encoder input can carry a missing
indicator and the loss can ignore the cell (:func:`masked_table_loss`).
"""

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def _is_frame(X):
    return hasattr(X, "columns") and hasattr(X, "dtypes")


def _is_polars(X):
    return type(X).__module__.split(".")[0] == "polars"


def to_pandas(X):
    """``X`` as a pandas DataFrame if it is a pandas or polars frame, else None."""
    if _is_polars(X):
        return X.to_pandas()
    if _is_frame(X):
        return X
    return None


def _is_categorical_dtype(dtype):
    import pandas as pd

    return (isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def _kind(dtype):
    return "categorical" if _is_categorical_dtype(dtype) else "numeric"


class TableEncoder:
    """Fitted encoding of a frame's columns into the networks' float matrix.

    Parameters
    ----------
    categorical_features : "from_dtype", list of str or int, or array of bool
        Which columns are categorical. ``"from_dtype"`` takes pandas
        category, object, string and boolean columns, as
        ``HistGradientBoostingRegressor`` does (booleans count as two
        categories here); names, indices or a boolean mask choose explicitly.
    max_categories : int
        Most categories a categorical column may have.

    Attributes
    ----------
    columns_ : list of str
        The frame's columns, in order.
    numeric_ : list of str
        The numeric columns, in the order of their slots.
    categorical_ : list of str
        The categorical columns, in the order of their one-hot blocks.
    categories_ : dict of str to ndarray
        The observed categories of each categorical column.
    n_slots_ : int
        Width of the encoded matrix.
    """

    def __init__(self, categorical_features="from_dtype", max_categories=100):
        self.categorical_features = categorical_features
        self.max_categories = max_categories

    # -- fit ----------------------------------------------------------------
    def fit(self, frame):
        import pandas as pd

        columns = [str(c) for c in frame.columns]
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            raise ValueError(
                f"The frame has duplicate column names {duplicated}; rename them so "
                "that each column has one name.")
        self.columns_ = columns
        self.dtypes_ = dict(zip(columns, frame.dtypes))
        is_categorical = self._categorical_mask(frame)
        empty = [c for c, n in zip(columns, frame.notna().sum().to_numpy()) if n == 0]
        if empty:
            raise ValueError(
                f"Columns {empty} have no observed value (every cell is missing: NaN, "
                "None or pd.NA); drop them before fitting, since nothing can be "
                "learned about them.")
        self.numeric_ = [c for c, cat in zip(columns, is_categorical) if not cat]
        self.categorical_ = [c for c, cat in zip(columns, is_categorical) if cat]
        frame = self._renamed(frame)
        bad = [c for c in self.numeric_ if not pd.api.types.is_numeric_dtype(frame[c].dtype)]
        if bad:
            raise ValueError(
                f"Columns {bad} are not numeric; list them in categorical_features "
                "or leave categorical_features='from_dtype'.")
        self.categories_ = {c: self._observed_categories(frame[c]) for c in self.categorical_}
        too_many = {c: len(v) for c, v in self.categories_.items()
                    if len(v) > self.max_categories}
        if too_many:
            raise ValueError(
                f"Categorical columns {too_many} have more categories than "
                f"max_categories={self.max_categories}; raise max_categories, or drop "
                "or group these columns (an identifier column has one category per row).")
        transformers = []
        if self.numeric_:
            transformers.append(("num", StandardScaler(), self.numeric_))
        if self.categorical_:
            transformers.append(("cat", OneHotEncoder(
                categories=[list(self.categories_[c]) for c in self.categorical_],
                handle_unknown="ignore", sparse_output=False, dtype=np.float32),
                self.categorical_))
        self.transformer_ = ColumnTransformer(transformers, sparse_threshold=0)
        self.transformer_.fit(self._prepared(frame))
        self.block_sizes_ = [len(self.categories_[c]) for c in self.categorical_]
        self.n_slots_ = len(self.numeric_) + sum(self.block_sizes_)
        return self

    def _categorical_mask(self, frame):
        spec = self.categorical_features
        n = frame.shape[1]
        if isinstance(spec, str):
            if spec != "from_dtype":
                raise ValueError(
                    f"categorical_features={spec!r} is not understood; use 'from_dtype', "
                    "a list of column names or indices, or a boolean mask.")
            return [_is_categorical_dtype(d) for d in frame.dtypes]
        if spec is None:
            return [False] * n
        spec = np.asarray(spec)
        if spec.dtype == bool:
            if spec.shape != (n,):
                raise ValueError(
                    f"categorical_features as a boolean mask has {spec.size} entries; "
                    f"the data has {n} columns.")
            return list(spec)
        mask = [False] * n
        for item in spec.tolist():
            if isinstance(item, str):
                if item not in self.columns_:
                    raise ValueError(f"categorical_features names {item!r}, which is "
                                     f"not a column of the data {self.columns_}.")
                mask[self.columns_.index(item)] = True
            else:
                if not -n <= item < n:
                    raise ValueError(f"categorical_features index {item} is out of range "
                                     f"for {n} columns.")
                mask[item] = True
        return mask

    @staticmethod
    def _observed_categories(column):
        import pandas as pd

        if isinstance(column.dtype, pd.CategoricalDtype):
            return np.asarray(column.cat.categories, dtype=object)
        values = column.dropna().unique()
        try:
            return np.asarray(sorted(values), dtype=object)
        except TypeError:
            return np.asarray(sorted(values, key=str), dtype=object)

    def _renamed(self, frame):
        frame = frame.copy(deep=False)
        frame.columns = self.columns_
        return frame

    def _prepared(self, frame):
        """The frame with categorical columns as object and missing as NaN."""
        import pandas as pd

        out = {}
        for c in self.columns_:
            col = frame[c]
            if c in self.categories_:
                values = col.astype(object).to_numpy(copy=True)
                values[pd.isna(col).to_numpy()] = np.nan
                out[c] = values
            else:
                out[c] = pd.to_numeric(col, errors="coerce").astype(float).to_numpy()
        return pd.DataFrame(out, index=frame.index)

    # -- transform ----------------------------------------------------------
    def check_frame(self, frame):
        """Raise if ``frame``'s columns or column kinds differ from the fit's.

        A numeric column may change between numeric dtypes (an integer column
        becomes float once it has a NaN), and a string, object or boolean
        column between those (a boolean column with a None is object); a
        change between numeric and categorical, or to or from pandas'
        category dtype, is an error.
        """
        columns = [str(c) for c in frame.columns]
        if columns != self.columns_:
            raise ValueError(
                f"The data has columns {columns}; the model was fitted on "
                f"{self.columns_}. Pass the same columns in the same order.")
        changed = {c: (str(self.dtypes_[c]), str(d)) for c, d in zip(columns, frame.dtypes)
                   if _kind(d) != _kind(self.dtypes_[c])
                   or (str(d) == "category") != (str(self.dtypes_[c]) == "category")}
        if changed:
            raise ValueError(
                f"Columns changed dtype since fit (fit, now): {changed}; cast them back "
                "to the dtypes the model was fitted on.")
        return self._renamed(frame)

    def encode(self, frame):
        """Encoded float32 matrix and the observed mask (n_samples, n_columns).

        Missing cells and categories unseen in fit encode as zeros; unseen
        categories also warn and count as missing.
        """
        import pandas as pd

        frame = self.check_frame(frame)
        prepared = self._prepared(frame)
        observed = prepared.notna().to_numpy()
        for j, c in enumerate(self.columns_):
            if c in self.categories_:
                unseen = observed[:, j] & ~pd.Series(prepared[c]).isin(
                    self.categories_[c]).to_numpy()
                if unseen.any():
                    warnings.warn(
                        f"Column {c!r} has categories unseen in fit "
                        f"{sorted(map(str, set(prepared[c][unseen])))[:5]}; they are "
                        "treated as missing.", UserWarning, stacklevel=3)
                    observed[:, j] &= ~unseen
        with warnings.catch_warnings():
            # Unseen categories were reported above, once and by name.
            warnings.simplefilter("ignore", UserWarning)
            values = self.transformer_.transform(prepared).astype(np.float32)
        values[~self.slot_mask(observed)] = 0.0
        return values, observed.astype(np.float32)

    def slot_mask(self, observed):
        """Column mask (n, n_columns) spread to slots (n, n_slots), slot order."""
        observed = np.asarray(observed, dtype=bool)[:, self.column_order()]
        return observed[:, self.slot_columns()]

    def slot_columns(self):
        """For each value slot, its column's position in slot order (numeric, then categorical)."""
        n_numeric = len(self.numeric_)
        return [*range(n_numeric), *(n_numeric + k for k, size in enumerate(self.block_sizes_)
                                     for _ in range(size))]

    def column_order(self):
        """Index of each column in slot order (numeric first, then categorical)."""
        return [self.columns_.index(c) for c in self.numeric_ + self.categorical_]

    # -- decode -------------------------------------------------------------
    def decode(self, output, index=None):
        """Frame of the fitted columns from network outputs (numeric slots, logits).

        Numbers come back in original units, categories as the most probable
        one, each column in its fitted dtype.
        """
        import pandas as pd

        output = np.asarray(output, dtype=np.float64)
        n_num = len(self.numeric_)
        data = {}
        if n_num:
            scaler = self.transformer_.named_transformers_["num"]
            numbers = scaler.inverse_transform(output[:, :n_num])
            for j, c in enumerate(self.numeric_):
                data[c] = numbers[:, j]
        start = n_num
        for c, size in zip(self.categorical_, self.block_sizes_):
            data[c] = self.categories_[c][output[:, start:start + size].argmax(axis=1)]
            start += size
        return pd.DataFrame({c: self._cast(c, data[c]) for c in self.columns_}, index=index)

    def _cast(self, c, values):
        import pandas as pd

        dtype = self.dtypes_[c]
        if pd.api.types.is_integer_dtype(dtype):
            values = np.round(values.astype(np.float64))
        return pd.array(values, dtype=dtype)


def cell_losses(output, target, n_numeric, block_sizes, numeric_loss=None):
    """Loss of every cell of a batch of encoded rows, shape (n, n_columns), slot order.

    ``numeric_loss(output, target)`` scores the numeric slots (squared error
    by default); each categorical block scores the cross-entropy of its
    softmax against the observed category.
    """
    terms = []
    if n_numeric:
        scored = numeric_loss or (lambda out, true: (out - true) ** 2)
        terms.append(scored(output[:, :n_numeric], target[:, :n_numeric]))
    start = n_numeric
    for size in block_sizes:
        labels = target[:, start:start + size].argmax(dim=1)
        terms.append(F.cross_entropy(output[:, start:start + size], labels,
                                     reduction="none")[:, None])
        start += size
    return torch.cat(terms, dim=1)


def masked_table_loss(output, target, observed, n_numeric, block_sizes, per_row=False):
    """Mean loss over the observed cells of a batch of encoded rows.

    Each observed cell counts once: squared error in standardized units for a
    numeric column, cross-entropy of its softmax block for a categorical one.
    Both are in nats-like units of comparable size for a standardized column
    (a predictor that knows nothing scores 1 on squared error and the log of
    the number of categories on cross-entropy), so the terms are summed
    without weights.

    Parameters
    ----------
    output, target : Tensor of shape (n, n_slots)
        Network outputs (numbers, then logits) and the encoded rows.
    observed : Tensor of shape (n, n_columns)
        1 where a cell is observed, in slot order (numeric then categorical).
    n_numeric : int
    block_sizes : list of int
    per_row : bool, default=False
        Return each row's mean over its observed cells instead of the batch mean.
    """
    cells = cell_losses(output, target, n_numeric, block_sizes) * observed
    if per_row:
        return cells.sum(dim=1) / observed.sum(dim=1).clamp(min=1)
    return cells.sum() / observed.sum().clamp(min=1)
