"""Fast batching of in-memory arrays for the skorch loop.

skorch's default ``Dataset`` + ``DataLoader`` index rows one by one and
collate them; for an autoencoder whose data is already one array that costs
more than the model on small networks. Here a batch is one gather of rows
from the array the user gave (uint8 or float32, never copied whole), turned
into a float32 tensor of the module's input shape. uint8 rows are scaled to
[0, 1] batch by batch.
"""

import math

import numpy as np
import torch


def _shares_with_torch(array):
    """Whether torch can view ``array`` without a copy, as ``view()`` needs it."""
    # torch.from_numpy refuses read-only memory (memmaps) and view() needs a
    # C-contiguous buffer.
    return array.flags.writeable and array.flags.c_contiguous


def rows_to_tensor(rows, sample_shape, buffer=None):
    """Float32 tensor of shape ``(n, *sample_shape)`` from a 2-D block of rows.

    ``rows`` is an ndarray or a tensor; uint8 values are read as 8-bit
    intensities and divided by 255. ``buffer``: a float32 tensor of at least
    as many rows to convert non-float32 rows into (the result is then a view
    of it) instead of a new tensor per batch.
    """
    if isinstance(rows, torch.Tensor):
        tensor = rows
    else:
        if not _shares_with_torch(rows):
            rows = np.array(rows, order="C", copy=True)  # one batch: cheap
        tensor = torch.from_numpy(rows)
    if tensor.dtype != torch.float32:
        converted = (tensor.to(torch.float32) if buffer is None
                     else buffer[:len(tensor)].view(tensor.shape).copy_(tensor))
        if tensor.dtype == torch.uint8:
            converted.div_(255.0)
        tensor = converted
    if tensor.shape[1:] == sample_shape:  # rows of a flat MLP input: nothing to do
        return tensor
    return tensor.view(-1, *sample_shape)


class ArrayDataset(torch.utils.data.Dataset):
    """Rows of a 2-D uint8 or float32 array, optionally a subset of them.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Held by reference: building the dataset copies nothing.
    sample_shape : tuple of int
        Shape of one sample as the module expects it, e.g. ``(n_features,)``
        or ``(C, H, W)``.
    indices : ndarray of int or None
        Rows of ``X`` that belong to this dataset; None means all.
    extras : dict of str to ndarray or None
        Per-row values aligned with the rows of ``X`` (e.g. ``"sample_weight"``),
        batched beside them in the target slot of skorch's ``(X, y)`` batches.
    """

    def __init__(self, X, sample_shape, indices=None, extras=None):
        self.X = X
        self.sample_shape = tuple(sample_shape)
        self.indices = indices
        self.extras = extras or None
        # A tensor viewing X's memory, for gathers with torch's index_select:
        # it uses torch's threads where numpy's fancy indexing uses one.
        self._X_tensor = (torch.from_numpy(X) if X.dtype in (np.uint8, np.float32)
                          and _shares_with_torch(X) else None)

    def __len__(self):
        return len(self.X) if self.indices is None else len(self.indices)

    def subset(self, positions):
        """Dataset of the rows at ``positions`` (positions within this dataset)."""
        positions = np.sort(np.asarray(positions))
        indices = positions if self.indices is None else self.indices[positions]
        return ArrayDataset(self.X, self.sample_shape, indices, self.extras)

    def _rows(self, positions, start, stop):
        """Rows of X at ``positions`` (within this dataset) or ``start:stop``: a slice or indices."""
        if positions is None:
            return slice(start, stop) if self.indices is None else self.indices[start:stop]
        return positions if self.indices is None else self.indices[positions]

    def extras_batch(self, positions=None, start=None, stop=None):
        """The extras of the rows :meth:`batch` returns for the same arguments, or None."""
        if self.extras is None:
            return None
        rows = self._rows(positions, start, stop)
        return {name: torch.from_numpy(np.ascontiguousarray(values[rows]))
                for name, values in self.extras.items()}

    def batch(self, positions=None, start=None, stop=None, buffer=None):
        """Float32 tensor of the rows at ``positions``, or of ``start:stop``.

        ``buffer``: see :func:`rows_to_tensor`.
        """
        rows = self._rows(positions, start, stop)
        rows = self.X[rows] if isinstance(rows, slice) else self._gather(rows)
        return rows_to_tensor(rows, self.sample_shape, buffer)

    def _gather(self, rows_index):
        if self._X_tensor is None:
            return self.X[rows_index]
        return self._X_tensor.index_select(0, torch.from_numpy(rows_index))

    def __getitem__(self, i):
        row = self.batch(start=i, stop=i + 1)[0]
        return row, row


class BatchIterator:
    """Iterate over an :class:`ArrayDataset` in batches of ``(X_batch, extras)``.

    ``extras`` is the dataset's :meth:`~ArrayDataset.extras_batch` (None
    when it has none).

    Parameters
    ----------
    dataset : ArrayDataset
    batch_size : int
    shuffle : bool, default=False
        Draw a new permutation at each pass (each epoch).
    generator : torch.Generator or None
        Source of the permutations, so that shuffling is reproducible.
    drop_single : bool, default=False
        Skip a last batch of one row, which BatchNorm cannot train on.
    """

    def __init__(self, dataset, batch_size, shuffle=False, generator=None,
                 drop_single=False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_single = drop_single

    def __len__(self):
        n_batches = math.ceil(len(self.dataset) / self.batch_size)
        if self.drop_single and len(self.dataset) % self.batch_size == 1 and n_batches > 1:
            n_batches -= 1
        return n_batches

    def __iter__(self):
        n_samples = len(self.dataset)
        order = None
        if self.shuffle:
            order = torch.randperm(n_samples, generator=self.generator).numpy()
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = min(start + self.batch_size, n_samples)
            if order is None:
                yield (self.dataset.batch(start=start, stop=stop),
                       self.dataset.extras_batch(start=start, stop=stop))
            else:
                positions = order[start:stop]
                yield self.dataset.batch(positions), self.dataset.extras_batch(positions)


def n_validation_rows(fraction, n_samples):
    """Rows :class:`FractionSplit` holds out of ``n_samples``: at least one."""
    return max(1, int(round(fraction * n_samples)))


class FractionSplit:
    """Hold out a fixed random fraction of an :class:`ArrayDataset` for validation.

    The same ``random_state`` always holds out the same rows.
    """

    def __init__(self, fraction, random_state):
        self.fraction = fraction
        self.random_state = random_state

    def __call__(self, dataset, y=None, **fit_params):
        if isinstance(dataset, ChunkedDataset):  # held-out chunks, not rows
            return dataset.split(self.fraction, self.random_state)
        n_samples = len(dataset)
        n_valid = n_validation_rows(self.fraction, n_samples)
        if n_valid >= n_samples:
            raise ValueError(
                f"validation_fraction={self.fraction!r} of {n_samples} samples "
                "leaves no rows to train on; pass more samples, lower "
                "validation_fraction or set early_stopping=False."
            )
        order = np.random.RandomState(self.random_state).permutation(n_samples)
        return dataset.subset(order[n_valid:]), dataset.subset(order[:n_valid])


# ----------------------------------------------------------------------
# Arrays larger than memory: np.memmap, zarr, h5py, dask
# ----------------------------------------------------------------------
#: Bytes of rows read at once (one group of chunks), and of a memmap's chunk.
GROUP_BYTES = 32 * 2**20
MEMMAP_CHUNK_BYTES = 2**20
#: Rows of whole chunks the PCA start and the defaults are learned from.
SAMPLE_ROWS = 100_000


def is_out_of_core(X):
    """Whether ``X`` is read chunk by chunk instead of validated into memory.

    np.memmap, and arrays that store rows in chunks and read them on
    indexing: zarr arrays, h5py datasets and dask arrays.
    """
    if isinstance(X, np.memmap):
        return True
    if isinstance(X, np.ndarray) or hasattr(X, "iloc"):
        return False
    return all(hasattr(X, name) for name in ("chunks", "shape", "dtype", "__getitem__"))


def _row_chunks(X):
    """Boundaries ``(start, stop)`` of the chunks of ``X`` along its rows."""
    n_rows = X.shape[0]
    chunks = getattr(X, "chunks", None)
    if isinstance(X, np.memmap) or chunks is None:  # memmap, or contiguous h5py
        row_bytes = max(1, X.dtype.itemsize * math.prod(X.shape[1:]))
        size = max(1, MEMMAP_CHUNK_BYTES // row_bytes)
        return [(a, min(a + size, n_rows)) for a in range(0, n_rows, size)]
    if isinstance(chunks[0], tuple):  # dask: the sizes of every chunk
        bounds = np.concatenate([[0], np.cumsum(chunks[0])]).astype(int)
        return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
    size = int(chunks[0])  # zarr, h5py: one chunk shape
    return [(a, min(a + size, n_rows)) for a in range(0, n_rows, size)]


def as_chunked_source(X):
    """``X`` as a 2-D array of rows with row-aligned chunks, or a clear error.

    A dask array chunked along its features is rechunked into whole rows
    (each read needs whole rows); a memmap of images is viewed as rows.
    zarr and h5py arrays must be 2-D: their chunks along the features are
    read together, so any chunking along the rows works.
    """
    if X.ndim == 2 and hasattr(X, "rechunk") and len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    if X.ndim >= 3 and isinstance(X, np.memmap):
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2:
        raise ValueError(
            f"an out-of-core X ({type(X).__name__}) must be 2-D (n_samples, "
            f"n_features), got shape {X.shape}; store images as flat rows and pass "
            "input_shape=(C, H, W)."
        )
    if X.dtype not in (np.uint8, np.float32, np.float64):
        raise ValueError(
            f"an out-of-core X must hold uint8, float32 or float64 values, got "
            f"dtype {X.dtype}; convert it on disk first."
        )
    return X


class ChunkedDataset(torch.utils.data.Dataset):
    """Rows of an array on disk (or in a dask graph), read chunk by chunk.

    Parameters
    ----------
    X : np.memmap, zarr.Array, h5py.Dataset or dask.array.Array
        2-D, from :func:`as_chunked_source`; never read whole.
    sample_shape : tuple of int
    chunks : list of (int, int) or None
        Row ranges ``(start, stop)`` that belong to this dataset, each
        within one storage chunk; None means every chunk of ``X``.
    extras : dict of str to ndarray or None
        Per-row values in memory, aligned with all rows of ``X``; see
        :class:`ArrayDataset`.
    """

    def __init__(self, X, sample_shape, chunks=None, extras=None):
        self.X = X
        self.sample_shape = tuple(sample_shape)
        self.chunks = _row_chunks(X) if chunks is None else list(chunks)
        self.extras = extras or None

    def __len__(self):
        return sum(stop - start for start, stop in self.chunks)

    def read(self, chunks):
        """ndarray of the rows of ``chunks``, in their order, in X's dtype."""
        # float64 on disk becomes float32 here, one group at a time.
        dtype = np.uint8 if self.X.dtype == np.uint8 else np.float32
        if hasattr(self.X, "dask"):
            import dask

            parts = dask.compute(*[self.X[start:stop] for start, stop in chunks])
            return np.concatenate([np.asarray(p, dtype=dtype) for p in parts])
        # Chunk by chunk into one buffer: at most one chunk is held twice.
        rows = np.empty((sum(stop - start for start, stop in chunks), self.X.shape[1]),
                        dtype=dtype)
        position = 0
        for start, stop in chunks:
            rows[position:position + stop - start] = self.X[start:stop]
            position += stop - start
        return rows

    def read_extras(self, chunks):
        """The extras of the rows :meth:`read` returns for ``chunks``, or None."""
        if self.extras is None:
            return None
        return {name: np.concatenate([values[start:stop] for start, stop in chunks])
                for name, values in self.extras.items()}

    def groups(self, order=None):
        """Lists of chunks of about GROUP_BYTES each, in ``order`` (positions)."""
        row_bytes = self.X.dtype.itemsize * self.X.shape[1]
        chunks = self.chunks if order is None else [self.chunks[i] for i in order]
        group, size = [], 0
        for chunk in chunks:
            group.append(chunk)
            size += (chunk[1] - chunk[0]) * row_bytes
            if size >= GROUP_BYTES:
                yield group
                group, size = [], 0
        if group:
            yield group

    def split(self, fraction, seed):
        """(train, valid) datasets; valid holds a random set of whole chunks."""
        n_valid = n_validation_rows(fraction, len(self))
        order = np.random.RandomState(seed).permutation(len(self.chunks))
        sizes = np.array([stop - start for start, stop in self.chunks])[order]
        n_valid_chunks = int(np.searchsorted(np.cumsum(sizes), n_valid) + 1)
        if n_valid_chunks >= len(self.chunks):
            raise ValueError(
                f"validation_fraction={fraction!r} of {len(self)} rows in "
                f"{len(self.chunks)} chunks leaves no chunk to train on; use smaller "
                "chunks, lower validation_fraction or set early_stopping=False."
            )
        pick = lambda positions: ChunkedDataset(  # noqa: E731
            self.X, self.sample_shape, sorted(self.chunks[i] for i in positions),
            self.extras)
        return pick(order[n_valid_chunks:]), pick(order[:n_valid_chunks])

    def sample_chunks(self, n_rows):
        """Whole chunks spread evenly over X, about ``n_rows`` rows in all."""
        mean_rows = len(self) / len(self.chunks)
        n_chunks = min(len(self.chunks), max(1, math.ceil(n_rows / mean_rows)))
        positions = np.unique(np.linspace(0, len(self.chunks) - 1, n_chunks).astype(int))
        return [self.chunks[i] for i in positions]

    def sample(self, n_rows):
        """ndarray of the rows of :meth:`sample_chunks`."""
        return self.read(self.sample_chunks(n_rows))

    def value_range(self):
        """(min, max) over every row, in one sequential pass; refuses NaN and inf."""
        low, high = np.inf, -np.inf
        for group in self.groups():
            rows = self.read(group)
            low, high = min(low, rows.min()), max(high, rows.max())
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError(
                "Input X contains NaN, infinity or a value too large for "
                "dtype('float32'); remove or impute those values first."
            )
        return low, high


class ChunkIterator(BatchIterator):
    """Batches of a :class:`ChunkedDataset`, reading a group of chunks at a time.

    With ``shuffle``, the chunks come in a new random order each pass; they
    are read in groups of about ``GROUP_BYTES`` and the rows of each group
    are shuffled together, so a batch mixes rows of several chunks. Rows
    left over at the end of a group start the next group's first batch. A
    reader thread reads the next group while the current one trains, so a
    pass holds at most two groups in memory whatever the number of rows.
    Parameters as :class:`BatchIterator`.
    """

    def __iter__(self):
        from concurrent.futures import ThreadPoolExecutor

        dataset, size = self.dataset, self.batch_size
        order = (torch.randperm(len(dataset.chunks), generator=self.generator).numpy()
                 if self.shuffle else None)
        groups = iter(dataset.groups(order))
        n_batches = len(self)

        def read(group):
            return dataset.read(group), dataset.read_extras(group)

        def take(rows, extras, positions):
            return rows[positions], extras and {k: v[positions] for k, v in extras.items()}

        # Batches are consecutive slices of the groups' rows, each group's in
        # its own permutation; rows are gathered batch by batch, so a group is
        # never copied whole. Rows left at a group's end start the next batch.
        left = None
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(read, next(groups))
            while pending is not None and n_batches > 0:
                rows, extras = pending.result()
                group = next(groups, None)
                pending = None if group is None else reader.submit(read, group)
                permutation = (torch.randperm(len(rows), generator=self.generator).numpy()
                               if self.shuffle else np.arange(len(rows)))
                start = 0
                while start < len(rows) and n_batches > 0:
                    need = size - (0 if left is None else len(left[0]))
                    part = take(rows, extras, permutation[start:start + need])
                    start += need
                    if left is not None:
                        part = (np.concatenate([left[0], part[0]]), part[1] and {
                            k: np.concatenate([left[1][k], v]) for k, v in part[1].items()})
                        left = None
                    if len(part[0]) < size and pending is not None:
                        left = part  # completed by the next group's rows
                        break
                    n_batches -= 1
                    yield (rows_to_tensor(part[0], dataset.sample_shape),
                           part[1] and {k: torch.from_numpy(v) for k, v in part[1].items()})
