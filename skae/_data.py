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
    """

    def __init__(self, X, sample_shape, indices=None):
        self.X = X
        self.sample_shape = tuple(sample_shape)
        self.indices = indices
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
        return ArrayDataset(self.X, self.sample_shape, indices)

    def batch(self, positions=None, start=None, stop=None, buffer=None):
        """Float32 tensor of the rows at ``positions``, or of ``start:stop``.

        ``buffer``: see :func:`rows_to_tensor`.
        """
        if positions is None:
            if self.indices is None:
                rows = self.X[start:stop]
            else:
                rows = self._gather(self.indices[start:stop])
        else:
            rows = self._gather(positions if self.indices is None else self.indices[positions])
        return rows_to_tensor(rows, self.sample_shape, buffer)

    def _gather(self, rows_index):
        if self._X_tensor is None:
            return self.X[rows_index]
        return self._X_tensor.index_select(0, torch.from_numpy(rows_index))

    def __getitem__(self, i):
        row = self.batch(start=i, stop=i + 1)[0]
        return row, row


class BatchIterator:
    """Iterate over an :class:`ArrayDataset` in batches of ``(X_batch, None)``.

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
                yield self.dataset.batch(start=start, stop=stop), None
            else:
                yield self.dataset.batch(order[start:stop]), None


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
