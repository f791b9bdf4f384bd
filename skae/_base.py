"""The base class the three skae estimators share.

It owns what is common: parameter validation, turning tables and images into
one 2-D array, building and training the skorch net, batched inference, and
the scikit-learn face (transform, inverse_transform, score, tags). A subclass
says which torch module and which skorch net to build, and may add
parameters.
"""

import copy
import math
import warnings
from contextlib import contextmanager, nullcontext
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight, _get_feature_names, check_array, check_is_fitted, validate_data,
)
from skorch.callbacks import Callback, PrintLog
from skorch.history import History

from .callbacks import EstimatorCheckpoint
from ._data import (SAMPLE_ROWS, ArrayDataset, ChunkedDataset, FractionSplit,
                    as_chunked_source, is_out_of_core, n_validation_rows)
from ._distributed import check_single_process, data_parallel, training_ranks
from ._modules import (
    ACTIVATIONS, ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder, ResidualDecoder,
    ResidualEncoder, zero_output_layer,
)
from ._net import (
    AutoencoderNet, AutoProgressBar, ContinuedLRScheduler, ConvergenceMonitor,
    LastEpochWeights, RelativePlateau, StopOnNonFiniteLoss, all_finite, supports_fused,
)
from ._runtime import flushed_denormals, resolve_device, seeded_torch, torch_threads
from ._tabular import TableEncoder, _is_categorical_dtype, _is_polars, to_pandas

OPTIMIZERS = {
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
}

LEARNING_RATES = ("constant", "adaptive", "cosine", "cyclic")

# Parameters that shape the network: a warm start or partial_fit cannot change them.
STRUCTURAL_PARAMETERS = ("n_components", "init", "architecture", "hidden_layer_sizes",
                         "conv_channels", "input_shape", "activation", "batch_norm",
                         "optimizer")
# Parameters of the training's set-up that a warm start or partial_fit keeps
# too: the held-out rows, the batches, the dropout, the schedule, the device,
# the callbacks and the logging of the fit it continues.
TRAINING_SETUP_PARAMETERS = ("categorical_features", "dropout", "batch_size", "early_stopping",
                             "validation_fraction", "learning_rate", "device", "callbacks",
                             "verbose")

# Rows per forward pass at inference, at most: larger than a training batch
# because no gradients are kept. Fewer, larger batches spread the per-batch
# costs (Python, the NaN/inf check, a thread pool's fork and join); see
# benchmarks/bench_speed.py and benchmarks/results/speed/ for the measurements.
INFERENCE_BATCH_SIZE = 4096

# Values in the widest activation of one inference batch (16 MiB), which
# caps the rows of a batch: the input or widest hidden layer of an MLP, the
# first maps of a convolutional model (conv_channels[0] x H x W values per
# image in the decoder), so that a batch's activations stay in cache.
INFERENCE_VALUES = 2**22

COMMON_PARAMETERS_DOC = """
    init : {"pca", "random"}, default="pca"
        How the network starts. "pca" puts a linear path beside the network
        and sets it to PCA's solution on the training rows (in the
        network's space: uint8 images scaled to [0, 1]), with the nonlinear
        layers' output layers at zero: before the first step the model
        reconstructs exactly as ``PCA(n_components)`` fitted on the same
        rows, and training only adds what PCA misses. With early stopping
        that start is one of the candidates for the returned weights, so the
        validation loss is never worse than PCA's. "random" is the plain
        network with PyTorch's default initialisation.

    architecture : {"mlp", "conv"}, default="mlp"
        "mlp" flattens each sample and uses fully connected layers; "conv"
        uses stride-2 ``Conv2d -> BatchNorm2d -> activation`` stages and a
        mirrored ``ConvTranspose2d`` decoder, and needs image input (an array
        of shape (n, H, W) or (n, C, H, W), or ``input_shape``).

    hidden_layer_sizes : "auto" or tuple of int, default="auto"
        Widths of the MLP encoder's hidden layers; the decoder mirrors them.
        ``()`` gives a linear autoencoder. "auto" takes two layers: the
        power of two at or above ``n_features`` within [64, 512], then half
        of it, neither narrower than twice ``n_components`` (784 pixels give
        (512, 256), a 13-column table (64, 32)); the widths are
        ``hidden_layer_sizes_``. Used when ``architecture="mlp"``.

    conv_channels : tuple of int, default=(32, 64, 64)
        Channels of the convolutional encoder's stages, each halving the
        image size; the decoder mirrors them. Used when
        ``architecture="conv"``.

    input_shape : tuple of int or None, default=None
        ``(C, H, W)`` (or ``(H, W)``) of one sample when images arrive as
        flat rows. Image arrays of shape (n, H, W) or (n, C, H, W) carry their
        shape and need no ``input_shape``.

    categorical_features : "from_dtype", list of str or int, array of bool or \
None, default="from_dtype"
        Which columns of a frame are categorical. "from_dtype" takes pandas
        category, object, string and boolean columns, as
        ``HistGradientBoostingRegressor`` does; names, indices or a boolean
        mask choose explicitly. A frame with a categorical column, or any
        table with a missing value (NaN, None, ``pd.NA``), is a *mixed
        table*: numeric columns are standardized on their observed values,
        categorical ones one-hot encoded, each cell's presence is an input,
        and the loss covers the observed cells only (see
        :ref:`mixed_tables`). A table with neither is used as it is.

    activation : {"relu", "leaky_relu", "elu", "tanh", "gelu"} or None, \
default=None
        Hidden activation. None picks "relu" for "mlp" and "leaky_relu" for
        "conv".

    dropout : float, default=0.0
        Dropout probability after each hidden MLP layer.

    batch_norm : bool or None, default=None
        BatchNorm after each hidden layer. None means False for "mlp" and
        True for "conv".

    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        torch optimizer; "sgd" uses Nesterov momentum 0.9.

    learning_rate_init : float, default=1e-3
        Learning rate of the optimizer.

    learning_rate : {"constant", "adaptive", "cosine", "cyclic"}, \
default="constant"
        Schedule of the learning rate, a ``skorch.callbacks.LRScheduler``
        named "lr_scheduler" (each epoch's rate is ``net_.history[:,
        "event_lr"]``). "constant" keeps ``learning_rate_init``; "adaptive"
        divides it by 5 whenever two consecutive epochs fail to lower the
        monitored loss by ``tol``, as in ``MLPRegressor``; "cosine" anneals it
        to 0 over ``max_iter`` epochs; "cyclic" ramps it, batch by batch,
        between ``learning_rate_init / 10`` and ``learning_rate_init`` in
        cycles of four epochs. A warm-started ``fit`` continues "cyclic" and
        "adaptive" where they stand and anneals "cosine" anew over its
        ``max_iter``. The default was chosen by
        ``benchmarks/bench_schedules.py`` (results in
        ``benchmarks/results/schedules/``).

    alpha : float, default=0.0
        Weight decay (L2 penalty) of the optimizer.

    batch_size : "auto" or int, default="auto"
        Rows per training batch. "auto" aims at about 32 batches an epoch: a
        power of two within [16, 256] (120 training rows give 16, 60,000
        give 256); the value is ``batch_size_``.

    max_iter : int, default=200
        Maximum number of epochs.

    early_stopping : "auto" or bool, default="auto"
        Hold out ``validation_fraction`` of the rows, stop when the
        validation loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and restore the best weights, the start's included (epoch
        0). Patience counts from the best trained epoch, not from the
        start: the first steps away from PCA's solution often lose a little
        before the nonlinear part pays off. When False, training stops when
        the training loss stops improving in the same way and keeps the last
        weights. "auto" holds rows out when that gives at least 10
        validation rows; the choice is ``early_stopping_``.

    validation_fraction : float, default=0.1
        Fraction of rows held out when ``early_stopping=True``.

    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before stopping.

    tol : float, default=1e-4
        Smallest decrease of the monitored loss that counts as improvement,
        relative to the loss's magnitude (as skorch's ``EarlyStopping``
        default): a loss of 0.006 must fall by 6e-7, one of 0.4 by 4e-5.
        Relative, so that the same default holds for pixels in [0, 1],
        standardized tables and a VAE's loss in nats.

    device : str, default="auto"
        torch device; "auto" picks CUDA when available, else the CPU.

    n_threads : int or None, default=None
        torch threads used by ``fit`` and ``transform`` (restored after).
        None uses ``OMP_NUM_THREADS`` when set, one thread inside joblib or
        Dask worker processes, and every available core otherwise. While
        ``fit`` trains on the CPU, these threads flush subnormal floats
        (below 1.2e-38) to zero, which keeps Adam's decaying moment
        estimates from slowing epochs down severalfold; results differ from
        IEEE arithmetic as rounding differences do (training can amplify
        them, as it amplifies any change in the order of operations), and
        IEEE arithmetic is restored after.

    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks (instances or ``(name, callback)`` pairs),
        copied at each fit, e.g. ``skorch.callbacks.Checkpoint``, or
        :class:`skae.callbacks.EstimatorCheckpoint` to resume a fit that
        dies.

    warm_start : bool, default=False
        When True, ``fit`` on a fitted estimator continues training its
        network for ``max_iter`` more epochs, as ``MLPRegressor`` does: the
        weights, the optimizer's state and the shuffling continue, the
        history grows and ``n_iter_`` counts every epoch; the PCA start is
        not redone. A new ``max_iter``, ``learning_rate_init``, ``alpha``,
        ``tol``, ``n_iter_no_change`` or ``n_threads`` applies; parameters
        that shape the network (``n_components``, widths, architecture...)
        or set up its training (held-out rows, ``batch_size``, ``dropout``,
        the schedule, noise, ``device``, ``callbacks``, ``verbose``) cannot
        change between such fits, and a ``ValueError`` names them. An
        estimator unpickled from an
        :class:`~skae.callbacks.EstimatorCheckpoint` runs the epochs its
        interrupted fit had left instead.

    distributed : "auto" or bool, default="auto"
        Data-parallel training under ``torchrun``. "auto": when the script
        runs under torchrun with ``WORLD_SIZE`` > 1 (or inside a
        ``torch.distributed`` process group of several processes), ``fit``
        trains with ``DistributedDataParallel``: every rank calls ``fit``
        with the same X, trains on its shard of the rows, and all ranks end
        with the same model. ``batch_size`` is per rank (the global batch is
        ``WORLD_SIZE`` times larger). True also requires such a launch and
        raises ``ValueError`` without one; False fits in this process alone.
        ``partial_fit`` and warm starts are not data-parallel and raise
        under a launch. See :ref:`data_parallel`.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, the validation split and any
        noise. With an int, fits on the same device are bit-identical.

    verbose : int, default=0
        0 is silent; 1 prints skorch's table of epochs; 2 adds a progress
        bar per epoch."""

COMMON_ATTRIBUTES_DOC = """
    net_ : skorch.NeuralNet
        The trained skorch net: its ``history``, ``module_`` and callbacks.

    n_components_ : int
        Width of the code: ``n_components``, or for a float the number of
        PCA components that explain that fraction of the variance.

    hidden_layer_sizes_ : tuple of int
        Widths of the MLP's hidden layers.

    batch_size_ : int
        Rows per training batch.

    early_stopping_ : bool
        Whether rows were held out to choose the returned weights.

    best_epoch_ : int
        Epoch whose weights were kept: with early stopping the best on the
        validation rows, 0 when none beat the start (a warning says so);
        without, the last epoch.

    validation_start_score_ : float or None
        Negative validation loss of the starting weights (with
        ``init="pca"``, PCA's) when ``early_stopping_``, else None.

    n_features_in_ : int
        Number of features (pixels times channels for images) seen in fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen in fit, when X has string column names.

    input_shape_ : tuple of int
        Shape of one sample as the network sees it: ``(n_features,)`` for
        tables, ``(C, H, W)`` for images.

    loss_curve_ : list of float
        Training loss at each epoch.

    validation_scores_ : list of float or None
        Negative validation loss at each epoch when ``early_stopping=True``
        (higher is better), else None.

    n_iter_ : int
        Number of epochs run."""


def _finite_input_hook(layer, inputs, output):
    """Forward hook on an encoder's first Linear layer: refuse NaN and inf input.

    A NaN or inf anywhere in an input row makes every output of a Linear
    layer for that row NaN or inf (NaN * w and inf * 0 are NaN, inf * w is
    inf), so the sum of the layer's output, 6 to 10 times smaller than the
    input and still in the caches of the threads that wrote it, is a cheap
    screen (reading one column instead costs more with several threads: its
    cache lines sit in other cores' caches). Only a non-finite sum (which a
    finite overflow can also give) pays for the exact check of the input.
    """
    if not all_finite(output) and not all_finite(inputs[0]):
        raise ValueError(
            "Input X contains NaN, infinity or a value too large for "
            "dtype('float32'); remove or impute those values first (e.g. "
            "with sklearn.impute.SimpleImputer)."
        )


@contextmanager
def _finite_input_check(module):
    """Inside the block, ``module``'s encoder refuses NaN and inf input.

    Hooks :func:`_finite_input_hook` onto the encoder's first Linear layer.
    """
    first_layer = next(layer for layer in module.encoder.modules()
                       if isinstance(layer, torch.nn.Linear))
    hook = first_layer.register_forward_hook(_finite_input_hook)
    try:
        yield
    finally:
        hook.remove()


def _reject_unusable_input(X):
    """Clear errors for input that scikit-learn's checks reject obscurely or convert silently."""
    if X is None:
        raise TypeError(
            "X is None; pass a 2-D array-like or DataFrame of shape (n_samples, "
            "n_features), or an image array (n, H, W) or (n, C, H, W)."
        )
    dtypes = list(X.dtypes) if hasattr(X, "iloc") and hasattr(X, "dtypes") else [
        getattr(X, "dtype", None)]
    if hasattr(X, "iloc") and getattr(X, "ndim", 2) == 2 and X.shape[1] == 0:
        raise ValueError(
            f"X is a DataFrame with 0 columns (shape {X.shape}); pass at least one "
            "numeric column."
        )
    # Dates and durations would silently become nanoseconds since 1970.
    if any(getattr(dtype, "kind", None) in ("M", "m") for dtype in dtypes):
        columns = ([str(name) for name, dtype in X.dtypes.items() if dtype.kind in "Mm"]
                   if hasattr(X, "iloc") else None)
        where = f" (columns {columns})" if columns else ""
        raise TypeError(
            f"X holds dates or durations{where}; skae needs numbers. Turn them into "
            "numeric features first (e.g. day of year, or seconds since a reference)."
        )


# "auto" early stopping holds rows out when the split gets at least this many:
# fewer make the choice of the best epoch a coin toss.
MIN_AUTO_VALIDATION_ROWS = 10


def _weighted_rows(X, sample_weight):
    """Rows whose plain PCA is the weighted PCA of X.

    scikit-learn's PCA takes no weights. With ``d_i = sqrt(w_i) (x_i - m)``,
    ``m`` the weighted mean and the weights scaled to mean 1 over the rows
    of positive weight, the rows ``m + d_i`` and ``m - d_i`` have mean ``m``
    exactly and covariance the weighted covariance (up to the ``n / (n -
    1)`` factor of an unbiased estimate), so PCA of them gives the weighted
    mean and components.
    """
    keep = sample_weight > 0
    X, weights = X[keep], sample_weight[keep].astype(np.float64)
    weights /= weights.mean()
    mean = np.average(X, axis=0, weights=weights)
    deviations = np.sqrt(weights)[:, None] * (X - mean)
    return np.concatenate([mean + deviations, mean - deviations])


def _same_setting(value, fitted):
    """Whether a parameter's value equals the one a fit was made with.

    Arrays (a ``categorical_features`` mask) compare element by element.
    """
    if isinstance(value, np.ndarray) or isinstance(fitted, np.ndarray):
        return np.array_equal(value, fitted)
    return value == fitted


def auto_hidden_layer_sizes(n_features, n_components):
    """Widths of the encoder's two hidden layers for ``hidden_layer_sizes="auto"``.

    The first is the power of two nearest above ``n_features``, within
    [64, 512]; the second half of it; neither narrower than twice the code,
    so that a wide code is never squeezed through a narrower layer.

    Examples
    --------
    >>> auto_hidden_layer_sizes(784, 2), auto_hidden_layer_sizes(784, 300)
    ((512, 256), (600, 600))
    >>> auto_hidden_layer_sizes(13, 2), auto_hidden_layer_sizes(64, 32)
    ((64, 32), (64, 64))
    """
    first = min(512, max(64, 2 ** math.ceil(math.log2(max(n_features, 1)))))
    return (max(first, 2 * n_components), max(first // 2, 2 * n_components))


def auto_batch_size(n_train):
    """Rows per batch for ``batch_size="auto"``: about 32 batches an epoch, in [16, 256].

    A power of two; small tables get small batches so that an epoch holds
    enough optimizer steps, large data sets 256-row batches.

    Examples
    --------
    >>> auto_batch_size(120), auto_batch_size(1200), auto_batch_size(54000)
    (16, 32, 256)
    """
    return int(min(256, max(16, 2 ** math.floor(math.log2(max(n_train, 1) / 32)))))


def spread_rows(n_samples, n_rows):
    """Indices of up to ``n_rows`` rows spread evenly over ``n_samples``."""
    return np.unique(np.linspace(0, n_samples - 1, min(n_rows, n_samples)).astype(np.intp))


def _padded(values, n):
    """``values`` (a PCA's per-component array) with zero rows added up to ``n``.

    PCA has at most min(n_samples, n_features) components; a wider code
    (a convolutional model, or few rows) gets codes that start unused.
    """
    out = np.zeros((n, *np.shape(values)[1:]))
    out[:len(values)] = values
    return out


def fill_doc(cls):
    """Insert the shared parameter and attribute docs into a class docstring."""
    # The placeholder's line gives the first line its indent.
    cls.__doc__ = cls.__doc__.replace(
        "%(common_parameters)s", COMMON_PARAMETERS_DOC.strip()
    ).replace("%(common_attributes)s", COMMON_ATTRIBUTES_DOC.strip())
    return cls


def _check_positive_ints(name, value, allow_empty):
    values = tuple(value) if isinstance(value, (tuple, list)) else None
    if (
        values is None
        or (not values and not allow_empty)
        or not all(isinstance(v, Integral) and not isinstance(v, bool) and v > 0
                   for v in values)
    ):
        need = "a tuple of positive ints" + ("" if allow_empty else " (at least one)")
        raise ValueError(f"{name}={value!r} must be {need}, e.g. (128, 64).")
    return values


@contextmanager
def _buildable():
    """Turn a failure to build a saved network into a ValueError that says so."""
    try:
        yield
    except Exception as exc:
        raise ValueError(
            "the saved parameters and attributes do not describe a network skae "
            f"can build ({type(exc).__name__}: {exc})."
        ) from None


def _check_resolved_params(params, attributes):
    """A learned value that a parameter fixes must agree with it (e.g. the MLP's widths)."""
    for param, attribute in (("hidden_layer_sizes", "hidden_layer_sizes_"),
                             ("batch_size", "batch_size_"), ("n_components", "n_components_")):
        value, learned = params.get(param, "auto"), attributes.get(attribute)
        if value == "auto" or learned is None or isinstance(value, float):
            continue
        if (tuple(value) if isinstance(value, (tuple, list)) else value) != learned:
            raise ValueError(
                f"inconsistent attributes: {attribute}={learned!r} disagrees with "
                f"{param}={value!r}."
            )


class _BaseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery of skae's estimators; not for direct use."""

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left"),
                         Interval(RealNotInt, 0, 1, closed="neither")],
        "init": [StrOptions({"pca", "random"})],
        "architecture": [StrOptions({"mlp", "conv"})],
        "hidden_layer_sizes": [StrOptions({"auto"}), "array-like"],
        "conv_channels": ["array-like"],
        "input_shape": [None, "array-like"],
        "categorical_features": [None, StrOptions({"from_dtype"}), "array-like"],
        "activation": [None, StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": [None, "boolean"],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [StrOptions(set(LEARNING_RATES))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
        "callbacks": [None, list],
        "warm_start": ["boolean"],
        "distributed": [StrOptions({"auto"}), "boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # The skorch net class a subclass trains; see ``_net_params`` for its arguments.
    _net_class = AutoencoderNet
    # Whether every table is encoded as a mixed table (the imputer's model), and
    # the most categories a categorical column may have.
    _always_mixed = False
    _max_categories = 100

    def __init__(
        self,
        n_components=2,
        *,
        init="pca",
        architecture="mlp",
        hidden_layer_sizes="auto",
        conv_channels=(32, 64, 64),
        input_shape=None,
        categorical_features="from_dtype",
        activation=None,
        dropout=0.0,
        batch_norm=None,
        optimizer="adam",
        learning_rate_init=1e-3,
        learning_rate="constant",
        alpha=0.0,
        batch_size="auto",
        max_iter=200,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        n_threads=None,
        callbacks=None,
        warm_start=False,
        distributed="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.init = init
        self.architecture = architecture
        self.hidden_layer_sizes = hidden_layer_sizes
        self.conv_channels = conv_channels
        self.input_shape = input_shape
        self.categorical_features = categorical_features
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.n_threads = n_threads
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.distributed = distributed
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------
    # Subclass hooks
    # ------------------------------------------------------------------
    def _build_module(self, start=None):
        """Return the torch module to train; called inside the seeded context.

        ``start`` is the :class:`sklearn.decomposition.PCA` fitted on the
        training rows when ``init="pca"``; None builds the same network with
        any weights (for loading saved ones).
        """
        raise NotImplementedError

    def _linear_start(self, pca):
        """Encoder and decoder linear paths from ``pca``: a dict of arrays.

        Keys ``encoder_weight`` (n_encoder_outputs, n_features),
        ``encoder_bias`` (n_encoder_outputs,), ``decoder_weight``
        (n_features, n_components_), ``decoder_bias`` (n_features,) and
        ``code_scale`` (n_components_,); the encoder centers its input on
        ``pca.mean_``.
        """
        raise NotImplementedError

    def _net_params(self):
        """Extra keyword arguments for ``_net_class`` (loss settings, noise)."""
        return {}

    # A validation value that the kept weights may not hold above the start's,
    # and what the warning of a fit that the constraint kept at its start advises.
    _selection_constraint = None
    _constraint_hint = None

    def _check_fit_data(self, X, pca=None):
        """Validate parameters against the training data; set data-derived attributes.

        ``pca`` is the PCA of the training rows when the fit has one.
        """

    # ------------------------------------------------------------------
    # Input handling
    # ------------------------------------------------------------------
    def _validate_input(self, X, reset, ensure_all_finite=True):
        """Return X as a 2-D uint8 or float32 array; learn or check its shape.

        Image arrays (n, H, W) or (n, C, H, W) are flattened to rows (a view
        when contiguous); their sample shape is learned at fit and checked
        after. Only numpy uint8 arrays stay uint8 (8-bit images, scaled to
        [0, 1] batch by batch); everything else becomes float32.
        """
        _reject_unusable_input(X)
        if reset:
            self._table = self._mixed_table_encoder(X)
        if getattr(self, "_table", None) is not None:
            return self._encode_table(X, reset)
        sample_shape = None
        if not (sp.issparse(X) or hasattr(X, "iloc") or hasattr(X, "__dataframe__")):
            if not hasattr(X, "ndim"):
                X = np.asarray(X) if isinstance(X, (list, tuple)) and np.ndim(X) > 2 else X
            if getattr(X, "ndim", 0) > 4:
                raise ValueError(
                    f"X has {X.ndim} dimensions; skae accepts tables (n_samples, "
                    "n_features) and images (n, H, W) or (n, C, H, W)."
                )
            if getattr(X, "ndim", 0) >= 3:
                X = np.asarray(X)
                sample_shape = tuple(X.shape[1:])
                X = X.reshape(X.shape[0], math.prod(sample_shape))
        keep_uint8 = isinstance(X, np.ndarray) and X.dtype == np.uint8
        X = validate_data(
            self, X, reset=reset, dtype=np.uint8 if keep_uint8 else np.float32,
            ensure_all_finite=ensure_all_finite,
        )
        if reset:
            self._learn_input_shape(X, sample_shape)
        elif sample_shape is not None and self._sample_shape is not None \
                and sample_shape != self._sample_shape:
            raise ValueError(
                f"X holds images of shape {sample_shape} but "
                f"{type(self).__name__} was fitted on images of shape "
                f"{self._sample_shape}."
            )
        return X

    def _mixed_table_encoder(self, X):
        """An unfitted TableEncoder when X is a mixed table, else None.

        A mixed table is a frame with a categorical column (see
        ``categorical_features``) or any 2-D table with a missing value; a
        numeric table without one takes the plain path unchanged.
        """
        spec = self.categorical_features
        explicit = False
        if not (spec is None or isinstance(spec, str)):
            chosen = np.asarray(spec)
            explicit = bool(chosen.any()) if chosen.dtype == bool else chosen.size > 0
        frame = to_pandas(X)
        if frame is not None:
            mixed = (explicit or frame.isna().to_numpy().any() or (
                spec == "from_dtype" and any(_is_categorical_dtype(d) for d in frame.dtypes)))
        elif isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "fc":
            # A sum is one pass with no mask of X's size; only a non-finite
            # sum needs the look for NaN itself.
            mixed = explicit or (not np.isfinite(X.sum()) and bool(np.isnan(X).any()))
        else:
            mixed = explicit and np.ndim(X) == 2
        if not (mixed or self._always_mixed):
            return None
        return TableEncoder(spec if frame is not None or explicit else None,
                            self._max_categories)

    def _encode_table(self, X, reset):
        """Encoded rows of a mixed table: its values, then its observed mask (slot order).

        At fit, also learns the encoding, ``n_features_in_`` (the table's
        columns) and ``feature_names_in_`` (a frame's column names).
        """
        import pandas as pd

        if self.architecture != "mlp":
            raise ValueError(
                "architecture='conv' takes images; a table with categorical columns or "
                "missing values needs architecture='mlp'.")
        frame = to_pandas(X)
        kind = "array" if frame is None else "polars" if _is_polars(X) else "pandas"
        if frame is None:
            values = check_array(X, ensure_all_finite="allow-nan", dtype=None,
                                 input_name="X")
            frame = pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])])
        else:
            # scikit-learn's rule: names only when all are strings (mixed types raise).
            names = _get_feature_names(frame)
            if len(frame) == 0:
                raise ValueError(f"Found array with 0 sample(s) (shape={frame.shape}) while "
                                 "a minimum of 1 is required.")
            if reset and names is not None:
                self.feature_names_in_ = names
        if reset:
            self.n_features_in_ = frame.shape[1]
            self._table_kind = kind
            self._table.fit(frame)
        elif frame.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {frame.shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input.")
        elif not hasattr(self, "feature_names_in_"):
            frame = frame.set_axis(self._table.columns_, axis=1)
        values, observed = self._table.encode(frame)
        X_encoded = np.hstack([values, observed[:, self._table.column_order()]])
        X_encoded = np.ascontiguousarray(X_encoded, dtype=np.float32)
        if reset:
            self._learn_input_shape(X_encoded, None)
        return X_encoded

    def _table_output(self, output, index=None):
        """Model outputs of a mixed table back to the kind of table it was fitted on."""
        frame = self._table.decode(output[:, :self._table.n_slots_], index=index)
        if self._table_kind == "polars":
            import polars as pl

            return pl.from_pandas(frame)
        if self._table_kind == "array":
            return frame.to_numpy(dtype=np.float32)
        return frame

    @property
    def _mixed(self):
        """Whether the model was fitted on a mixed table."""
        return getattr(self, "_table", None) is not None

    @property
    def _table_layout(self):
        """The net's ``table_layout`` for a mixed table, else None."""
        table = getattr(self, "_table", None)
        if table is None:
            return None
        return {"n_slots": table.n_slots_, "n_numeric": len(table.numeric_),
                "block_sizes": list(table.block_sizes_)}

    @property
    def _table_cells(self):
        """``table_layout`` plus the column of each value slot, for corruptions; or None."""
        layout = self._table_layout
        if layout is None:
            return None
        return {**layout, "slot_index": self._table.slot_columns()}

    @property
    def _n_model_features(self):
        """Width of the rows the network sees (a mixed table's encoded width)."""
        return math.prod(self.input_shape_)

    def _learn_input_shape(self, X, sample_shape):
        n_features = X.shape[1]
        self._sample_shape = sample_shape
        self._fitted_on_uint8 = X.dtype == np.uint8
        if sample_shape is not None:
            image_shape = (1, *sample_shape) if len(sample_shape) == 2 else sample_shape
            if self.input_shape is not None and tuple(self._normalized_input_shape()) != image_shape:
                raise ValueError(
                    f"input_shape={self.input_shape!r} disagrees with the images' "
                    f"shape {sample_shape}; drop input_shape or reshape X."
                )
            self.input_shape_ = image_shape
        elif self.input_shape is not None:
            image_shape = self._normalized_input_shape()
            if math.prod(image_shape) != n_features:
                raise ValueError(
                    f"input_shape={self.input_shape!r} holds {math.prod(image_shape)} "
                    f"values but X has {n_features} features per row."
                )
            self.input_shape_ = image_shape
        else:
            if self.architecture == "conv":
                raise ValueError(
                    "architecture='conv' needs images: pass X of shape (n, H, W) or "
                    "(n, C, H, W), or set input_shape=(C, H, W) for flat rows."
                )
            self.input_shape_ = (n_features,)

    def _normalized_input_shape(self):
        shape = _check_positive_ints("input_shape", self.input_shape, allow_empty=False)
        if len(shape) not in (2, 3):
            raise ValueError(
                f"input_shape={self.input_shape!r} must be (H, W) or (C, H, W)."
            )
        return (1, *shape) if len(shape) == 2 else shape

    @property
    def _module_input_shape(self):
        return self.input_shape_ if self.architecture == "conv" else (self._n_model_features,)

    def _data_range(self, X):
        # Data on disk: one sequential pass over every chunk, not the sample.
        low, high = X.value_range() if isinstance(X, ChunkedDataset) else (X.min(), X.max())
        low, high = float(low), float(high)
        scale = 255.0 if getattr(X, "X", X).dtype == np.uint8 else 1.0
        return low / scale, high / scale

    # ------------------------------------------------------------------
    # Building the network
    # ------------------------------------------------------------------
    @property
    def _activation(self):
        if self.activation is not None:
            return self.activation
        return "leaky_relu" if self.architecture == "conv" else "relu"

    @property
    def _batch_norm(self):
        return self.architecture == "conv" if self.batch_norm is None else self.batch_norm

    def _build_encoder_decoder(self, n_encoder_outputs, start=None):
        """Encoder emitting ``n_encoder_outputs`` values and a decoder from codes.

        With ``init="pca"`` each is a linear path beside the network (the
        "branch"), whose output layer starts at zero; ``start`` (a fitted
        PCA, or None when weights will be loaded) sets the linear paths.
        """
        k = self.n_components_
        if self.architecture == "conv":
            channels = _check_positive_ints("conv_channels", self.conv_channels, False)
            encoder = ConvEncoder(self.input_shape_, channels, n_encoder_outputs,
                                  self._activation, self._batch_norm)
            decoder = ConvDecoder(k, channels, self.input_shape_,
                                  self._activation, self._batch_norm)
        else:
            hidden = self.hidden_layer_sizes_
            encoder = MLPEncoder(self._n_model_features, hidden, n_encoder_outputs,
                                 self._activation, self.dropout, self._batch_norm)
            decoder = MLPDecoder(k, hidden, self._n_model_features,
                                 self._activation, self.dropout, self._batch_norm)
        if self.init == "random":
            return encoder, decoder
        encoder = ResidualEncoder(zero_output_layer(encoder), self._n_model_features,
                                  n_encoder_outputs)
        decoder = ResidualDecoder(zero_output_layer(decoder), k, self._n_model_features)
        if start is not None:
            weights = self._linear_start(start)
            with torch.no_grad():
                encoder.linear.weight.copy_(torch.as_tensor(weights["encoder_weight"]))
                encoder.linear.bias.copy_(torch.as_tensor(weights["encoder_bias"]))
                encoder.center.copy_(torch.as_tensor(start.mean_))
                decoder.linear.weight.copy_(torch.as_tensor(weights["decoder_weight"]))
                decoder.linear.bias.copy_(torch.as_tensor(weights["decoder_bias"]))
                decoder.code_scale.copy_(torch.as_tensor(weights["code_scale"]))
        return encoder, decoder

    # ------------------------------------------------------------------
    # The PCA start and the data-dependent defaults
    # ------------------------------------------------------------------
    def _fit_pca(self, X, seed, sample_weight=None):
        """PCA of the training rows in the network's space, or None when not needed.

        Fitted in float64 (uint8 images scaled to [0, 1]) with an exact
        solver, so the start matches ``PCA(n_components)`` on the same rows
        to float32 precision. A float ``n_components`` keeps the smallest
        number of components that explain that fraction of the variance.
        With ``sample_weight``, the weighted PCA (see :func:`_weighted_rows`).
        """
        fraction = not isinstance(self.n_components, Integral)
        if self.init == "random" and not fraction:
            return None
        n_samples, n_features = X.shape
        if n_samples < 2:
            needs = ("the PCA start (init='pca') needs at least 2 samples; pass more "
                     "rows or set init='random'" if self.init == "pca" else
                     f"a float n_components={self.n_components!r} is chosen by PCA, which "
                     "needs at least 2 samples; pass more rows or an int n_components")
            raise ValueError(f"n_samples={n_samples}: {needs}.")
        X64 = np.asarray(X, dtype=np.float64)
        if X.dtype == np.uint8:
            X64 /= 255.0
        if sample_weight is not None:
            X64 = _weighted_rows(X64, sample_weight)
            n_samples = len(X64) // 2  # the rank of the rows of positive weight
        tall = n_features <= 1000 and n_samples >= 10 * n_features
        n_components = self.n_components if fraction else min(
            self.n_components, n_samples, n_features)
        # Exact solvers: randomized ones would start from an approximation.
        pca = PCA(n_components, svd_solver="covariance_eigh" if tall else "full",
                  random_state=seed)
        return pca.fit(X64)

    def _lr_scheduler(self, monitor, n_samples):
        """skorch's LRScheduler for ``learning_rate``; see its description in the docstring."""
        if self.learning_rate == "adaptive":
            # MLPRegressor's "adaptive": two epochs in a row without a gain of tol.
            return ContinuedLRScheduler(
                RelativePlateau, monitor=monitor, mode="min",
                factor=0.2, patience=1, threshold=self.tol, threshold_mode="rel")
        if self.learning_rate == "cosine":
            return ContinuedLRScheduler(torch.optim.lr_scheduler.CosineAnnealingLR,
                                        T_max=self.max_iter)
        # A rank's epoch in a data-parallel fit is its shard of the rows.
        rows = math.ceil(self._n_training_rows(n_samples) / training_ranks(self.distributed))
        batches = max(1, math.ceil(rows / self.batch_size_))
        return ContinuedLRScheduler(torch.optim.lr_scheduler.CyclicLR, step_every="batch",
                                    base_lr=self.learning_rate_init / 10,
                                    max_lr=self.learning_rate_init,
                                    step_size_up=2 * batches, cycle_momentum=False)

    def _resolve_sizes(self, n_samples, pca, partial=False):
        """Learn ``n_components_`` and the values the "auto" parameters stand for."""
        if isinstance(self.n_components, Integral):
            self.n_components_ = int(self.n_components)
        else:
            self.n_components_ = int(pca.n_components_)
        if self.hidden_layer_sizes == "auto":
            self.hidden_layer_sizes_ = auto_hidden_layer_sizes(
                self._n_model_features, self.n_components_)
        else:
            self.hidden_layer_sizes_ = _check_positive_ints(
                "hidden_layer_sizes", self.hidden_layer_sizes, True)
        if partial:  # one pass per call and no held-out rows, as in scikit-learn
            self.early_stopping_ = False
        elif self.early_stopping == "auto":
            self.early_stopping_ = (n_validation_rows(self.validation_fraction, n_samples)
                                    >= MIN_AUTO_VALIDATION_ROWS)
        else:
            self.early_stopping_ = bool(self.early_stopping)
        self.batch_size_ = (auto_batch_size(self._n_training_rows(n_samples))
                            if self.batch_size == "auto" else int(self.batch_size))

    def _n_training_rows(self, n_samples):
        """Rows left to train on once early stopping has held its rows out."""
        if not self.early_stopping_:
            return n_samples
        return n_samples - n_validation_rows(self.validation_fraction, n_samples)

    def _check_common_params(self, n_samples):
        if self.architecture == "mlp":
            if self.n_components_ > self._n_model_features:
                raise ValueError(
                    f"n_components={self.n_components} must be at most "
                    f"n_features={self._n_model_features} for architecture='mlp'; "
                    "lower it or use architecture='conv' for images."
                )
        else:
            _check_positive_ints("conv_channels", self.conv_channels, False)
        self._check_batch_norm_batches(n_samples)
        for entry in self.callbacks or ():
            callback = entry[1] if isinstance(entry, tuple) and len(entry) == 2 else entry
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks must hold skorch Callback instances or (name, "
                    f"Callback) pairs, got {entry!r}."
                )

    def _check_batch_norm_batches(self, n_samples):
        """BatchNorm needs at least two rows in every training batch."""
        if not self._batch_norm:
            return
        what = ("architecture='conv' (batch_norm=None means True)" if self.batch_norm is None
                else "batch_norm=True")
        if self.batch_size_ < 2:
            raise ValueError(
                f"{what} cannot train on batches of one row; raise batch_size "
                f"(now {self.batch_size}) to 2 or more, or set batch_norm=False."
            )
        n_train = self._n_training_rows(n_samples)
        if n_train < 2:
            raise ValueError(
                f"{what} cannot train on n_samples={n_train} (1 sample or fewer "
                "left for training); pass at least 2 training rows or set "
                "batch_norm=False."
            )

    def _build_net(self, module, n_samples, seed, device):
        optimizer_class, optimizer_defaults = OPTIMIZERS[self.optimizer]
        optimizer_params = {f"optimizer__{k}": v for k, v in optimizer_defaults.items()}
        if supports_fused(optimizer_class, device):
            optimizer_params["optimizer__fused"] = True
        monitor = "valid_loss" if self.early_stopping_ else "train_loss"
        callbacks = [
            ("last_epoch_weights", LastEpochWeights()),
            ("stop_on_non_finite", StopOnNonFiniteLoss()),
        ]
        if self.learning_rate != "constant":
            # Before the stopping rule, which ends training by raising: the last
            # epoch's rate is recorded and its step taken, as in a longer fit.
            callbacks.append(("lr_scheduler", self._lr_scheduler(monitor, n_samples)))
        callbacks.append(("convergence", ConvergenceMonitor(
            monitor=monitor, patience=self.n_iter_no_change, threshold=self.tol,
            threshold_mode="rel", load_best=self.early_stopping_,
            constraint=self._selection_constraint,
        )))
        if self.verbose >= 2:
            callbacks.append(("progress_bar", AutoProgressBar()))
        callbacks.extend(copy.deepcopy(self.callbacks or []))
        train_split = None
        if self.early_stopping_:
            train_split = FractionSplit(self.validation_fraction, seed)
        if self.init == "pca":
            # Weight decay pulls weights toward zero, which would shrink the
            # linear path away from PCA's solution; it regularises the branches.
            optimizer_params["optimizer__param_groups"] = [
                ("*.linear.*", {"weight_decay": 0.0})]
        return self._net_class(
            module,
            optimizer=optimizer_class,
            lr=self.learning_rate_init,
            optimizer__weight_decay=self.alpha,
            max_epochs=self.max_iter,
            batch_size=self.batch_size_,
            train_split=train_split,
            callbacks=callbacks,
            verbose=int(self.verbose > 0),
            device=device,
            random_seed=seed,
            drop_single_batch=self._batch_norm,
            table_layout=self._table_layout,
            # skorch's PrintLog formats its table every epoch even when
            # silent, a cost small tables feel: drop it then.
            callbacks__print_log=PrintLog() if self.verbose else None,
            **optimizer_params,
            **self._net_params(),
        )

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Train the autoencoder on X.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features), or \
image array of shape (n_samples, H, W) or (n_samples, C, H, W)
            Training data. uint8 arrays are read as 8-bit images and scaled
            to [0, 1]. Sparse matrices are rejected: densify them first.
            An ``np.memmap``, zarr array, h5py dataset or dask array is read
            chunk by chunk, never whole (see :ref:`large_data`).
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row. The loss of a batch is the
            weighted mean of its rows' losses (as in ``MLPRegressor``), the
            validation loss that early stopping watches is weighted the same
            way, and the PCA start is the weighted PCA. A row of weight 0
            has no influence on training; only the weights' ratios matter.
            None, or equal weights, is the unweighted fit.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        # A failed fit (bad data, diverging loss) leaves a fitted estimator as it was.
        previous_state = dict(vars(self))
        try:
            self._fit(X, sample_weight=self._check_weights(sample_weight, X))
        except BaseException:
            vars(self).clear()
            vars(self).update(previous_state)
            raise
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Train on X for one epoch, starting from the current weights.

        The first call learns what ``fit`` learns from its data (the input's
        features and shape, the sizes of "auto" parameters and, with
        ``init="pca"``, the PCA start) from the rows of this first chunk, so
        that chunk should be representative and hold at least
        ``n_components`` rows. Later calls check that X has the same
        features, then run one shuffled pass over it; the weights, the
        optimizer's state and the shuffling continue from call to call, and
        ``loss_curve_``, ``n_iter_`` and the history grow by one epoch. No
        rows are held out (``early_stopping`` is not used) and no
        ``ConvergenceWarning`` is raised, as in ``MLPRegressor.partial_fit``.
        The parameters that a warm start cannot change (see ``warm_start``)
        cannot change between calls either.

        Parameters
        ----------
        X : {array-like, DataFrame} or image array
            A chunk of training data, of the same kind at every call.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the chunk's rows, as in :meth:`fit`.

        Returns
        -------
        self : object
            The estimator, trained for one more epoch.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AutoencoderTransformer
        >>> X = np.random.default_rng(0).random((200, 6), dtype=np.float32)
        >>> ae = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(8,),
        ...                             random_state=0)
        >>> for chunk in np.array_split(X, 4):
        ...     ae = ae.partial_fit(chunk)
        >>> ae.n_iter_, len(ae.loss_curve_)
        (4, 4)
        """
        sample_weight = self._check_weights(sample_weight, X)
        if hasattr(self, "net_"):
            self._continue_fit(X, epochs=1, partial=True, sample_weight=sample_weight)
        else:
            self._fit(X, partial=True, sample_weight=sample_weight)
        return self

    @staticmethod
    def _check_weights(sample_weight, X):
        """scikit-learn's checks of ``sample_weight``; None when every weight is equal.

        Equal weights change nothing (only ratios matter), so they take the
        unweighted path and its exact arithmetic.
        """
        if sample_weight is None:
            return None
        _reject_unusable_input(X)
        # scikit-learn's checks refuse NaN and infinity too.
        weights = _check_sample_weight(sample_weight, X, dtype=np.float32,
                                       ensure_non_negative=True)
        if np.all(weights == weights[0]):
            return None
        return weights

    def _continued_settings(self):
        """The parameters, as they are now, that a continued fit must find unchanged.

        Callbacks count by their names (a pair's name, else the class's), so
        that the settings stay plain values that :func:`skae.save` can write.
        """
        settings = {name: getattr(self, name)
                    for name in (*self._structural_parameters, *self._setup_parameters)}
        settings["callbacks"] = [entry[0] if isinstance(entry, tuple) else type(entry).__name__
                                 for entry in self.callbacks or ()]
        return settings

    def _check_settings_unchanged(self):
        """Refuse to continue training when a parameter it cannot honour changed."""
        fitted = getattr(self, "_structure", None) or {}
        current = self._continued_settings()
        changed = [name for name, value in current.items()
                   if name in fitted and not _same_setting(value, fitted[name])]
        if not changed:
            return
        described = ", ".join(f"{name}={current[name]!r} (fitted with "
                              f"{fitted[name]!r})" for name in changed)
        reason = ("these parameters shape the network, which"
                  if set(changed) & set(self._structural_parameters) else
                  "these parameters set up the training (held-out rows, batches, "
                  "dropout, schedule, device, callbacks, logging), which")
        raise ValueError(
            f"{described}: {reason} warm_start and partial_fit continue; restore "
            "them, or fit anew with warm_start=False."
        )

    # Subclasses add the parameters of their modules and of their losses.
    _structural_parameters = STRUCTURAL_PARAMETERS
    _setup_parameters = TRAINING_SETUP_PARAMETERS

    def _continue_fit(self, X, epochs, partial=False, sample_weight=None):
        """Train the fitted ``net_`` on X for up to ``epochs`` more epochs.

        An estimator loaded from a :class:`~skae.callbacks.EstimatorCheckpoint`
        resumes its interrupted fit instead: ``fit`` runs the epochs that fit
        had left.
        """
        check_single_process(self.distributed, "partial_fit" if partial else "A warm start")
        self._check_settings_unchanged()
        X, dataset, sample_weight = self._fit_data(X, sample_weight, reset=False)
        net = self.net_
        self._apply_stopping_rule(net)
        n_before = len(net.history)
        interrupted = vars(self).pop("_interrupted_fit", None)
        resume = interrupted is not None and not partial
        if resume:
            n_before, stop = interrupted
            epochs = max(0, stop - len(net.history))
        new_rate = (net.lr, net.optimizer__weight_decay) != (self.learning_rate_init, self.alpha)
        if new_rate:
            # skorch starts a new optimizer (and state) with the new settings.
            net.set_params(lr=self.learning_rate_init, optimizer__weight_decay=self.alpha)
        self._restart_schedule(net, epochs, new_rate, anneal=not (partial or resume))
        self._bind_checkpoints(net.callbacks_, n_before, len(net.history) + epochs)
        with torch_threads(self.n_threads), flushed_denormals(net.device):
            net.continue_training(dataset, epochs, resume=resume)
        self._set_training_results(net, epochs_run=len(net.history) - n_before,
                                   warn=not partial)
        self._after_training(X, sample_weight)

    def _apply_stopping_rule(self, net):
        """Give the fitted net's callbacks ``tol`` and ``n_iter_no_change`` as they are now.

        A continued fit honours them, for early stopping and for the
        "adaptive" schedule, as ``MLPRegressor`` does; ``_continue_fit``
        applies a new rate and weight decay.
        """
        callbacks = dict(net.callbacks_)
        monitor = callbacks["convergence"]
        monitor.patience, monitor.threshold = self.n_iter_no_change, self.tol
        if self.learning_rate == "adaptive":
            callbacks["lr_scheduler"].threshold = self.tol

    def _restart_schedule(self, net, epochs, new_rate, anneal):
        """Start the learning-rate schedule anew where continuing it would be wrong.

        A schedule otherwise continues as in one longer fit (see
        :class:`~skae._net.ContinuedLRScheduler`). A new ``learning_rate_init``
        starts it from the new rate; with ``anneal`` (a warm-started ``fit``),
        "cosine" anneals anew over the ``epochs`` of this fit.
        """
        schedule = dict(net.callbacks_).get("lr_scheduler")
        cosine = self.learning_rate == "cosine" and anneal
        if schedule is None or not (new_rate or cosine):
            return
        rate = self.learning_rate_init
        schedule.restart(**{
            "cosine": {"T_max": epochs}, "cyclic": {"base_lr": rate / 10, "max_lr": rate},
        }.get(self.learning_rate, {}))

    def _bind_checkpoints(self, callbacks, start, stop):
        """Tell the :class:`~skae.callbacks.EstimatorCheckpoint` callbacks what they save.

        The coming training takes the history from ``start`` to ``stop`` epochs.
        """
        for entry in callbacks:
            callback = entry[1] if isinstance(entry, tuple) else entry
            if isinstance(callback, EstimatorCheckpoint):
                callback.fit_call_ = (self, start, stop)

    def _fit(self, X, partial=False, sample_weight=None):
        if self.warm_start and hasattr(self, "net_"):
            self._continue_fit(X, epochs=self.max_iter, sample_weight=sample_weight)
            return
        if partial:
            check_single_process(self.distributed, "partial_fit")
        X, dataset, sample_weight = self._fit_data(X, sample_weight)
        n_samples = len(dataset)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        pca = self._fit_pca(X, seed, sample_weight)
        self._resolve_sizes(n_samples, pca, partial=partial)
        self._check_common_params(n_samples=n_samples)
        # Data on disk: its range comes from one pass over every chunk.
        self._check_fit_data(dataset if isinstance(dataset, ChunkedDataset) else X, pca)
        device = resolve_device(self.device)
        with torch_threads(self.n_threads), flushed_denormals(device), \
                data_parallel(self.distributed, device) as parallel:
            device = device if parallel is None else parallel.device
            with seeded_torch(seed):
                module = self._build_module(start=pca if self.init == "pca" else None)
            net = self._build_net(module, n_samples, seed, device)
            self._bind_checkpoints(net.callbacks, 0, 1 if partial else self.max_iter)
            with nullcontext() if parallel is None else parallel.attach(net):
                if partial:
                    net.partial_fit(dataset, epochs=1)
                else:
                    net.fit(dataset)
        self._structure = self._continued_settings()
        self._set_training_results(net, warn=not partial)
        self._after_training(X, sample_weight)

    def _fit_data(self, X, sample_weight=None, reset=True):
        """Validated rows for the fit's statistics, the dataset to train on, and
        the sample weights of those rows.

        ``reset`` learns the input's features (a first fit) or checks them
        (training continued). In memory: ``(X, ArrayDataset over X, weights)``.
        For an array read chunk by chunk (np.memmap, zarr, h5py, dask; see
        :func:`~skae._data.is_out_of_core`): a sample of whole chunks spread
        over X, validated as in-memory X is (the PCA start and the "auto"
        defaults come from it), a :class:`~skae._data.ChunkedDataset` over
        every row, and the sample's weights.
        """
        extras = None if sample_weight is None else {"sample_weight": sample_weight}
        if not is_out_of_core(X):
            X = self._validate_input(X, reset=reset)
            return X, ArrayDataset(X, self._module_input_shape, extras=extras), sample_weight
        source = as_chunked_source(X)
        dataset = ChunkedDataset(source, (), extras=extras)
        chunks = dataset.sample_chunks(SAMPLE_ROWS)
        sample = self._validate_input(dataset.read(chunks), reset=reset)
        if self._mixed:
            raise ValueError(
                f"X is read chunk by chunk ({type(X).__name__}) and has missing values "
                "or categorical columns; such arrays must be numeric and complete. "
                "Impute them first, or pass the table in memory.")
        dataset.sample_shape = tuple(self._module_input_shape)
        if sample_weight is not None:  # those of the sample's rows
            sample_weight = dataset.read_extras(chunks)["sample_weight"]
        return sample, dataset, sample_weight

    def _after_training(self, X, sample_weight=None):
        """Learn what comes from the trained net and the (validated) training rows X."""
        self._code_range = self._training_code_range(X)

    def _training_code_range(self, X, n_rows=2000):
        """1st and 99th percentiles of each code over up to ``n_rows`` training rows.

        Gives plots of the code space (``plot_latent_grid``) a default extent.
        """
        rows = spread_rows(len(X), n_rows)
        try:
            codes = self._map_batches(X[rows], lambda module, batch: module.encode(batch),
                                      self.n_components_)
        except ValueError:  # codes that overflow: no range to offer
            return None
        low, high = np.percentile(codes, [1, 99], axis=0)
        return [(float(a), float(b)) for a, b in zip(low, high)]

    def _set_training_results(self, net, epochs_run=None, warn=True):
        """Learned attributes from the trained ``net``; warn about how training ended.

        ``epochs_run`` is the number of epochs this call ran (all of the
        history unless training continued a fitted net).
        """
        callbacks = dict(net.callbacks_)
        history = net.history
        self.net_ = net
        self.n_iter_ = len(history)
        self.loss_curve_ = [float(v) for v in history[:, "train_loss"]] if history else []
        self.validation_scores_ = (
            [-float(v) for v in history[:, "valid_loss"]] if self.early_stopping_ and history
            else None
        )
        self._n_features_out = self.n_components_
        if not warn:
            return
        stopper = callbacks["convergence"]
        start_score = getattr(stopper, "start_score_", None)
        self.validation_start_score_ = None if start_score is None else -float(start_score)
        self.best_epoch_ = int(stopper.best_epoch_) if self.early_stopping_ else self.n_iter_
        converged = stopper.misses_ >= stopper.patience
        epochs_run = self.n_iter_ if epochs_run is None else epochs_run
        resumed_at = self.n_iter_ - epochs_run  # the epoch this call started from
        interrupted = callbacks["last_epoch_weights"].interrupted_ or (
            epochs_run < self.max_iter and not converged
        )
        if interrupted:
            kept = (f"the weights of epoch {self.best_epoch_}, the best on the validation "
                    "rows" + (" (the start)" if self.best_epoch_ == 0 else "")
                    if self.early_stopping_ else
                    f"the weights of the last finished epoch ({self.n_iter_})")
            warnings.warn(
                f"Training of {type(self).__name__} was interrupted after {self.n_iter_} "
                f"finished epochs; keeping {kept}.",
                UserWarning,
            )
        elif self.early_stopping_ and self.best_epoch_ == resumed_at and epochs_run:
            if resumed_at:
                start, ran = (f"its weights of epoch {resumed_at}, where this fit resumed",
                              f"the {epochs_run} epochs it ran")
            else:
                start = "its PCA start" if self.init == "pca" else "its initial weights"
                ran = f"its {epochs_run} epochs"
            rejected = stopper.rejected_epochs_
            if rejected:
                outcome = (f"{rejected} of {ran} lowered the validation loss but held "
                           f"{self._selection_constraint} above the start's")
                advice = f"; {self._constraint_hint}." if self._constraint_hint else "."
            else:
                outcome = (f"none of {ran} beat the start on the validation rows (by at "
                           f"least tol={self.tol})")
                advice = (". A larger model, more epochs or a different learning_rate_init "
                          "may help; on data that PCA already reconstructs almost "
                          "exactly there may be nothing to gain.")
            warnings.warn(
                f"{type(self).__name__} kept {start} (best_epoch_ = {self.best_epoch_}): "
                f"{outcome}{advice}",
                UserWarning,
            )
        elif not converged:
            monitored = "validation loss" if self.early_stopping_ else "training loss"
            warnings.warn(
                f"{type(self).__name__} reached max_iter={self.max_iter} epochs while "
                f"the {monitored} was still improving by more than tol={self.tol}; "
                "raise max_iter or tol.",
                ConvergenceWarning,
            )

    # ------------------------------------------------------------------
    # Inference
    # ------------------------------------------------------------------
    def _map_batches(self, X, function, n_outputs, sample_shape=None,
                     check_finite_input=False):
        """Apply ``function`` to batches of X on the net's device; stack as float32.

        Only one batch of activations is alive at a time. With
        ``check_finite_input``, NaN and inf in X are caught batch by batch on
        the first layer's output (see ``_finite_input_hook``) instead of by a
        separate pass over X.
        """
        net = self.net_
        module = net.module_
        module.eval()
        dataset = ArrayDataset(X, sample_shape or self._module_input_shape)
        output = np.empty((len(X), n_outputs), dtype=np.float32)
        if self.architecture == "conv":
            widest = self.conv_channels[0] * math.prod(self.input_shape_[1:])
        else:
            widest = max(layer.out_features for layer in module.modules()
                         if isinstance(layer, torch.nn.Linear))
        rows = max(1, min(INFERENCE_BATCH_SIZE, INFERENCE_VALUES // widest))
        input_check = _finite_input_check(module) if check_finite_input else nullcontext()
        # Non-float32 input (uint8 images) is converted into one buffer: a new
        # tensor per batch (16 MiB for 4,096 Fashion-MNIST rows) costs page
        # faults whenever the allocator has handed the last one back to the
        # system.
        buffer = (None if X.dtype == np.float32
                  else torch.empty((min(rows, len(X)), math.prod(X.shape[1:]))))
        with torch_threads(self.n_threads), torch.inference_mode(), input_check:
            for start in range(0, len(X), rows):
                stop = min(start + rows, len(X))
                batch = dataset.batch(start=start, stop=stop, buffer=buffer).to(net.device)
                result = function(module, batch).reshape(stop - start, -1)
                if not all_finite(result):
                    raise ValueError(
                        f"{type(self).__name__} produced NaN or inf for rows "
                        f"{start}..{stop - 1}: their values are too large for this "
                        "model. Scale X the same way as the training data (e.g. "
                        "with the StandardScaler or MinMaxScaler fitted on it)."
                    )
                output[start:stop] = result.cpu().numpy()
        return output

    def _map_input(self, X, function, n_outputs):
        """Validate X like the training data, then apply ``function`` to its batches.

        For every method that runs the encoder on X. NaN and inf are refused
        either way: for the MLP on float input, batch by batch on the first
        layer's output (see ``_finite_input_hook``), which spares
        scikit-learn's separate pass over X (a quarter of the encoding time);
        for the conv architecture, by scikit-learn's check. uint8 holds
        neither.
        """
        in_batches = self.architecture == "mlp"
        X = self._validate_input(X, reset=False, ensure_all_finite=not in_batches)
        return self._map_batches(X, function, n_outputs,
                                 check_finite_input=in_batches and X.dtype != np.uint8)

    def _as_input_kind(self, X_flat, like_uint8, sample_shape):
        """Rows in the model's [0, 1]-scaled space back to the user's kind of array."""
        if like_uint8:
            X_flat = np.clip(np.rint(X_flat * 255.0), 0, 255).astype(np.uint8)
        if sample_shape is not None:
            X_flat = X_flat.reshape(len(X_flat), *sample_shape)
        return X_flat

    def transform(self, X):
        """Encode X into codes of width ``n_components``.

        Parameters
        ----------
        X : {array-like, DataFrame} or image array
            Data of the same kind as in ``fit``.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components), dtype float32
            Deterministic codes (the posterior mean for a VAE).
        """
        check_is_fitted(self)
        return self._map_input(X, lambda module, batch: module.encode(batch),
                               self.n_components_)

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from ``transform``.

        Returns
        -------
        X_original : ndarray
            Reconstructions of the same kind as the training data: shape
            (n_samples, n_features) for tables, the training images' shape
            for image arrays; uint8 when the model was fitted on uint8 images
            (rounded and clipped to 0..255), float32 otherwise. Of a model
            fitted on a mixed table, a frame (pandas, or polars if it was
            fitted on polars) with the fitted columns and dtypes: numbers in
            their original units, the most probable category of each
            categorical column.
        """
        check_is_fitted(self)
        return self._decode_codes(X, lambda module, batch: module.decode(batch))

    def _decode_codes(self, X, decode):
        """Codes X (validated here) through ``decode(module, batch)``, as inverse_transform returns."""
        Z = check_array(X, dtype=np.float32, ensure_all_finite=True, input_name="X")
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Z.shape[1]} columns but {type(self).__name__} was fitted "
                f"with n_components_={self.n_components_}; pass codes from transform."
            )
        X_flat = self._map_batches(Z, decode, self._n_model_features,
                                   sample_shape=(self.n_components_,))
        if self._mixed:
            return self._table_output(X_flat)
        return self._as_input_kind(X_flat, self._fitted_on_uint8, self._sample_shape)

    def reconstruct(self, X):
        """Encode and decode X in one pass.

        Parameters
        ----------
        X : {array-like, DataFrame} or image array

        Returns
        -------
        X_reconstructed : ndarray or DataFrame
            Same shape as X; uint8 when X is uint8, float32 otherwise; a
            DataFrame with X's columns and index when X is one and
            ``set_output(transform="pandas")`` was set. Of a model fitted on
            a mixed table, a frame of the fitted kind with X's index, columns
            and dtypes (see :meth:`inverse_transform`), every cell filled:
            missing cells get the model's reconstruction.
        """
        check_is_fitted(self)
        if self._mixed:
            frame = to_pandas(X)  # converted once: X's index, and the rows to encode
            output = self._map_input(
                X if frame is None else frame,
                lambda module, batch: module.decode(module.encode(batch)),
                self._n_model_features)
            return self._table_output(output, index=None if frame is None else frame.index)
        input_sample_shape = tuple(np.shape(X)[1:]) if np.ndim(X) >= 3 else None
        like_uint8 = isinstance(X, np.ndarray) and X.dtype == np.uint8
        X_flat = self._map_input(
            X, lambda module, batch: module.decode(module.encode(batch)),
            self._n_model_features)
        result = self._as_input_kind(X_flat, like_uint8, input_sample_shape)
        output_config = getattr(self, "_sklearn_output_config", {}).get("transform")
        if output_config == "pandas" and hasattr(X, "iloc"):
            import pandas as pd

            result = pd.DataFrame(result, columns=X.columns, index=X.index)
        return result

    def score_samples(self, X):
        """Negative mean squared reconstruction error of each row.

        Of a model fitted on a mixed table, the negative mean loss over the
        row's observed cells (squared error in standardized units for a
        numeric cell, cross-entropy for a categorical one): anomaly scores
        for mixed rows.

        Computed in the model's space (uint8 images scaled to [0, 1]). Higher
        is better; low values flag rows unlike the training data.

        Parameters
        ----------
        X : {array-like, DataFrame} or image array

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)

        net = self.net_

        def negative_error(module, batch):
            output = module.decode(module.encode(batch))
            if self._mixed:
                return -net.table_row_loss(output, batch)
            return -(output - batch).flatten(1).pow(2).mean(1)

        return self._map_input(X, negative_error, 1).ravel()

    def score(self, X, y=None, sample_weight=None):
        """Mean of :meth:`score_samples` over X (higher is better).

        Lets ``GridSearchCV`` and ``cross_val_score`` work with no scorer.

        Parameters
        ----------
        X : {array-like, DataFrame} or image array
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the mean.

        Returns
        -------
        score : float
        """
        weights = self._check_weights(sample_weight, X)
        return float(np.average(self.score_samples(X), weights=weights))

    def save(self, path):
        """Write the fitted estimator to one safetensors file; see :func:`skae.load`.

        Unlike pickle, the file holds only JSON (parameters, learned
        attributes, versions, per-epoch history) and tensors, so loading it
        never runs code. Parameters must be plain values: callables,
        callbacks and ``RandomState`` instances raise ``TypeError``.

        Parameters
        ----------
        path : str or os.PathLike
            File to write, replaced atomically.

        See Also
        --------
        skae.load : Rebuild the estimator from the file.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from skae import VAETransformer, load
        >>> X = np.random.default_rng(0).random((64, 5))
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=2,
        ...                      random_state=0).fit(X)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     vae.save(os.path.join(folder, "vae.safetensors"))
        ...     loaded = load(os.path.join(folder, "vae.safetensors"))
        >>> np.array_equal(loaded.transform(X), vae.transform(X))
        True
        """
        if self._save_file is None:
            raise RuntimeError("est.save needs skae imported as a package: import skae.")
        self._save_file(path)

    # ------------------------------------------------------------------
    # Persistence: the interface skae._io saves and loads through
    # ------------------------------------------------------------------
    # skae/__init__.py sets this to skae._io.save (called as a method), so
    # that the estimators import nothing of the file format.
    _save_file = None

    def _get_persistent_state(self):
        """The fitted estimator as parameters, learned attributes, history and tensors.

        Returns
        -------
        state : dict
            ``"params"``: ``get_params(deep=False)``; ``"attributes"``: every
            learned and private attribute but ``net_``; ``"history"``: the
            rows of ``net_.history``.
        tensors : dict of str to torch.Tensor
            The network's ``state_dict``, copied to the CPU.
        """
        check_is_fitted(self)
        params = self.get_params(deep=False)
        attributes = {name: value for name, value in vars(self).items()
                      if name not in params and name != "net_"}
        tensors = {name: tensor.detach().to("cpu", copy=True).contiguous()
                   for name, tensor in self.net_.module_.state_dict().items()}
        return {"params": params, "attributes": attributes,
                "history": list(self.net_.history)}, tensors

    @classmethod
    def _from_persistent_state(cls, state, read_tensors, device):
        """Rebuild a fitted estimator from what :meth:`_get_persistent_state` gave.

        Parameters
        ----------
        state : dict
            ``"params"``, ``"attributes"`` and ``"history"`` as
            :meth:`_get_persistent_state` returns them; the caller has checked
            the attribute names.
        read_tensors : callable
            Called with the ``state_dict`` of the network built on the "meta"
            device, where nothing is allocated, so that the caller checks the
            saved tensors against it before reading them; returns the tensors.
        device : str
            torch device for the network.

        Returns
        -------
        estimator : _BaseAutoencoder
            The fitted estimator, its network in eval mode.

        Raises
        ------
        ValueError
            If the parameters are invalid, disagree with the learned
            attributes, or do not describe a network that takes the tensors.
        """
        estimator = cls(**state["params"])
        try:
            estimator._validate_params()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid parameters: {exc}") from None
        _check_resolved_params(state["params"], state["attributes"])
        vars(estimator).update(state["attributes"])
        with _buildable():
            with torch.device("meta"):
                template = estimator._build_module().state_dict()
        tensors = read_tensors(template)
        # The initial weights, replaced by the saved ones, are drawn from a
        # generator of their own, so loading leaves torch's random state alone.
        with _buildable():
            with seeded_torch(0):
                module = estimator._build_module()
            net = estimator._build_net(module, 0, 0, device)
            net.initialize()
        try:
            net.module_.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"the weights do not fit the network: {exc}") from None
        net.history = History(state["history"])
        net.module_.eval()
        estimator.net_ = net
        if "_structure" in vars(estimator):
            # A file holds no callbacks, so the loaded net runs none: a warm
            # start continues it with those it has now.
            estimator._structure["callbacks"] = estimator._continued_settings()["callbacks"]
        return estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        # Missing cells and categorical or string columns make a mixed table.
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags
