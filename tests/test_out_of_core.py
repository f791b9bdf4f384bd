"""Fits from arrays read chunk by chunk: np.memmap, zarr, h5py, dask."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skae import AutoencoderTransformer
from skae import _data
from skae._data import ChunkedDataset, ChunkIterator, as_chunked_source, is_out_of_core


@pytest.fixture(scope="module")
def digits():
    return (load_digits().data / 16).astype(np.float32)


@pytest.fixture
def small_groups(monkeypatch):
    # Many chunks and groups on a small set, as a large array has.
    monkeypatch.setattr(_data, "MEMMAP_CHUNK_BYTES", 64 * 64 * 4)
    monkeypatch.setattr(_data, "GROUP_BYTES", 4 * 64 * 64 * 4)


def _memmap(tmp_path, X, mode="r"):
    path = tmp_path / "X.dat"
    out = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    out[:] = X
    out.flush()
    return np.memmap(path, dtype=X.dtype, mode=mode, shape=X.shape)


def _mse(est, X):
    return float(((est.inverse_transform(est.transform(X)) - X) ** 2).mean())


def test_iterator_reads_every_row_once_in_shuffled_chunks(small_groups):
    X = np.arange(1000 * 64, dtype=np.float32).reshape(1000, 64)
    dataset = ChunkedDataset(X.view(np.memmap), (64,))
    assert len(dataset.chunks) > 4
    iterator = ChunkIterator(dataset, 64, shuffle=True, generator=torch.Generator().manual_seed(0))
    batches = [b for b, _ in iterator]
    assert len(batches) == len(iterator)
    rows = torch.cat(batches)[:, 0].numpy() / 64
    np.testing.assert_array_equal(np.sort(rows), np.arange(1000))
    assert not np.array_equal(rows, np.arange(1000))  # shuffled
    assert all(len(b) == 64 for b in batches[:-1])


def test_validation_holds_out_whole_chunks(small_groups):
    mm = np.zeros((1000, 64), np.float32).view(np.memmap)
    train, valid = ChunkedDataset(mm, (64,)).split(0.1, 0)
    assert not set(train.chunks) & set(valid.chunks)
    assert len(train) + len(valid) == 1000 and 100 <= len(valid) <= 164


def test_read_only_memmap_fits_as_well_as_memory(tmp_path, digits, small_groups):
    X = _memmap(tmp_path, digits, mode="r")
    assert is_out_of_core(X) and not X.flags.writeable
    params = dict(n_components=8, max_iter=5, random_state=0)
    on_disk = AutoencoderTransformer(**params).fit(X)
    in_memory = AutoencoderTransformer(**params).fit(digits)
    assert on_disk.n_features_in_ == 64
    assert _mse(on_disk, digits) <= 1.05 * _mse(in_memory, digits)


def test_uint8_memmap_stays_uint8(tmp_path, digits, small_groups):
    X = _memmap(tmp_path, (digits * 255).astype(np.uint8))
    dataset = ChunkedDataset(as_chunked_source(X), (64,))
    assert dataset.read(dataset.chunks[:2]).dtype == np.uint8
    batch, _ = next(iter(ChunkIterator(dataset, 32)))
    assert batch.dtype == torch.float32 and float(batch.max()) <= 1.0
    est = AutoencoderTransformer(4, max_iter=2, random_state=0).fit(X)
    assert est._fitted_on_uint8


def test_dask_fit_codes_as_good_as_in_memory(digits):
    da = pytest.importorskip("dask.array")
    import dask

    # Chunked along the features too: rechunked into whole rows.
    X = da.from_array(digits, chunks=(100, 32))
    params = dict(n_components=8, max_iter=5, random_state=0)
    with dask.config.set(scheduler="threads"):
        from_dask = AutoencoderTransformer(**params).fit(X)
    in_memory = AutoencoderTransformer(**params).fit(digits)
    assert _mse(from_dask, digits) <= 1.05 * _mse(in_memory, digits)


def test_zarr_and_h5py_any_row_chunking(tmp_path, digits):
    zarr = pytest.importorskip("zarr")
    h5py = pytest.importorskip("h5py")
    z = zarr.open_array(str(tmp_path / "X.zarr"), mode="w", shape=digits.shape,
                        chunks=(77, 16), dtype="f4")
    z[:] = digits
    with h5py.File(tmp_path / "X.h5", "w") as f:
        f.create_dataset("X", data=digits, chunks=(50, 64))
    with h5py.File(tmp_path / "X.h5", "r") as f:
        for X in (z, f["X"]):
            assert is_out_of_core(X)
            dataset = ChunkedDataset(as_chunked_source(X), (64,))
            np.testing.assert_array_equal(dataset.read(dataset.chunks), digits)
        est = AutoencoderTransformer(4, max_iter=2, random_state=0).fit(f["X"])
    assert est.transform(digits).shape == (len(digits), 4)


def test_bad_out_of_core_input(tmp_path):
    zarr = pytest.importorskip("zarr")
    z = zarr.open_array(str(tmp_path / "im.zarr"), mode="w", shape=(10, 8, 8),
                        chunks=(5, 8, 8), dtype="f4")
    with pytest.raises(ValueError, match="must be 2-D"):
        AutoencoderTransformer(2).fit(z)
    bad = np.full((200, 4), np.nan, np.float32).view(np.memmap)
    bad[:100] = 0
    # The sample of chunks has NaN (missing values, refused for arrays on
    # disk), or only the full pass finds them.
    with pytest.raises(ValueError, match="missing values|NaN"):
        AutoencoderTransformer(2, init="random", max_iter=1).fit(bad)
