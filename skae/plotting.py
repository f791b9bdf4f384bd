"""Figures for fitted skae estimators: reconstructions, codes, decoded grids, losses.

matplotlib is an optional dependency (``pip install skae[plotting]``), imported
only when a function runs. Each function draws on a new
:class:`matplotlib.figure.Figure`, without pyplot, so it works headless and
leaves pyplot's state alone, or into the axes given as ``ax``; it returns the
figure. Save it with ``fig.savefig("name.png")``; in a notebook, the returned
figure displays itself.

How model outputs become pictures: a model fitted on images (its
``input_shape_`` is ``(C, H, W)``) is shown as images, gray for one channel,
RGB for three, channels side by side otherwise. uint8 arrays are read as
0..255; float arrays as [0, 1] when the reference data (the originals, or the
decoded images where there are none) lie in [0, 1], else as the reference's
range. Values outside are clipped. A model fitted on table rows is shown as
heatmaps or line plots of its features.
"""

from collections.abc import Mapping
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._data import ArrayDataset
from ._vae import VAETransformer

__all__ = [
    "ReconstructionSnapshots",
    "plot_interpolation",
    "plot_latent_grid",
    "plot_latent_space",
    "plot_loss_curve",
    "plot_reconstructions",
]

# Classes beyond this many unique numeric values are coloured by a colorbar.
_MAX_LEGEND_CLASSES = 20


def _new_figure(ax, figsize):
    """(figure, axes): ``ax``'s figure, or a new Figure with one axes."""
    try:
        # The package itself first: its submodules may be cached without it.
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "skae.plotting needs matplotlib; install it with "
            "`pip install skae[plotting]` (or `pip install matplotlib`)."
        ) from exc
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


def _check_int(value, name, minimum):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an int of at least {minimum}.")
    return int(value)


def _image_shape(estimator):
    """``(C, H, W)`` for a model fitted on images, None for table rows."""
    shape = tuple(estimator.input_shape_)
    return shape if len(shape) == 3 else None


def _head(X, n):
    """The first ``n`` samples of X, keeping its kind (DataFrame, array)."""
    if hasattr(X, "iloc"):
        return X.iloc[:n]
    if not hasattr(X, "shape"):
        X = np.asarray(X)
    return X[:n]


def _value_range(reference):
    """The values that map to black and white, from the reference data."""
    reference = np.asarray(reference)
    if reference.dtype == np.uint8:
        return 0.0, 255.0
    low, high = float(np.min(reference)), float(np.max(reference))
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    return low, high if high > low else low + 1.0


def _scaled(values, value_range):
    """Float values in [0, 1]; uint8 arrays always read as 0..255."""
    values = np.asarray(values)
    low, high = (0.0, 255.0) if values.dtype == np.uint8 else value_range
    return np.clip((values.astype(np.float64) - low) / (high - low), 0.0, 1.0)


def _tiles(values, image_shape, value_range):
    """Samples as displayable tiles: (n, H, W) gray or (n, H, W, 3) RGB in [0, 1]."""
    values = _scaled(values, value_range).reshape(-1, *image_shape)
    n_channels = image_shape[0]
    if n_channels == 1:
        return values[:, 0]
    if n_channels == 3:
        return values.transpose(0, 2, 3, 1)
    # Other channel counts have no colour meaning: show each channel in gray.
    return np.concatenate(list(values.transpose(1, 0, 2, 3)), axis=2)


def _mosaic(rows, pad):
    """One image from a list of rows of equally shaped tiles, ``pad`` pixels apart.

    Gray padding is NaN (drawn transparent); RGB padding is white.
    """
    n_rows, n_cols = len(rows), len(rows[0])
    height, width = rows[0][0].shape[:2]
    extra = rows[0][0].shape[2:]
    fill = np.nan if not extra else 1.0
    canvas = np.full((n_rows * (height + pad) - pad, n_cols * (width + pad) - pad, *extra),
                     fill)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            top, left = i * (height + pad), j * (width + pad)
            canvas[top:top + height, left:left + width] = tile
    return canvas


def _show_mosaic(ax, mosaic, **kwargs):
    image = ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0,
                      interpolation="nearest", **kwargs)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return image


def _show_reconstruction_mosaic(ax, originals, reconstructions, image_shape):
    """Originals in the top row, reconstructions below, on the originals' gray scale."""
    value_range = _value_range(originals)
    rows = [list(_tiles(originals, image_shape, value_range)),
            list(_tiles(reconstructions, image_shape, value_range))]
    height = rows[0][0].shape[0]
    pad = max(1, height // 14)
    _show_mosaic(ax, _mosaic(rows, pad))
    ax.set_xticks([])
    ax.set_yticks([height / 2 - 0.5, height + pad + height / 2 - 0.5],
                  ["original", "reconstruction"])


def _one_sample(estimator, x, name):
    """One sample as a batch of one, shaped as the estimator was fitted."""
    x = np.asarray(x)
    if x.size != estimator.n_features_in_:
        raise ValueError(
            f"{name} has {x.size} values but {type(estimator).__name__} was fitted on "
            f"samples of {estimator.n_features_in_} features; pass one row or one image."
        )
    sample_shape = getattr(estimator, "_sample_shape", None)
    return x.reshape(1, *sample_shape) if sample_shape is not None else x.reshape(1, -1)


# ----------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------
def plot_reconstructions(estimator, X, n=10, *, ax=None):
    """Show samples above their reconstructions.

    Images are drawn as a mosaic: the originals in the top row, the
    reconstructions (``estimator.reconstruct``) below, on the same gray
    scale. Table rows are drawn as two heatmaps of samples by features, the
    originals above the reconstructions, each feature scaled to the range
    of the originals shown.

    Parameters
    ----------
    estimator : fitted skae estimator
        Any estimator with ``reconstruct``, e.g. :class:`~skae.AutoencoderTransformer`.
    X : array-like, DataFrame or image array
        Data of the kind the estimator was fitted on; the first ``n`` samples
        are shown.
    n : int, default=10
        Number of samples shown (fewer when X has fewer).
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; None makes a new figure.

    Returns
    -------
    figure : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import plot_reconstructions
    >>> X = load_digits().images[:200] / 16.0
    >>> ae = AutoencoderTransformer(hidden_layer_sizes=(32,), max_iter=3,
    ...                             random_state=0).fit(X)
    >>> fig = plot_reconstructions(ae, X, n=8)
    >>> fig.savefig("reconstructions.png")  # doctest: +SKIP
    """
    check_is_fitted(estimator)
    n = _check_int(n, "n", 1)
    image_shape = _image_shape(estimator)
    X_head = _head(X, n)
    figure, ax = _new_figure(ax, (max(4.0, 0.9 * len(X_head)), 2.4) if image_shape
                             else (8.0, 4.5))
    originals = np.asarray(X_head)
    reconstructions = np.asarray(estimator.reconstruct(X_head))
    if image_shape is not None:
        _show_reconstruction_mosaic(ax, originals, reconstructions, image_shape)
    else:
        originals = originals.reshape(len(originals), -1).astype(np.float64)
        reconstructions = reconstructions.reshape(len(originals), -1)
        low, high = originals.min(axis=0), originals.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        blocks = [(originals - low) / span, (reconstructions - low) / span]
        gap = np.full((1, originals.shape[1]), np.nan)
        image = ax.imshow(np.clip(np.vstack([blocks[0], gap, blocks[1]]), 0, 1),
                          cmap="viridis", vmin=0, vmax=1, aspect="auto",
                          interpolation="nearest")
        k = len(originals)
        ax.set_yticks([(k - 1) / 2, k + 1 + (k - 1) / 2], ["original", "reconstruction"])
        ax.set_xlabel("feature")
        figure.colorbar(image, ax=ax, label="value, scaled to the originals' range")
    ax.set_title(f"{type(estimator).__name__}: reconstructions")
    return figure


def plot_latent_space(estimator, X, y=None, *, method="auto", target_names=None,
                      ax=None, random_state=0):
    """Scatter the codes of X, coloured by y.

    Parameters
    ----------
    estimator : fitted skae estimator
    X : array-like, DataFrame or image array
        Samples to encode with ``estimator.transform``.
    y : array-like of shape (n_samples,), default=None
        Colours the points: a legend for classes (at most 20 distinct
        integers or strings, or whenever ``target_names`` is given), a
        colorbar for continuous values.
    method : {"auto", "pca", "tsne"}, default="auto"
        How codes wider than 2 are brought to the plane: "auto" draws 2-D
        codes as they are and projects wider ones with PCA; "pca" and "tsne"
        always project (:class:`~sklearn.decomposition.PCA`,
        :class:`~sklearn.manifold.TSNE`, slow beyond a few thousand
        points). 1-D codes are drawn as histograms, one per class.
    target_names : sequence or mapping, default=None
        Class names: ``target_names[label]`` names the class of each label.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; None makes a new figure.
    random_state : int, RandomState instance or None, default=0
        Seeds PCA, t-SNE and the drawing order of the points (shuffled so
        that no class hides the others).

    Returns
    -------
    figure : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import plot_latent_space
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(32,),
    ...                             max_iter=3, random_state=0).fit(X[:300] / 16)
    >>> fig = plot_latent_space(ae, X[:300] / 16, y[:300])
    """
    check_is_fitted(estimator)
    if method not in ("auto", "pca", "tsne"):
        raise ValueError(f"method={method!r} must be 'auto', 'pca' or 'tsne'.")
    figure, ax = _new_figure(ax, (6.5, 5.0))
    codes = np.asarray(estimator.transform(X), dtype=np.float64)
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(codes),):
            raise ValueError(
                f"y has shape {y.shape} but X has {len(codes)} samples; pass one label "
                "per sample."
            )
    rng = check_random_state(random_state)
    title = f"{type(estimator).__name__}: codes"
    if codes.shape[1] == 1:
        if method != "auto":
            raise ValueError(
                f"method={method!r} projects codes onto a plane but {type(estimator).__name__} "
                "has n_components=1; use method='auto' for histograms of the codes."
            )
        _draw_histograms(ax, codes[:, 0], y, target_names)
        ax.set_title(title)
        return figure
    if codes.shape[1] == 2 and method == "auto":
        points, axis_labels = codes, ("code 1", "code 2")
    elif method in ("auto", "pca"):
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=rng)
        points = pca.fit_transform(codes)
        ratios = pca.explained_variance_ratio_
        axis_labels = tuple(f"PC {i + 1} ({100 * r:.0f}% of variance)"
                            for i, r in enumerate(ratios))
        title += ", PCA"
    else:
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(1.0, (len(codes) - 1) / 3))
        points = TSNE(n_components=2, init="pca", perplexity=perplexity,
                      random_state=rng).fit_transform(codes)
        axis_labels = ("t-SNE 1", "t-SNE 2")
        title += ", t-SNE"
    order = rng.permutation(len(points))
    size = 12.0 if len(points) <= 2000 else 3.0
    scatter_kwargs = dict(s=size, alpha=0.8, linewidths=0, rasterized=len(points) > 5000)
    if y is None:
        ax.scatter(points[order, 0], points[order, 1], color="C0", **scatter_kwargs)
    elif _is_discrete(y, target_names):
        classes, index = np.unique(y, return_inverse=True)
        colors = _class_colors(len(classes))
        ax.scatter(points[order, 0], points[order, 1], c=colors[index[order]],
                   **scatter_kwargs)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], linestyle="", marker="o", color=colors[i],
                          label=_class_name(label, target_names))
                   for i, label in enumerate(classes)]
        ax.legend(handles=handles, fontsize="small", loc="center left",
                  bbox_to_anchor=(1.0, 0.5), frameon=False)
    else:
        mappable = ax.scatter(points[order, 0], points[order, 1], c=y[order].astype(float),
                              cmap="viridis", **scatter_kwargs)
        figure.colorbar(mappable, ax=ax, label="y")
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    return figure


def _is_discrete(y, target_names):
    if target_names is not None or y.dtype.kind in "OSUb":
        return True
    return y.dtype.kind in "iu" and len(np.unique(y)) <= _MAX_LEGEND_CLASSES


def _class_colors(n_classes):
    from matplotlib import colormaps

    if n_classes <= 10:
        return np.asarray(colormaps["tab10"].colors)[:n_classes]
    if n_classes <= 20:
        return np.asarray(colormaps["tab20"].colors)[:n_classes]
    return colormaps["viridis"](np.linspace(0, 1, n_classes))


def _class_name(label, target_names):
    if isinstance(label, np.generic):
        label = label.item()
    if target_names is None:
        return str(label)
    if isinstance(target_names, Mapping):
        return str(target_names.get(label, label))
    if isinstance(label, Integral) and 0 <= label < len(target_names):
        return str(target_names[int(label)])
    raise ValueError(
        f"target_names has {len(target_names)} names but y holds the label {label!r}; "
        "pass one name per class index, or a mapping from label to name."
    )


def _draw_histograms(ax, codes, y, target_names):
    bins = np.histogram_bin_edges(codes, bins="auto")
    if y is None:
        ax.hist(codes, bins=bins, color="C0")
    else:
        classes = np.unique(y)
        colors = _class_colors(len(classes))
        for color, label in zip(colors, classes):
            ax.hist(codes[y == label], bins=bins, histtype="step", color=color,
                    label=_class_name(label, target_names))
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5),
                  frameon=False)
    ax.set_xlabel("code")
    ax.set_ylabel("samples")


def plot_latent_grid(estimator, n=15, extent=None, *, X=None, ax=None):
    """Decode a regular n x n grid of codes into a mosaic of images.

    The classic picture of a 2-D latent space: each tile is the decoding of
    the code at its place, so the mosaic shows how images change across the
    space. The axes are labelled in code coordinates.

    Parameters
    ----------
    estimator : fitted skae estimator
        With ``n_components=2``, fitted on images (arrays of shape
        (n, H, W) or (n, C, H, W), or rows with ``input_shape``).
    n : int, default=15
        Tiles per side (at least 2).
    extent : tuple of float, default=None
        The region of the code plane: ``(low, high)`` for both axes or
        ``(x_low, x_high, y_low, y_high)``; tiles are centred on the grid
        from ``low`` to ``high``. None means the range of the codes of ``X``
        when given, else (-3, 3) for a :class:`~skae.VAETransformer` (three
        standard deviations of its standard normal prior), and for other
        models the range of their training codes (1st to 99th percentile of
        up to 2,000 training rows, recorded by ``fit``).
    X : array-like or image array, default=None
        Samples (e.g. the training data) whose codes' range sets ``extent``.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; None makes a new figure.

    Returns
    -------
    figure : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAETransformer
    >>> from skae.plotting import plot_latent_grid
    >>> X = load_digits().images[:200] / 16.0
    >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(32,), max_iter=3,
    ...                      random_state=0).fit(X)
    >>> fig = plot_latent_grid(vae, n=10)
    """
    check_is_fitted(estimator)
    n = _check_int(n, "n", 2)
    name = type(estimator).__name__
    if estimator.n_components != 2:
        raise ValueError(
            f"plot_latent_grid decodes a 2-D grid of codes but this {name} has "
            f"n_components={estimator.n_components}; fit it with n_components=2, or "
            "use plot_latent_space to see wider codes."
        )
    image_shape = _image_shape(estimator)
    if image_shape is None:
        raise ValueError(
            f"plot_latent_grid draws decoded images but this {name} was fitted on "
            f"rows of {estimator.n_features_in_} features; fit it on image arrays "
            "(n, H, W) or set input_shape=(C, H, W)."
        )
    x_low, x_high, y_low, y_high = _grid_extent(estimator, extent, X)
    figure, ax = _new_figure(ax, (7.0, 7.0))
    xs = np.linspace(x_low, x_high, n)
    ys = np.linspace(y_high, y_low, n)  # the top row holds the highest code 2
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    decoded = np.asarray(estimator.inverse_transform(grid))
    tiles = _tiles(decoded, image_shape, _value_range(decoded))
    mosaic = _mosaic([list(tiles[i * n:(i + 1) * n]) for i in range(n)], pad=0)
    dx, dy = (x_high - x_low) / (n - 1), (y_high - y_low) / (n - 1)
    _show_mosaic(ax, mosaic, extent=(x_low - dx / 2, x_high + dx / 2,
                                     y_low - dy / 2, y_high + dy / 2))
    height, width = tiles.shape[1:3]
    ax.set_aspect((dx * height) / (dy * width))  # square pixels
    ax.set_xlabel("code 1")
    ax.set_ylabel("code 2")
    ax.set_title(f"{name}: decoded {n} x {n} grid of codes")
    return figure


def _grid_extent(estimator, extent, X):
    if extent is None:
        if X is not None:
            codes = np.asarray(estimator.transform(X))
            low, high = codes.min(axis=0), codes.max(axis=0)
            extent = (low[0], high[0], low[1], high[1])
        elif isinstance(estimator, VAETransformer):
            extent = (-3.0, 3.0)
        elif getattr(estimator, "_code_range", None) is not None:
            (x_low, x_high), (y_low, y_high) = estimator._code_range[:2]
            extent = (x_low, x_high, y_low, y_high)
        else:
            raise ValueError(
                f"{type(estimator).__name__}'s codes have no fixed scale: pass "
                "extent=(low, high) or X= (e.g. the training data) to span its codes."
            )
    values = tuple(float(v) for v in np.ravel(extent))
    if len(values) == 2:
        values = values * 2
    if (len(values) != 4 or not np.all(np.isfinite(values))
            or values[0] >= values[1] or values[2] >= values[3]):
        raise ValueError(
            f"extent={extent!r} must be (low, high) or (x_low, x_high, y_low, y_high) "
            "of finite numbers with low < high."
        )
    return values


def plot_interpolation(estimator, x_a, x_b, n_steps=8, *, ax=None):
    """Decode the straight path between the codes of two samples.

    Uses ``estimator.interpolate`` when it has one (:class:`~skae.VAETransformer`),
    else decodes evenly spaced points between ``transform(x_a)`` and
    ``transform(x_b)`` with ``inverse_transform``. Images: one row, ``x_a``
    and ``x_b`` themselves at the ends. Table rows: one line per step over
    the features, coloured from ``x_a`` to ``x_b``, with the two samples
    dashed.

    Parameters
    ----------
    estimator : fitted skae estimator
    x_a, x_b : array-like
        One sample each: a row of ``n_features_in_`` values or one image.
    n_steps : int, default=8
        Number of decoded points, both ends included (at least 2).
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; None makes a new figure.

    Returns
    -------
    figure : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import plot_interpolation
    >>> X = load_digits().images[:200] / 16.0
    >>> ae = AutoencoderTransformer(hidden_layer_sizes=(32,), max_iter=3,
    ...                             random_state=0).fit(X)
    >>> fig = plot_interpolation(ae, X[0], X[1], n_steps=6)
    """
    check_is_fitted(estimator)
    n_steps = _check_int(n_steps, "n_steps", 2)
    sample_a, sample_b = _one_sample(estimator, x_a, "x_a"), _one_sample(estimator, x_b, "x_b")
    image_shape = _image_shape(estimator)
    figure, ax = _new_figure(ax, (max(4.0, 0.9 * (n_steps + 2)), 1.9) if image_shape
                             else (7.0, 4.0))
    if hasattr(estimator, "interpolate"):
        path = estimator.interpolate(sample_a[0], sample_b[0], n_steps=n_steps)
    else:
        code_a, code_b = estimator.transform(sample_a), estimator.transform(sample_b)
        weights = np.linspace(0.0, 1.0, n_steps, dtype=np.float32)[:, None]
        path = estimator.inverse_transform((1 - weights) * code_a + weights * code_b)
    path = np.asarray(path)
    steps = np.linspace(0.0, 1.0, n_steps)
    if image_shape is not None:
        value_range = _value_range(np.concatenate([sample_a.ravel(), sample_b.ravel()]))
        tiles = [_tiles(sample_a, image_shape, value_range)[0],
                 *_tiles(path, image_shape, value_range),
                 _tiles(sample_b, image_shape, value_range)[0]]
        width = tiles[0].shape[1]
        pad = max(1, width // 14)
        _show_mosaic(ax, _mosaic([tiles], pad))
        labels = ["x_a", *(f"{t:.2g}" for t in steps), "x_b"]
        ax.set_xticks([i * (width + pad) + width / 2 - 0.5 for i in range(len(tiles))],
                      labels, fontsize="small")
        ax.set_yticks([])
    else:
        from matplotlib import colormaps
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        cmap = colormaps["viridis"]
        features = np.arange(estimator.n_features_in_)
        for t, row in zip(steps, path.reshape(n_steps, -1)):
            ax.plot(features, row, color=cmap(t), linewidth=1.2)
        ax.plot(features, sample_a.ravel(), "--", color=cmap(0.0), label="x_a")
        ax.plot(features, sample_b.ravel(), "--", color=cmap(1.0), label="x_b")
        figure.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax,
                        label="position from x_a (0) to x_b (1)")
        ax.legend(fontsize="small")
        ax.set_xlabel("feature")
        ax.set_ylabel("value")
    ax.set_title(f"{type(estimator).__name__}: interpolation in code space")
    return figure


def plot_loss_curve(estimator, *, ax=None):
    """Plot the training history: the loss per epoch and its parts.

    Draws ``loss_curve_``, the validation loss (``-validation_scores_``)
    when the estimator was fitted with ``early_stopping=True``, and, for a
    :class:`~skae.VAETransformer`, the reconstruction and KL terms of the
    loss recorded in ``net_.history`` (``train_recon``, ``train_kl`` and
    their ``valid_`` counterparts), dashed.

    Parameters
    ----------
    estimator : fitted skae estimator
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; None makes a new figure.

    Returns
    -------
    figure : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAETransformer
    >>> from skae.plotting import plot_loss_curve
    >>> X = load_digits().data[:200] / 16.0
    >>> vae = VAETransformer(hidden_layer_sizes=(32,), max_iter=3, early_stopping=False,
    ...                      random_state=0).fit(X)
    >>> fig = plot_loss_curve(vae)
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['training loss', 'training reconstruction', 'training KL']
    """
    check_is_fitted(estimator)
    figure, ax = _new_figure(ax, (6.5, 4.0))
    from matplotlib.ticker import MaxNLocator

    epochs = np.arange(1, len(estimator.loss_curve_) + 1)
    ax.plot(epochs, estimator.loss_curve_, color="C0", label="training loss")
    if getattr(estimator, "validation_scores_", None) is not None:
        ax.plot(epochs, -np.asarray(estimator.validation_scores_), color="C1",
                label="validation loss")
    history = estimator.net_.history
    terms = (("train_recon", "training reconstruction", "C2"),
             ("train_kl", "training KL", "C3"),
             ("valid_recon", "validation reconstruction", "C4"),
             ("valid_kl", "validation KL", "C5"))
    for key, label, color in terms:
        if len(history) == len(epochs) and len(history) and all(key in row for row in history):
            ax.plot(epochs, history[:, key], "--", color=color, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small")
    ax.set_title(f"{type(estimator).__name__}: training history")
    return figure


# ----------------------------------------------------------------------
# While training
# ----------------------------------------------------------------------
class ReconstructionSnapshots(Callback):
    """skorch callback: save originals over reconstructions as PNGs while training.

    The tutorials save such a grid every few epochs to watch the
    reconstructions sharpen; pass this callback to any skae estimator.

    Parameters
    ----------
    directory : str or path-like
        Folder for the PNG files (created if missing), one per snapshot,
        named ``reconstructions_epoch{epoch:03d}.png``.
    X : array-like or image array, default=None
        Samples to reconstruct (e.g. a few test images), of the kind the
        estimator is fitted on. None uses the first ``n`` training rows.
    n : int, default=10
        Number of samples shown.
    every : int, default=1
        Save after every ``every``-th epoch (and after the last one).
    image_shape : tuple of int, default=None
        ``(C, H, W)`` or ``(H, W)`` of the samples. None takes it from the
        convolutional network's input, else from ``X`` when it is an image
        array; flat rows of an MLP need it.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import ReconstructionSnapshots
    >>> import os, tempfile
    >>> X = load_digits().images[:200] / 16.0
    >>> folder = tempfile.mkdtemp()
    >>> snapshots = ReconstructionSnapshots(folder, X=X[:8], every=5)
    >>> ae = AutoencoderTransformer(hidden_layer_sizes=(32,), max_iter=10, tol=0.0,
    ...                             callbacks=[snapshots], random_state=0).fit(X)
    >>> sorted(os.listdir(folder))
    ['reconstructions_epoch005.png', 'reconstructions_epoch010.png']
    """

    def __init__(self, directory, X=None, n=10, every=1, image_shape=None):
        self.directory = directory
        self.X = X
        self.n = n
        self.every = every
        self.image_shape = image_shape

    def on_train_begin(self, net, X=None, **kwargs):
        _check_int(self.n, "n", 1)
        _check_int(self.every, "every", 1)
        _new_figure(None, (1, 1))  # fails early when matplotlib is missing
        module_input_shape = X.sample_shape
        samples = X.batch(start=0, stop=self.n) if self.X is None else self._samples(
            module_input_shape)
        self._samples_tensor = samples
        self._tile_shape = self._find_image_shape(module_input_shape)
        self._epochs_done = 0
        Path(self.directory).mkdir(parents=True, exist_ok=True)

    def _samples(self, module_input_shape):
        samples = np.asarray(_head(self.X, self.n))
        rows = samples.reshape(len(samples), -1)
        rows = rows if rows.dtype == np.uint8 else rows.astype(np.float32)
        if rows.shape[1] != int(np.prod(module_input_shape)):
            raise ValueError(
                f"ReconstructionSnapshots: X has {rows.shape[1]} values per sample but "
                f"the model takes {int(np.prod(module_input_shape))}; pass samples of "
                "the kind the estimator is fitted on."
            )
        return ArrayDataset(rows, module_input_shape).batch(start=0, stop=len(rows))

    def _find_image_shape(self, module_input_shape):
        shape = self.image_shape
        if shape is None and len(module_input_shape) == 3:
            shape = module_input_shape
        if shape is None and self.X is not None and np.ndim(self.X) in (3, 4):
            shape = np.shape(self.X)[1:]
        if shape is None:
            raise ValueError(
                "ReconstructionSnapshots draws images but the model takes flat rows: "
                "pass image_shape=(H, W) or (C, H, W), or X as an image array."
            )
        shape = tuple(int(v) for v in shape)
        shape = (1, *shape) if len(shape) == 2 else shape
        if int(np.prod(shape)) != int(np.prod(module_input_shape)):
            raise ValueError(
                f"ReconstructionSnapshots: image_shape={self.image_shape!r} does not "
                f"hold the model's {int(np.prod(module_input_shape))} values per sample."
            )
        return shape

    def on_epoch_end(self, net, **kwargs):
        self._epochs_done += 1
        if self._epochs_done % self.every == 0:
            self._save(net)

    def on_train_end(self, net, **kwargs):
        if getattr(self, "_epochs_done", 0) % self.every and len(net.history):
            self._save(net)
        self._samples_tensor = None

    def _save(self, net):
        module = net.module_
        was_training = module.training
        module.eval()
        with torch.no_grad():
            batch = self._samples_tensor.to(net.device)
            decoded = module.decode(module.encode(batch)).cpu().numpy()
        module.train(was_training)
        originals = self._samples_tensor.cpu().numpy()
        figure, ax = _new_figure(None, (max(4.0, 0.9 * len(originals)), 2.4))
        _show_reconstruction_mosaic(ax, originals, decoded, self._tile_shape)
        epoch = net.history[-1, "epoch"]
        ax.set_title(f"epoch {epoch}: originals over reconstructions")
        figure.savefig(Path(self.directory) / f"reconstructions_epoch{epoch:03d}.png")
