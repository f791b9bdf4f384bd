"""Apply a fitted skae estimator to a dask array, lazily and chunk by chunk.

dask is optional: it is imported when :func:`transform_dask` is called, so
``import skae`` never needs it.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._runtime import parallel_task

METHODS = ("transform", "inverse_transform", "reconstruct", "score_samples")


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError(
            "skae.transform_dask needs dask, which is not installed; install it "
            "with: pip install 'skae[dask]'"
        ) from exc
    return dask, da


def _apply_to_block(block, estimator, method):
    # One chunk among many computed at once: by default one torch thread.
    with parallel_task():
        return np.asarray(getattr(estimator, method)(block))


def transform_dask(estimator, X, *, method="transform"):
    """Encode (or decode) a dask array with a fitted estimator, chunk by chunk.

    Builds a lazy dask array with ``map_blocks``: nothing is computed until
    the result is computed or stored, and each task holds one chunk of rows,
    so memory does not grow with the number of rows. Chunks run wherever
    dask runs them (threads of this process, or the workers of a
    ``dask.distributed`` cluster, which receive the estimator once).

    Parameters
    ----------
    estimator : fitted skae estimator
        E.g. a fitted :class:`~skae.AutoencoderTransformer`. It is used as it
        is when the result is computed: do not refit it before then.
    X : dask.array.Array of shape (n_samples, ...)
        Rows to process, chunked along the rows in any way. For
        ``"transform"``, ``"reconstruct"`` and ``"score_samples"``: rows of
        features, or images (n, H, W) or (n, C, H, W), as in ``fit``; for
        ``"inverse_transform"``: codes (n, n_components). Chunks along the
        other axes are merged into one (each task needs whole rows).
        A dask DataFrame becomes an array with ``df.to_dask_array(lengths=True)``.
    method : {"transform", "inverse_transform", "reconstruct", \
"score_samples"}, default="transform"
        The estimator's method applied to each chunk.

    Returns
    -------
    result : dask.array.Array
        Lazy array with X's row chunks and the method's output per row:
        shape (n_samples, n_components) and dtype float32 for
        ``"transform"``; for the other methods, the shape and dtype the
        method returns on a numpy array.

    See Also
    --------
    dask.array.to_npy_stack : Write the result to disk chunk by chunk.

    Notes
    -----
    Each chunk uses the estimator's ``n_threads`` torch threads; with
    ``n_threads=None``, ``OMP_NUM_THREADS`` when set, else one thread, since
    dask runs several chunks at once.

    To write a result larger than memory, let dask store it chunk by chunk:
    ``da.to_npy_stack(folder, codes)`` or ``codes.to_zarr(path)``. Never
    ``da.store`` it into a ``np.memmap`` on a distributed cluster: workers
    write into their own copies of the memmap and the file silently keeps
    zeros.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer, transform_dask
    >>> X = load_digits().data / 16.0
    >>> ae = AutoencoderTransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> X_dask = da.from_array(X, chunks=(500, 32))
    >>> codes = transform_dask(ae, X_dask)
    >>> codes.shape, codes.dtype, codes.chunks
    ((1797, 2), dtype('float32'), ((500, 500, 500, 297), (2,)))
    >>> bool(abs(codes.compute() - ae.transform(X)).max() < 1e-5)
    True
    >>> transform_dask(ae, codes, method="inverse_transform").shape
    (1797, 64)
    """
    dask, da = _import_dask()
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}.")
    if not isinstance(X, da.Array):
        raise TypeError(
            f"X must be a dask array, got {type(X).__name__}; wrap a numpy array "
            "with dask.array.from_array(X, chunks=...), or call "
            f"estimator.{method}(X) directly."
        )
    check_is_fitted(estimator)
    if X.ndim < 2 or any(np.isnan(size) for size in X.shape[1:]):
        raise ValueError(
            f"X has shape {X.shape}; transform_dask needs rows (n_samples, "
            "n_features) or images (n, H, W) or (n, C, H, W) of known width."
        )
    X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    # One row of zeros checks X's width against the estimator now, not at
    # compute time, and gives the output's shape and dtype per row.
    probe = np.asarray(getattr(estimator, method)(np.zeros((1, *X.shape[1:]), X.dtype)))
    row_shape = probe.shape[1:]
    out_ndim = 1 + len(row_shape)
    axes = {}
    if out_ndim < X.ndim:
        axes["drop_axis"] = list(range(out_ndim, X.ndim))
    elif out_ndim > X.ndim:
        axes["new_axis"] = list(range(X.ndim, out_ndim))
    # The estimator becomes one key of the graph: sent once to each worker,
    # not once per chunk.
    estimator_key = dask.delayed(estimator, pure=False)
    return X.map_blocks(
        _apply_to_block, estimator_key, method=method,
        token=f"skae-{method.replace('_', '-')}",
        chunks=(X.chunks[0], *((size,) for size in row_shape)),
        dtype=probe.dtype, meta=np.empty((0,) * out_ndim, probe.dtype), **axes,
    )
