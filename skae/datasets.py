"""Loaders for Fashion-MNIST and MNIST, from local files or the official mirrors.

Both datasets come as four idx files (the format of LeCun's MNIST page), gzipped
or not, or as one ``.npz`` with arrays ``x_train, y_train, x_test, y_test`` (the
layout Keras uses). The loaders look for them in a data folder, check them
against the published checksums, and can download the official files once.

Where the files live: ``data_home``, else the ``SKAE_DATA`` environment
variable, else ``~/skae_data``; in that folder or in its subfolder
``fashion_mnist`` (resp. ``mnist``).
"""

import gzip
import hashlib
import os
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.request import urlopen

import numpy as np
from sklearn.utils import Bunch

__all__ = ["get_data_home", "load_fashion_mnist", "load_mnist", "read_idx"]

# HTTPS mirrors of the official files, tried in order. Fashion-MNIST: Zalando's
# own repository, then the copy Keras downloads. MNIST: yann.lecun.com serves
# plain HTTP only (and often refuses), so the mirrors torchvision and the
# TensorFlow tutorials use.
FASHION_MNIST_URLS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
)
MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# Seconds without an answer before a download gives up on a mirror.
DOWNLOAD_TIMEOUT = 60

_IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_ROLES = tuple(_IDX_NAMES)
_CHUNK_SIZE = 1 << 20

# idx type codes (third byte of the magic number); data are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# Sizes in bytes of the uncompressed idx files; the same for both datasets.
_RAW_SIZES = {"x_train": 47040016, "y_train": 60008, "x_test": 7840016, "y_test": 10008}
_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,),
           "x_test": (10000, 28, 28), "y_test": (10000,)}


@dataclass(frozen=True)
class _DatasetInfo:
    title: str
    folder: str
    urls: tuple
    target_names: tuple
    # file name -> (size in bytes, md5) of the published files; md5 None when unknown.
    files: dict
    # npz array name -> md5 of ``arr.tobytes()`` of the official arrays, or None.
    array_md5: dict
    descr: str


def _official_files(gz, raw):
    files = {}
    for role, name in _IDX_NAMES.items():
        files[f"{name}.gz"] = gz[role]
        files[name] = (_RAW_SIZES[role], raw.get(role))
    return files


_FASHION_DESCR = """\
Fashion-MNIST
-------------
70,000 grayscale 28x28 images of Zalando articles in 10 classes, 60,000 for
training and 10,000 for testing (the official split); 7,000 images per class.
Pixels are uint8, 0 (background) to 255. Classes: T-shirt/top, Trouser,
Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.

Licence: MIT. Source: https://github.com/zalandoresearch/fashion-mnist

Xiao, H., Rasul, K. and Vollgraf, R. (2017). Fashion-MNIST: a Novel Image
Dataset for Benchmarking Machine Learning Algorithms. arXiv:1708.07747.
"""

_MNIST_DESCR = """\
MNIST
-----
70,000 grayscale 28x28 images of handwritten digits 0-9, 60,000 for training
and 10,000 for testing (the official split). Pixels are uint8, 0 (background)
to 255.

Source: http://yann.lecun.com/exdb/mnist/

LeCun, Y., Bottou, L., Bengio, Y. and Haffner, P. (1998). Gradient-based
learning applied to document recognition. Proceedings of the IEEE 86(11).
"""

_FASHION_MNIST = _DatasetInfo(
    title="Fashion-MNIST",
    folder="fashion_mnist",
    urls=FASHION_MNIST_URLS,
    target_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    files=_official_files(
        gz={"x_train": (26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            "y_train": (29515, "25c81989df183df01b3e8a0aad5dffbe"),
            "x_test": (4422102, "bef4ecab320f06d8554ea6380940ec79"),
            "y_test": (5148, "bb300cfdad3c16e7a12a480ee83cd310")},
        raw={"x_train": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
             "y_train": "9018921c3c673c538a1fc5bad174d6f9",
             "x_test": "8181f5470baa50b63fa0f6fddb340f0a",
             "y_test": "15d484375f8d13e6eb1aabb0c3f46965"},
    ),
    array_md5={"x_train": "f209073e486d5113ebe2cc431d4df862",
               "y_train": "3236f6424fc25388b2834cb19942cf7e",
               "x_test": "b7656a891b218fc13e45205c48a92cae",
               "y_test": "8dea97a4e78c1bd1b5a6e8efbb870b6e"},
    descr=_FASHION_DESCR,
)

_MNIST = _DatasetInfo(
    title="MNIST",
    folder="mnist",
    urls=MNIST_URLS,
    target_names=tuple(str(digit) for digit in range(10)),
    files=_official_files(
        gz={"x_train": (9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            "y_train": (28881, "d53e105ee54ea40749a09fcbcd1e9432"),
            "x_test": (1648877, "9fb629c4189551a2d022fa330f9573f3"),
            "y_test": (4542, "ec29112dd5afa0611ce80d1b7f02629c")},
        raw={},
    ),
    array_md5={},
    descr=_MNIST_DESCR,
)


# ----------------------------------------------------------------------
# Reading files
# ----------------------------------------------------------------------
def read_idx(path):
    """Read one idx file (as on LeCun's MNIST page), gzipped or not.

    The magic number gives the element type and the number of dimensions;
    the sizes follow as big-endian 32-bit integers, then the data. gzip
    files are recognised by their content, not their name.

    Parameters
    ----------
    path : str or path-like
        The idx file.

    Returns
    -------
    array : ndarray
        The data in native byte order, of the shape the header declares
        (uint8 for MNIST images and labels). Writable; owns its memory.

    Raises
    ------
    ValueError
        When the file is not an idx file, is truncated, has bytes past the
        declared data, or is a damaged gzip stream. The message names the
        file.

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> from skae.datasets import read_idx
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "labels-idx1-ubyte.gz")
    >>> header = bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big")  # uint8, 1-D, 3 values
    >>> with gzip.open(path, "wb") as f:
    ...     _ = f.write(header + bytes([7, 2, 1]))
    >>> read_idx(path)
    array([7, 2, 1], dtype=uint8)
    >>> folder.cleanup()
    """
    path = Path(path)
    with open(path, "rb") as raw_file:
        is_gzip = raw_file.read(2) == b"\x1f\x8b"
        raw_file.seek(0)
        raw_size = os.fstat(raw_file.fileno()).st_size
        try:
            if is_gzip:
                with gzip.GzipFile(fileobj=raw_file, mode="rb") as stream:
                    return _read_idx_stream(stream, path, None)
            return _read_idx_stream(raw_file, path, raw_size)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ValueError(
                f"{path} is a damaged or truncated gzip file ({exc}); delete it "
                "and get it again."
            ) from exc


def _read_idx_stream(stream, path, file_size):
    """Parse an idx stream; ``file_size`` is known for uncompressed files."""
    magic = stream.read(4)
    if len(magic) < 4 or magic[:2] != b"\x00\x00" or magic[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an idx file: it starts with 0x{magic.hex()}, "
            "not a magic number 0000TTDD (TT a type code among "
            f"{', '.join(f'{code:02x}' for code in _IDX_DTYPES)}, DD the number "
            "of dimensions)."
        )
    dtype, ndim = _IDX_DTYPES[magic[2]], magic[3]
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(
            f"{path} is truncated: its header declares {ndim} dimensions but "
            "ends before their sizes."
        )
    shape = tuple(int(size) for size in np.frombuffer(dims, dtype=">u4"))
    n_bytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    header_size = 4 + 4 * ndim
    if file_size is not None and file_size != header_size + n_bytes:
        state = "is truncated" if file_size < header_size + n_bytes else "is too long"
        raise ValueError(
            f"{path} {state}: its header declares shape {shape} of {dtype.name}, "
            f"{n_bytes} bytes of data, but the file holds "
            f"{file_size - header_size}."
        )
    try:
        buffer = np.empty(n_bytes, dtype=np.uint8)
    except (MemoryError, ValueError) as exc:
        raise ValueError(
            f"{path} is corrupt: its header declares shape {shape} of "
            f"{dtype.name} ({n_bytes} bytes)."
        ) from exc
    n_read = _read_into(stream, buffer)
    if n_read < n_bytes:
        raise ValueError(
            f"{path} is truncated: its header declares shape {shape} of "
            f"{dtype.name}, {n_bytes} bytes of data, but only {n_read} follow."
        )
    if stream.read(1):
        raise ValueError(
            f"{path} is too long: bytes follow the {n_bytes} bytes of data its "
            f"header declares (shape {shape} of {dtype.name})."
        )
    array = buffer.view(dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read_into(stream, buffer):
    """Fill ``buffer`` from ``stream``; return the number of bytes read."""
    view = memoryview(buffer)
    n_read = 0
    while n_read < len(view):
        n = stream.readinto(view[n_read:])
        if not n:
            break
        n_read += n
    return n_read


def _md5(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_official_file(path, info, verify):
    """Compare a file that looks official (its name and size) with its checksum.

    Files of another size (a subset written for a test, a truncated copy)
    are left to the idx parser, which rejects truncated ones.
    """
    expected = info.files.get(path.name)
    if not verify or expected is None or expected[1] is None:
        return
    size, md5 = expected
    if path.stat().st_size != size:
        return
    actual = _md5(path)
    if actual != md5:
        raise ValueError(
            f"{path} has the size of the official {info.title} file {path.name} but "
            f"its md5 is {actual}, not the official {md5}: the file is damaged "
            "or altered. Delete it and pass download=True to fetch it again, or "
            "pass verify=False to load it anyway."
        )


def _load_npz(path, info, verify):
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a .npz file (a zip archive of .npy arrays).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [role for role in _ROLES if role not in npz.files]
            if missing:
                raise ValueError(
                    f"{path} lacks the arrays {missing}; a dataset .npz needs "
                    f"x_train, y_train, x_test and y_test (it holds {sorted(npz.files)})."
                )
            arrays = {role: npz[role] for role in _ROLES}
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"{path} is not a readable .npz file ({exc}).") from exc
    for role, array in arrays.items():
        md5 = info.array_md5.get(role)
        if (verify and md5 is not None and array.dtype == np.uint8
                and array.shape == _SHAPES[role]):
            actual = hashlib.md5(np.ascontiguousarray(array).tobytes(),
                                 usedforsecurity=False).hexdigest()
            if actual != md5:
                raise ValueError(
                    f"{path}: array {role} has the shape of the official {info.title} "
                    f"array but its md5 is {actual}, not {md5}: the file is damaged "
                    "or altered. Replace it, or pass verify=False to load it anyway."
                )
    return arrays


def _load_idx_files(paths, info, verify):
    arrays = {}
    for role, path in paths.items():
        _check_official_file(path, info, verify)
        arrays[role] = read_idx(path)
    return arrays


def _check_arrays(arrays, sources):
    """Images (n, 28, 28) uint8 and labels (n,) uint8 in 0..9, consistent."""
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        where = sources[f"x_{split}"]
        if images.ndim == 2 and images.shape[1] == 784:
            images = arrays[f"x_{split}"] = images.reshape(-1, 28, 28)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(
                f"{where}: x_{split} must hold uint8 images of shape (n, 28, 28); "
                f"got {images.dtype} of shape {images.shape}."
            )
        if labels.dtype != np.uint8 or labels.shape != (len(images),):
            raise ValueError(
                f"{sources[f'y_{split}']}: y_{split} must hold {len(images)} uint8 "
                f"labels, one per image; got {labels.dtype} of shape {labels.shape}."
            )
        if labels.size and labels.max() > 9:
            raise ValueError(
                f"{sources[f'y_{split}']}: y_{split} holds the label "
                f"{int(labels.max())}; labels must be 0..9."
            )
    return arrays


# ----------------------------------------------------------------------
# Finding and downloading files
# ----------------------------------------------------------------------
def get_data_home(data_home=None):
    """The folder where skae looks for datasets.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Returned (with ``~`` expanded) when given. Otherwise the
        ``SKAE_DATA`` environment variable when set, else ``~/skae_data``.
        The folder is not created.

    Returns
    -------
    data_home : pathlib.Path

    Examples
    --------
    >>> from skae.datasets import get_data_home
    >>> get_data_home("/data/skae").as_posix()
    '/data/skae'
    """
    if data_home is None:
        data_home = os.environ.get("SKAE_DATA") or Path("~") / "skae_data"
    elif not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(
            f"data_home={data_home!r} must be a folder path (str or path-like) or None."
        )
    return Path(data_home).expanduser()


def _find_idx(folder):
    """Role -> path of the idx files present in ``folder`` (raw preferred)."""
    found = {}
    for role, name in _IDX_NAMES.items():
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
    return found


def _find_files(info, data_home):
    """('npz', path) or ('idx', {role: path}) for the first complete set found."""
    partial = []
    for folder in (data_home, data_home / info.folder):
        npz = folder / f"{info.folder}.npz"
        if npz.is_file():
            return "npz", npz
        idx = _find_idx(folder)
        if len(idx) == len(_ROLES):
            return "idx", idx
        if idx:
            partial.append((folder, idx))
    return None, partial


def _missing_message(info, data_home, partial):
    names = ", ".join(f"{name}.gz" for name in _IDX_NAMES.values())
    message = (
        f"{info.title} was not found in {data_home} or {data_home / info.folder}. "
        f"Put either {info.folder}.npz (arrays x_train, y_train, x_test, y_test) or "
        f"the four official files {names} (gzipped or not) in one of these folders, "
        "point data_home or the SKAE_DATA environment variable at the folder that "
        "holds them, or pass download=True to fetch them."
    )
    for folder, found in partial:
        missing = [_IDX_NAMES[role] for role in _ROLES if role not in found]
        message += f" {folder} holds only part of the idx files; missing: {', '.join(missing)}."
    return message


def _download(info, folder, base_url, verify):
    """Fetch the idx files missing from ``folder`` into it."""
    if base_url is None:
        urls = info.urls
    elif isinstance(base_url, str):
        urls = (base_url,)
    else:
        urls = tuple(base_url) if isinstance(base_url, (list, tuple)) else ()
    if not urls or not all(isinstance(url, str) for url in urls):
        raise TypeError(
            f"base_url={base_url!r} must be a URL (str), a sequence of them, or None "
            "for the official mirrors."
        )
    folder.mkdir(parents=True, exist_ok=True)
    present = _find_idx(folder)
    for role, name in _IDX_NAMES.items():
        if role in present:
            continue
        file_name = f"{name}.gz"
        expected = info.files[file_name] if verify else (None, None)
        failures = []
        for url in urls:
            source = url.rstrip("/") + "/" + file_name
            try:
                _fetch(source, folder / file_name, expected[1], info)
                break
            except (OSError, HTTPException, ValueError) as exc:
                failures.append(exc)
        else:
            errors = "; ".join(str(exc) for exc in failures)
            error_class = ValueError if any(
                isinstance(exc, ValueError) for exc in failures) else OSError
            raise error_class(
                f"Could not download {file_name} from {', '.join(urls)}: {errors}. "
                f"Check the connection, pass base_url= another mirror, or put the "
                f"file in {folder} yourself."
            ) from failures[-1]


def _fetch(url, destination, md5, info):
    """Download ``url`` to ``destination`` atomically, checking its md5 when given."""
    # A unique hidden name in the same folder, so the final rename is atomic;
    # open(..., "xb") rather than mkstemp so the file gets the umask's permissions.
    temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.part")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with open(temporary, "xb") as out, \
                urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            with _progress_bar(total, destination.name) as progress:
                n_received = 0
                for chunk in iter(lambda: response.read(_CHUNK_SIZE), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    n_received += len(chunk)
                    progress.update(len(chunk))
        if total is not None and n_received != total:
            raise OSError(f"{url} sent {n_received} of {total} bytes")
        if md5 is not None and digest.hexdigest() != md5:
            raise ValueError(
                f"{url} has md5 {digest.hexdigest()}, not the published {md5} of the "
                f"official {info.title} file {destination.name}"
            )
        os.replace(temporary, destination)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def update(self, n):
        pass


def _progress_bar(total, name):
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                desc=f"Downloading {name}")


# ----------------------------------------------------------------------
# Public loaders
# ----------------------------------------------------------------------
_LOADER_DOC = """Load {title} (the official 60,000/10,000 train/test split).

    Looks for ``{folder}.npz`` (arrays ``x_train, y_train, x_test, y_test``)
    or the four official idx files ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (each gzipped, with ``.gz``, or not) in
    ``data_home`` and then in ``data_home/{folder}``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder of the data. None means the ``SKAE_DATA`` environment variable
        when set, else ``~/skae_data``.

    return_X_y : bool, default=False
        Return ``(X_train, y_train, X_test, y_test)`` instead of a Bunch.

    download : bool, default=False
        When the files are not found, download the four official ``.gz``
        files into ``data_home/{folder}`` (each checked and then renamed into
        place, so an interrupted download leaves no partial file), showing a
        progress bar when tqdm is installed.

    base_url : str, sequence of str or None, default=None
        Where ``download`` fetches the files: a folder URL holding them, or
        several tried in order. None uses ``{urls_name}``.

    verify : bool, default=True
        Check files against the published md5 checksums: every downloaded
        file, each local idx file whose name and size are those of an
        official file, and each ``.npz`` array of the official shape, when
        skae knows the checksum (all files of Fashion-MNIST; the ``.gz``
        files of MNIST). Files of other sizes (subsets, your own data in
        the same format) are only checked for a well-formed structure,
        which rejects truncated files. False skips every checksum.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        images : ndarray of shape (60000, 28, 28), dtype uint8
            Training images; pixels 0 (background) to 255.
        data : ndarray of shape (60000, 784), dtype uint8
            The same images as flat rows (a view of ``images``).
        target : ndarray of shape (60000,), dtype uint8
            Training labels 0..9.
        images_test, data_test, target_test : ndarray
            The 10,000 test images, rows and labels, alike.
        target_names : ndarray of shape (10,) of str
            Class names{names_note}.
        feature_names : list of str
            ``pixel_<row>_<column>``, the names of ``data``'s columns.
        filenames : list of str
            The files read.
        DESCR : str
            Description of the dataset.

    (X_train, y_train, X_test, y_test) : tuple of ndarray
        When ``return_X_y=True``: uint8 images of shape (n, 28, 28) and uint8
        labels of shape (n,).

    Raises
    ------
    FileNotFoundError
        When no complete set of files is found and ``download=False``; the
        message says which files to put where.
    ValueError
        When a file is damaged: a checksum mismatch, a truncated or malformed
        idx file, arrays of the wrong shape. The message names the file.
    OSError
        When ``download=True`` and no mirror could be reached.

    Notes
    -----
    The train and test splits are kept apart, as published: models are
    compared on the test set, so it should not leak into training or
    validation. The arrays keep the files' uint8 type; skae's estimators
    take uint8 images as they are and scale them to [0, 1] batch by batch.

    Examples
    --------
    >>> from skae.datasets import {function}
    >>> X_train, y_train, X_test, y_test = {function}(
    ...     return_X_y=True)  # doctest: +SKIP
    >>> X_train.shape, X_test.dtype  # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """


def _load(info, data_home, return_X_y, download, base_url, verify):
    data_home = get_data_home(data_home)
    kind, found = _find_files(info, data_home)
    if kind is None and download:
        _download(info, data_home / info.folder, base_url, verify)
        kind, found = _find_files(info, data_home)
    if kind is None:
        raise FileNotFoundError(_missing_message(info, data_home, found))
    if kind == "npz":
        arrays = _load_npz(found, info, verify)
        sources = dict.fromkeys(_ROLES, found)
        filenames = [str(found)]
    else:
        arrays = _load_idx_files(found, info, verify)
        sources = found
        filenames = [str(found[role]) for role in _ROLES]
    arrays = _check_arrays(arrays, sources)
    if return_X_y:
        return tuple(arrays[role] for role in _ROLES)
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    return Bunch(
        images=x_train,
        data=x_train.reshape(len(x_train), -1),
        target=arrays["y_train"],
        images_test=x_test,
        data_test=x_test.reshape(len(x_test), -1),
        target_test=arrays["y_test"],
        target_names=np.asarray(info.target_names),
        feature_names=[f"pixel_{row}_{column}" for row in range(28) for column in range(28)],
        filenames=filenames,
        DESCR=info.descr,
    )


def load_fashion_mnist(data_home=None, *, return_X_y=False, download=False,
                       base_url=None, verify=True):
    return _load(_FASHION_MNIST, data_home, return_X_y, download, base_url, verify)


def load_mnist(data_home=None, *, return_X_y=False, download=False,
               base_url=None, verify=True):
    return _load(_MNIST, data_home, return_X_y, download, base_url, verify)


load_fashion_mnist.__doc__ = _LOADER_DOC.format(
    title="Fashion-MNIST", folder="fashion_mnist", urls_name="FASHION_MNIST_URLS",
    function="load_fashion_mnist",
    names_note=": T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, "
               "Sneaker, Bag, Ankle boot",
)
load_mnist.__doc__ = _LOADER_DOC.format(
    title="MNIST", folder="mnist", urls_name="MNIST_URLS", function="load_mnist",
    names_note=', the digits "0" to "9"',
)
