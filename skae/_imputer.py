"""AutoencoderImputer: fill missing cells of mixed tables with a denoising autoencoder."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._autoencoder import DenoisingAutoencoder
from ._tabular import TableEncoder, _is_frame, _is_polars, to_pandas


class _ImputingAutoencoder(DenoisingAutoencoder):
    """The imputer's model: every table is a mixed one, its rows' cells hidden at random."""

    _always_mixed = True
    # Judged by how well it fills hidden cells, not by how well it copies
    # complete rows (which PCA of a code this wide already does).
    _selection_constraint = None


class AutoencoderImputer(TransformerMixin, BaseEstimator):
    """Impute missing cells of numeric or mixed tables with an autoencoder.

    The table is encoded with scikit-learn's ``StandardScaler`` (numeric
    columns, fitted on observed values) and ``OneHotEncoder`` (categorical
    columns); the network sees each row's encoded values, zero where missing,
    beside a missing indicator per column. It is trained as a denoising
    autoencoder that hides a random share of the observed cells of each batch
    and learns to reconstruct them from the rest (the MIDAS idea), with a loss
    over observed cells only: squared error on numeric columns, cross-entropy
    of one softmax head per categorical column. ``transform`` fills only the
    missing cells and returns the input's kind (array, pandas or polars frame).

    Parameters
    ----------
    n_components : int or None, default=None
        Width of the code; None takes the number of encoded slots, at least 2
        and at most 64.
    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Encoder widths (the decoder mirrors them); "auto" as in
        :class:`AutoencoderTransformer`.
    mask_probability : float, default=0.5
        Share of observed cells hidden in each training batch. Hiding more
        cells than a table usually misses makes each step a harder imputation
        problem than the ones ``transform`` meets, and gives every batch more
        hidden cells to learn from.
    categorical_features : "from_dtype", list or array of bool, default="from_dtype"
        Which columns of a frame are categorical; see :class:`TableEncoder
        <skae._tabular.TableEncoder>`. Numeric arrays have none.
    max_categories : int, default=100
        Most categories a categorical column may have; more is an error.
    add_indicator : bool, default=False
        Append a missing indicator for each column that had missing cells in
        ``fit``, as :class:`~sklearn.impute.SimpleImputer` does.
    max_iter : int, default=200
        Most training epochs.
    n_iter_no_change : int, default=30
        Epochs without improvement of the held-out rows' loss before training
        stops. That loss is measured on the few cells hidden in the held-out
        rows, so it is noisier than a reconstruction loss over whole rows, and
        the imputer waits longer than :class:`AutoencoderTransformer` (10)
        before judging that training has stopped improving.
    batch_size : "auto" or int, default="auto"
        Rows per training batch; "auto" as in :class:`AutoencoderTransformer`
        (about 32 batches an epoch, in [16, 256]).
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the shuffling and the masks.

    Attributes
    ----------
    autoencoder_ : DenoisingAutoencoder
        The trained model: ``noise="masking"`` hides whole cells, with early
        stopping on held-out rows (their cells hidden the same way at every
        epoch) when there are enough rows, and the PCA start of the encoded
        columns.
    encoder_ : TableEncoder
        The fitted column encoding.
    net_ : skorch.NeuralNet
        The trained network (``autoencoder_.net_``).
    loss_curve_ : list of float
        Training loss per epoch.
    n_iter_ : int
        Epochs trained.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when fitted on a frame.
    indicator_columns_ : ndarray of int
        Columns that had missing cells in ``fit`` (used by ``add_indicator``).

    Notes
    -----
    A row with every cell missing is filled with the network's output for an
    empty row, which masking trains it to give (close to the observed means
    and most frequent categories). Categories unseen in ``fit`` warn and are
    treated as missing but stay in the output, as observed cells do.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderImputer
    >>> X = np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, 6.0], [4.0, np.nan]] * 10)
    >>> imputer = AutoencoderImputer(max_iter=5, random_state=0).fit(X)
    >>> Xt = imputer.transform(X)
    >>> bool(np.isnan(Xt).any()), bool((Xt[0] == X[0]).all())
    (False, True)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "hidden_layer_sizes": [tuple, StrOptions({"auto"})],
        "mask_probability": [Interval(Real, 0, 1, closed="left")],
        "categorical_features": [StrOptions({"from_dtype"}), list, tuple, np.ndarray, None],
        "max_categories": [Interval(Integral, 2, None, closed="left")],
        "add_indicator": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=None, *, hidden_layer_sizes="auto", mask_probability=0.5,
                 categorical_features="from_dtype", max_categories=100, add_indicator=False,
                 max_iter=200, n_iter_no_change=30, batch_size="auto", learning_rate_init=1e-3,
                 random_state=None):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.mask_probability = mask_probability
        self.categorical_features = categorical_features
        self.max_categories = max_categories
        self.add_indicator = add_indicator
        self.max_iter = max_iter
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.random_state = random_state

    # -- input --------------------------------------------------------------
    def _as_frame(self, X, reset):
        """``X`` as a pandas frame; numeric arrays go through ``validate_data``."""
        frame = to_pandas(X)
        if frame is None:
            import pandas as pd

            X = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan",
                              dtype=np.float64)
            return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        if reset:
            self.n_features_in_ = frame.shape[1]
            self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        elif frame.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {frame.shape[1]} features, but AutoencoderImputer is "
                             f"expecting {self.n_features_in_} features as input.")
        return frame

    # -- fit ----------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the encoding and train the network on the observed cells of X.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            NaN, None or ``pd.NA`` mark missing cells.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        frame = self._as_frame(X, reset=True)
        spec = self.categorical_features if _is_frame(X) else None
        # The code's width depends on the encoded width, known once encoded.
        n_slots = TableEncoder(spec, self.max_categories).fit(frame).n_slots_
        model = _ImputingAutoencoder(
            n_components=self.n_components or min(64, max(2, n_slots)),
            hidden_layer_sizes=self.hidden_layer_sizes, noise="masking",
            noise_level=self.mask_probability, categorical_features=spec,
            max_iter=self.max_iter, n_iter_no_change=self.n_iter_no_change,
            batch_size=self.batch_size,
            learning_rate_init=self.learning_rate_init, random_state=self.random_state)
        model._max_categories = self.max_categories
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.autoencoder_ = model.fit(frame)
        for warning in caught:  # under the name the user knows
            warnings.warn(str(warning.message).replace(type(model).__name__,
                                                       type(self).__name__),
                          warning.category, stacklevel=2)
        self.indicator_columns_ = np.flatnonzero(frame.isna().to_numpy().any(axis=0))
        return self

    # The model's own attributes, under the names of scikit-learn's estimators.
    encoder_ = property(lambda self: self.autoencoder_._table,
                        doc="The fitted column encoding (a TableEncoder).")
    net_ = property(lambda self: self.autoencoder_.net_, doc="The trained skorch net.")
    loss_curve_ = property(lambda self: self.autoencoder_.loss_curve_,
                           doc="Training loss per epoch.")
    n_iter_ = property(lambda self: self.autoencoder_.n_iter_, doc="Epochs trained.")

    # -- inference ----------------------------------------------------------
    def transform(self, X):
        """Fill the missing cells of X; observed cells are returned unchanged.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        X_imputed : ndarray, pandas or polars DataFrame
            The input's kind, with missing indicators appended when
            ``add_indicator=True``.
        """
        check_is_fitted(self)
        frame = self._as_frame(X, reset=False)
        filled = self.autoencoder_.reconstruct(frame)
        missing = frame.isna().to_numpy()
        out = frame.copy()
        for j, c in enumerate(frame.columns):
            if missing[:, j].any():
                out[c] = frame[c].where(~missing[:, j], filled.iloc[:, j])
        if not _is_frame(X):
            out = out.to_numpy(dtype=np.float64)
            if self.add_indicator:
                out = np.hstack([out, missing[:, self.indicator_columns_]])
            return out
        if self.add_indicator:
            for j, name in zip(self.indicator_columns_, self._indicator_names()):
                out[name] = missing[:, j]
        if _is_polars(X):
            import polars as pl

            return pl.from_pandas(out)
        return out

    def score_samples(self, X):
        """Negative masked loss of each row over its observed cells.

        Squared error of standardized numbers plus cross-entropy of categories,
        averaged over the row's observed cells: higher is more typical, so it
        serves as an anomaly score for mixed rows. A row with no observed cell
        scores 0.
        """
        check_is_fitted(self)
        return self.autoencoder_.score_samples(self._as_frame(X, reset=False))

    def _indicator_names(self):
        names = self._input_names()
        return [f"missingindicator_{names[j]}" for j in self.indicator_columns_]

    def _input_names(self):
        if hasattr(self, "feature_names_in_"):
            return list(self.feature_names_in_)
        return [f"x{i}" for i in range(self.n_features_in_)]

    def get_feature_names_out(self, input_features=None):
        """Input names, then the indicators' names when ``add_indicator=True``."""
        check_is_fitted(self)
        names = (list(input_features) if input_features is not None
                 else self._input_names())
        if self.add_indicator:
            names += self._indicator_names()
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags
