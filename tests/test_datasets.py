"""skae.datasets: the idx reader, local files, checksums, downloads (from a local server)."""

import gzip
import hashlib
import http.server
import os
import struct
import sys
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from skae import datasets
from skae.datasets import get_data_home, load_fashion_mnist, load_mnist, read_idx

IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
              np.float32: 0x0D, np.float64: 0x0E}
LOADERS = {"fashion_mnist": load_fashion_mnist, "mnist": load_mnist}


def idx_bytes(array):
    array = np.asarray(array)
    header = bytes([0, 0, TYPE_CODES[array.dtype.type], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=False):
    content = idx_bytes(array)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(content)
    else:
        Path(path).write_bytes(content)
    return Path(path)


def small_arrays(n_train=6, n_test=4, seed=0):
    rng = np.random.RandomState(seed)
    return {
        "x_train": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "y_train": rng.randint(0, 10, n_train).astype(np.uint8),
        "x_test": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "y_test": rng.randint(0, 10, n_test).astype(np.uint8),
    }


def write_idx_set(folder, arrays, gz):
    folder.mkdir(parents=True, exist_ok=True)
    for role, name in IDX_NAMES.items():
        write_idx(folder / (name + (".gz" if gz else "")), arrays[role], gz=gz)


# ----------------------------------------------------------------------
# read_idx
# ----------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", list(TYPE_CODES))
def test_read_idx_round_trip(tmp_path, dtype, gz):
    array = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    path = write_idx(tmp_path / "a-idx3", array, gz=gz)
    result = read_idx(path)
    np.testing.assert_array_equal(result, array)
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    assert result.flags.writeable


def test_read_idx_detects_gzip_by_content(tmp_path):
    labels = np.array([3, 1, 4], dtype=np.uint8)
    path = write_idx(tmp_path / "labels-without-suffix", labels, gz=True)
    np.testing.assert_array_equal(read_idx(path), labels)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("cut, message", [
    (2, "is truncated: its header declares shape"),   # data cut short
    (-3, "is too long"),                               # extra bytes appended
])
def test_read_idx_rejects_wrong_data_length(tmp_path, gz, cut, message):
    content = idx_bytes(np.zeros((4, 3), dtype=np.uint8))
    content = content[:-cut] if cut > 0 else content + b"\x00" * -cut
    path = tmp_path / "bad-idx2"
    if gz:
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert "bad-idx2" in str(info.value)


@pytest.mark.parametrize("content, message", [
    (b"\x01\x02\x08\x01\x00\x00\x00\x01\x00", "is not an idx file"),  # bad magic
    (b"\x00\x00\x42\x01\x00\x00\x00\x01\x00", "is not an idx file"),  # unknown type
    (b"\x00\x00", "is not an idx file"),                              # too short
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "ends before their sizes"),  # header cut
])
def test_read_idx_rejects_bad_headers(tmp_path, content, message):
    path = tmp_path / "broken"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_idx(path)


def test_read_idx_rejects_truncated_gzip_stream(tmp_path):
    rng = np.random.RandomState(0)
    compressed = gzip.compress(idx_bytes(rng.randint(0, 256, (50, 28, 28)).astype(np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="damaged or truncated gzip file"):
        read_idx(path)


# ----------------------------------------------------------------------
# Local files
# ----------------------------------------------------------------------
@pytest.mark.parametrize("subfolder", [False, True], ids=["data_home", "subfolder"])
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("folder", list(LOADERS))
def test_load_idx_files(tmp_path, folder, gz, subfolder):
    arrays = small_arrays()
    write_idx_set(tmp_path / folder if subfolder else tmp_path, arrays, gz)
    bunch = LOADERS[folder](tmp_path)
    np.testing.assert_array_equal(bunch.images, arrays["x_train"])
    np.testing.assert_array_equal(bunch.data, arrays["x_train"].reshape(6, 784))
    assert np.shares_memory(bunch.data, bunch.images)
    np.testing.assert_array_equal(bunch.target, arrays["y_train"])
    np.testing.assert_array_equal(bunch.images_test, arrays["x_test"])
    np.testing.assert_array_equal(bunch.data_test, arrays["x_test"].reshape(4, 784))
    np.testing.assert_array_equal(bunch.target_test, arrays["y_test"])
    assert bunch.images.dtype == bunch.target.dtype == np.uint8
    assert len(bunch.target_names) == 10 and len(bunch.feature_names) == 784
    assert len(bunch.filenames) == 4 and bunch.DESCR
    expected_first = "T-shirt/top" if folder == "fashion_mnist" else "0"
    assert bunch.target_names[0] == expected_first

    X_train, y_train, X_test, y_test = LOADERS[folder](tmp_path, return_X_y=True)
    assert X_train.shape == (6, 28, 28) and X_test.shape == (4, 28, 28)
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_fashion_mnist_target_names(tmp_path):
    write_idx_set(tmp_path, small_arrays(), gz=True)
    assert list(load_fashion_mnist(tmp_path).target_names) == [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.mark.parametrize("flat", [False, True])
def test_load_npz(tmp_path, flat):
    arrays = small_arrays()
    saved = dict(arrays)
    if flat:
        saved["x_train"] = saved["x_train"].reshape(6, 784)
    np.savez_compressed(tmp_path / "fashion_mnist.npz", **saved)
    X_train, y_train, X_test, y_test = load_fashion_mnist(tmp_path, return_X_y=True)
    np.testing.assert_array_equal(X_train, arrays["x_train"])
    np.testing.assert_array_equal(y_train, arrays["y_train"])
    np.testing.assert_array_equal(X_test, arrays["x_test"])


def test_npz_is_preferred_to_idx_files(tmp_path):
    write_idx_set(tmp_path, small_arrays(seed=1), gz=True)
    np.savez(tmp_path / "mnist.npz", **small_arrays(seed=2))
    bunch = load_mnist(tmp_path)
    np.testing.assert_array_equal(bunch.images, small_arrays(seed=2)["x_train"])
    assert bunch.filenames == [str(tmp_path / "mnist.npz")]


def test_npz_that_is_not_a_zip_archive(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="mnist.npz is not a .npz file"):
        load_mnist(tmp_path)


def test_npz_missing_arrays(tmp_path):
    arrays = small_arrays()
    del arrays["y_test"]
    np.savez(tmp_path / "fashion_mnist.npz", **arrays)
    with pytest.raises(ValueError, match=r"lacks the arrays \['y_test'\]"):
        load_fashion_mnist(tmp_path)


@pytest.mark.parametrize("role, bad, message", [
    ("x_train", np.zeros((6, 28, 28), dtype=np.float32), "must hold uint8 images"),
    ("y_train", np.zeros(5, dtype=np.uint8), "must hold 6 uint8 labels"),
    ("y_test", np.full(4, 12, dtype=np.uint8), "labels must be 0..9"),
])
def test_arrays_of_the_wrong_kind(tmp_path, role, bad, message):
    arrays = small_arrays()
    arrays[role] = bad
    np.savez(tmp_path / "fashion_mnist.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_fashion_mnist(tmp_path)


def test_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(tmp_path)
    message = str(info.value)
    for expected in ["fashion_mnist.npz", "train-images-idx3-ubyte.gz",
                     "t10k-labels-idx1-ubyte.gz", "download=True", "SKAE_DATA",
                     str(tmp_path / "fashion_mnist")]:
        assert expected in message


def test_partial_idx_set_names_missing_files(tmp_path):
    arrays = small_arrays()
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", arrays["x_train"], gz=True)
    with pytest.raises(FileNotFoundError,
                       match="missing: train-labels-idx1-ubyte, t10k-images"):
        load_mnist(tmp_path)


def test_data_home_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("SKAE_DATA", str(tmp_path))
    assert get_data_home() == tmp_path
    write_idx_set(tmp_path / "mnist", small_arrays(), gz=False)
    assert load_mnist().images.shape == (6, 28, 28)
    monkeypatch.delenv("SKAE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home() == tmp_path / "home" / "skae_data"
    with pytest.raises(TypeError, match="data_home=3 must be a folder path"):
        get_data_home(3)


# ----------------------------------------------------------------------
# Checksums
# ----------------------------------------------------------------------
def test_official_size_with_wrong_md5_is_rejected(tmp_path):
    """A file with an official name and size must have the official md5."""
    arrays = small_arrays()
    write_idx_set(tmp_path, arrays, gz=False)
    # The real uncompressed train-labels file is 60,008 bytes; these labels are wrong.
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(60000, dtype=np.uint8))
    assert labels.stat().st_size == 60008
    with pytest.raises(ValueError, match="md5 .* not the official 9018921c") as info:
        load_fashion_mnist(tmp_path)
    assert str(labels) in str(info.value)


def test_verify_false_skips_checksums(tmp_path, monkeypatch):
    write_idx_set(tmp_path, small_arrays(), gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    # Pretend this small file has the official size, with another checksum.
    monkeypatch.setitem(datasets._FASHION_MNIST.files, path.name,
                        (path.stat().st_size, "0" * 32))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz has the size"):
        load_fashion_mnist(tmp_path)
    assert load_fashion_mnist(tmp_path, verify=False).images_test.shape == (4, 28, 28)


def test_official_npz_array_with_wrong_md5_is_rejected(tmp_path):
    arrays = small_arrays()
    arrays["x_test"] = np.zeros((10000, 28, 28), dtype=np.uint8)  # the official shape
    arrays["y_test"] = np.zeros(10000, dtype=np.uint8)
    np.savez(tmp_path / "fashion_mnist.npz", **arrays)
    with pytest.raises(ValueError, match="array x_test has the shape of the official"):
        load_fashion_mnist(tmp_path)
    assert load_fashion_mnist(tmp_path, verify=False).images_test.shape == (10000, 28, 28)


def real_data_home():
    data_home = os.environ.get("SKAE_DATA")
    if not data_home:
        pytest.skip("SKAE_DATA is not set; point it at the folder of fashion_mnist.npz")
    if not (Path(data_home) / "fashion_mnist.npz").is_file():
        pytest.skip(f"{data_home}/fashion_mnist.npz is absent")
    return data_home


def test_real_fashion_mnist():
    bunch = load_fashion_mnist(real_data_home())  # checks the official array md5s
    assert bunch.images.shape == (60000, 28, 28) and bunch.images_test.shape == (10000, 28, 28)
    assert bunch.data.shape == (60000, 784) and bunch.images.dtype == np.uint8
    # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    assert np.bincount(bunch.target).tolist() == [6000] * 10
    assert np.bincount(bunch.target_test).tolist() == [1000] * 10
    assert bunch.images.max() == 255


# ----------------------------------------------------------------------
# Downloads, from a server on 127.0.0.1 serving files the test wrote
# ----------------------------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests = None  # a list, set per server

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server over a folder of small gzipped idx files."""
    served = tmp_path / "served"
    arrays = small_arrays(seed=3)
    write_idx_set(served, arrays, gz=True)
    requests = []
    handler = type("Handler", (_QuietHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_address[1]}/", "served": served,
               "arrays": arrays, "requests": requests}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def downloaded_files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_writes_files_and_shows_progress(tmp_path, mirror, capsys):
    home = tmp_path / "home"
    bunch = load_fashion_mnist(home, download=True, base_url=mirror["url"], verify=False)
    np.testing.assert_array_equal(bunch.images, mirror["arrays"]["x_train"])
    np.testing.assert_array_equal(bunch.target_test, mirror["arrays"]["y_test"])
    assert downloaded_files(home / "fashion_mnist") == sorted(
        f"{name}.gz" for name in IDX_NAMES.values())
    assert "Downloading train-images-idx3-ubyte.gz" in capsys.readouterr().err
    # A second call finds the files and asks the server for nothing.
    n_requests = len(mirror["requests"])
    load_fashion_mnist(home, download=True, base_url=mirror["url"], verify=False)
    assert len(mirror["requests"]) == n_requests == 4


def test_download_only_fetches_missing_files(tmp_path, mirror):
    home = tmp_path / "home"
    (home / "mnist").mkdir(parents=True)
    write_idx(home / "mnist" / "train-labels-idx1-ubyte", mirror["arrays"]["y_train"])
    load_mnist(home, download=True, base_url=mirror["url"], verify=False)
    assert sorted(mirror["requests"]) == sorted(
        f"/{IDX_NAMES[role]}.gz" for role in ("x_train", "x_test", "y_test"))


def test_download_checks_published_md5(tmp_path, mirror):
    home = tmp_path / "home"
    with pytest.raises(ValueError, match="not the published 8d4fb7e6"):
        load_fashion_mnist(home, download=True, base_url=mirror["url"])
    # Nothing half-written or unverified is left behind.
    assert downloaded_files(home / "fashion_mnist") == []


def test_download_accepts_files_with_the_registered_md5(tmp_path, mirror, monkeypatch):
    for path in mirror["served"].iterdir():
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        monkeypatch.setitem(datasets._MNIST.files, path.name, (path.stat().st_size, md5))
    bunch = load_mnist(tmp_path / "home", download=True, base_url=mirror["url"])
    np.testing.assert_array_equal(bunch.images_test, mirror["arrays"]["x_test"])


def test_download_falls_back_to_the_next_mirror(tmp_path, mirror):
    broken = mirror["url"] + "missing/"
    bunch = load_mnist(tmp_path / "home", download=True, verify=False,
                       base_url=[broken, mirror["url"]])
    assert bunch.images.shape == (6, 28, 28)
    assert "/missing/train-images-idx3-ubyte.gz" in mirror["requests"]


def test_download_error_when_no_mirror_answers(tmp_path, mirror):
    with pytest.raises(OSError, match="Could not download train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path / "home", download=True, verify=False,
                   base_url=mirror["url"] + "missing/")
    assert downloaded_files(tmp_path / "home" / "mnist") == []


def test_download_without_tqdm(tmp_path, mirror, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    bunch = load_mnist(tmp_path / "home", download=True, base_url=mirror["url"], verify=False)
    assert bunch.target.shape == (6,)
    assert "Downloading" not in capsys.readouterr().err


def test_download_rejects_bad_base_url(tmp_path):
    with pytest.raises(TypeError, match="base_url=3 must be a URL"):
        load_mnist(tmp_path, download=True, base_url=3)
