"""Saving and loading fitted estimators in a format that never runs code.

Pickle and joblib files can run arbitrary code when loaded, so they must only
be loaded from trusted sources. :func:`save` and :func:`load` write and read
a single `safetensors <https://huggingface.co/docs/safetensors>`_ file
instead:

- the tensors are the network's ``state_dict`` (weights and buffers such as
  BatchNorm statistics), stored on the CPU;
- the file's metadata holds one entry, ``"skae"``: a JSON document with the
  format version, the versions of skae and torch that wrote it, the
  estimator's class name, its parameters (``get_params``), the learned
  attributes needed to rebuild it (``n_features_in_``, ``input_shape_``,
  ``output_activation_`` or ``likelihood_``, the data range, ``loss_curve_``,
  ``n_iter_``, ...) and the per-epoch training history (without per-batch
  entries).

Loading reads only JSON and tensors: it creates the estimator from the saved
parameters, rebuilds the network, checks every tensor's name, shape and dtype
against it before reading any tensor data, and loads the weights strictly. A
file that does not match gets a ``ValueError``.

This module knows the estimators only through two methods of their base class,
``_get_persistent_state`` and ``_from_persistent_state``, and through the
classes that ``skae/__init__.py`` registers with :func:`register_estimator`;
it imports none of them, so the imports run one way.
"""

import json
import math
import os
import re
import tempfile
import warnings
from numbers import Integral, Real

import numpy as np
import torch

from ._runtime import resolve_device

FORMAT_NAME = "skae.model"
# Bump when the layout changes so that older skae versions refuse newer files.
FORMAT_VERSION = 1
METADATA_KEY = "skae"

_TAGS = ("__tuple__", "__ndarray__", "__float__")
_ARRAY_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "float16", "float32", "float64", "object",
}
# Learned attributes every fitted skae estimator has.
_REQUIRED_ATTRIBUTES = ("n_features_in_", "input_shape_", "_sample_shape",
                        "_fitted_on_uint8", "n_iter_")
# Learned choices among fixed options; anything else means a tampered file.
_ATTRIBUTE_OPTIONS = {"output_activation_": {"identity", "clip", "sigmoid"},
                      "likelihood_": {"bernoulli", "gaussian"}}


def _import_safetensors():
    try:
        import safetensors
        import safetensors.torch
    except ImportError as exc:
        raise ImportError(
            "Saving and loading skae models needs the safetensors package: "
            "pip install skae[safe] (or pip install safetensors)."
        ) from exc
    return safetensors


# The classes save and load accept, by name; skae/__init__.py fills it.
_ESTIMATORS = {}


def register_estimator(cls):
    """Let :func:`save` and :func:`load` handle ``cls``, a subclass of skae's base."""
    _ESTIMATORS[cls.__name__] = cls
    return cls


def _skae_version():
    from . import __version__

    return __version__


# ----------------------------------------------------------------------
# JSON encoding of parameters and attributes
# ----------------------------------------------------------------------
def _encode(value, name):
    """Plain JSON for ``value``; tuples, arrays and non-finite floats tagged."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic) and not isinstance(value, (np.void, np.object_)):
        value = value.item()
        if isinstance(value, (bytes, complex)):
            raise TypeError(f"{name}={value!r} cannot be written as JSON.")
    if isinstance(value, bool):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{name}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        if any(k in _TAGS for k in value):
            raise TypeError(f"{name} uses a key reserved by skae's file format.")
        return {k: _encode(v, f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.name in _ARRAY_DTYPES:
        if value.dtype == object and not all(isinstance(v, str) for v in value.flat):
            raise TypeError(f"{name} is an object array that does not hold only strings.")
        data = value.ravel().tolist()
        if value.dtype.kind == "f":
            data = [_encode(v, name) for v in data]
        return {"__ndarray__": {"dtype": value.dtype.name, "shape": list(value.shape),
                                "data": data}}
    raise TypeError(
        f"{name}={value!r} cannot be saved: skae's file format stores only None, "
        "bool, int, float, str, tuples, lists, dicts and numeric or string arrays, "
        "so that loading a file never runs code."
    )


def _decode(value):
    """Inverse of :func:`_encode`; raises ValueError on anything malformed."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)) in _TAGS:
        tag, content = next(iter(value.items()))
        if tag == "__tuple__" and isinstance(content, list):
            return tuple(_decode(v) for v in content)
        if tag == "__float__" and content in ("nan", "inf", "-inf"):
            return float(content)
        if tag == "__ndarray__":
            return _decode_array(content)
        raise ValueError(f"malformed {tag} entry: {content!r:.80}")
    return {k: _decode(v) for k, v in value.items()}


def _decode_array(content):
    if not (isinstance(content, dict) and set(content) == {"dtype", "shape", "data"}
            and content["dtype"] in _ARRAY_DTYPES
            and isinstance(content["shape"], list) and isinstance(content["data"], list)
            and all(isinstance(n, int) and n >= 0 for n in content["shape"])):
        raise ValueError(f"malformed array entry: {content!r:.80}")
    data = [_decode(v) for v in content["data"]]
    if math.prod(content["shape"]) != len(data):
        raise ValueError(f"array entry of shape {content['shape']} holds {len(data)} values")
    if content["dtype"] == "object":
        if not all(isinstance(v, str) for v in data):
            raise ValueError("an object array entry may hold only strings")
    elif not all(isinstance(v, (bool, int, float)) for v in data):
        raise ValueError(f"a {content['dtype']} array entry holds non-numbers")
    array = np.empty(len(data), dtype=content["dtype"])
    try:
        array[:] = data
    except (OverflowError, TypeError, ValueError):
        raise ValueError(f"a {content['dtype']} array entry holds values out of its "
                         "range") from None
    return array.reshape(content["shape"])


# ----------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------
def _epoch_history(history):
    """Per-epoch history rows, keeping plain values and dropping per-batch entries."""
    rows = []
    for row in history:
        rows.append({
            key: value for key, value in row.items()
            if key != "batches" and (value is None or isinstance(value, (bool, str, Real)))
        })
    return rows


def save(estimator, path):
    """Write a fitted skae estimator to ``path`` as one safetensors file.

    Parameters
    ----------
    estimator : AutoencoderTransformer, DenoisingAutoencoder or VAETransformer
        A fitted estimator whose parameters are plain values (no callables,
        callbacks or ``RandomState`` instances).
    path : str or os.PathLike
        File to write; replaced atomically, so an interrupted save never
        leaves a half-written file at ``path``.

    Raises
    ------
    TypeError
        If a parameter or attribute cannot be written as JSON.
    """
    safetensors = _import_safetensors()
    classes = _ESTIMATORS
    class_name = type(estimator).__name__
    if classes.get(class_name) is not type(estimator):
        raise TypeError(
            f"save supports {sorted(classes)}, not {type(estimator).__qualname__}; "
            "pickle or joblib.dump other estimators (and load only trusted pickles)."
        )
    state, tensors = estimator._get_persistent_state()
    if state["attributes"].get("_table") is not None:
        raise TypeError(
            f"This {class_name} was fitted on a mixed table, whose encoding (scikit-learn "
            "transformers) safetensors cannot hold; pickle or joblib.dump it instead "
            "(and load only trusted pickles)."
        )
    encoded_params = {}
    for name, value in state["params"].items():
        try:
            encoded_params[name] = _encode(value, name)
        except TypeError as exc:
            raise TypeError(
                f"Cannot save {class_name}: parameter {exc} Set a plain value with "
                f"set_params({name}=...) first, or use pickle/joblib instead."
            ) from None
    encoded_attributes = {}
    for name, value in state["attributes"].items():
        try:
            encoded_attributes[name] = _encode(value, name)
        except TypeError as exc:
            raise TypeError(f"Cannot save {class_name}: attribute {exc}") from None
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skae_version": _skae_version(),
        "torch_version": torch.__version__,
        "estimator": class_name,
        "params": encoded_params,
        "attributes": encoded_attributes,
        "history": [_encode(row, "history") for row in _epoch_history(state["history"])],
    }
    payload = safetensors.torch.save(
        tensors, metadata={METADATA_KEY: json.dumps(config, allow_nan=False)})
    _write_atomically(os.fspath(path), payload)


def _write_atomically(path, payload):
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".skae-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


# ----------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------
def load(path, device=None):
    """Load an estimator written by ``est.save(path)``; never runs code from the file.

    The file is one safetensors file: the network's tensors plus a JSON
    document (metadata entry ``"skae"``) with the format version, the skae
    and torch versions that wrote it, the estimator's class name and
    parameters, the learned attributes and the per-epoch training history.
    The estimator is rebuilt from its parameters and attributes, every
    tensor's name, shape and dtype is checked against the rebuilt network
    before any tensor data is read, and the weights are loaded strictly.

    Parameters
    ----------
    path : str or os.PathLike
        File written by :meth:`save`.
    device : str or None, default=None
        torch device for the network. None uses the saved ``device``
        parameter when it is available here and the CPU otherwise (with a
        warning), so a model trained on a GPU loads on a CPU-only machine.

    Returns
    -------
    estimator : AutoencoderTransformer, DenoisingAutoencoder or VAETransformer
        The fitted estimator; ``transform`` gives the same codes as before
        saving, and ``net_.history`` holds the per-epoch history.

    Raises
    ------
    ValueError
        If the file is not a skae model, was written by a newer major
        version of skae, or its parameters, attributes or tensors do not
        describe a model skae can rebuild.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> import skae
    >>> X = load_digits().data[:200] / 16.0
    >>> ae = skae.AutoencoderTransformer(n_components=2, hidden_layer_sizes=(16,),
    ...                                  max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "digits.safetensors")
    ...     ae.save(path)
    ...     loaded = skae.load(path)
    >>> np.array_equal(loaded.transform(X), ae.transform(X))
    True
    """
    safetensors = _import_safetensors()
    path = os.fspath(path)
    try:
        handle = safetensors.safe_open(path, framework="pt", device="cpu")
    except safetensors.SafetensorError as exc:
        raise ValueError(f"{path!r} is not a readable safetensors file: {exc}.") from exc
    with handle as file:
        config = _read_config(file.metadata(), path)
        cls, state = _read_state(config, path)
        device = _resolve_load_device(cls, state["params"], device, path)

        def read_tensors(expected):
            _check_tensor_headers(file, expected)
            tensors = {name: file.get_tensor(name) for name in expected}
            _check_tensor_values(tensors, expected)
            return tensors

        try:
            return cls._from_persistent_state(state, read_tensors, device)
        except ValueError as exc:
            raise ValueError(f"{path!r}: {exc}") from None


def _read_config(metadata, path):
    if not metadata or METADATA_KEY not in metadata:
        raise ValueError(
            f"{path!r} is a safetensors file without skae's metadata; it was not "
            "written by est.save."
        )
    try:
        config = json.loads(metadata[METADATA_KEY])
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path!r} holds malformed skae metadata (bad JSON): {exc}.") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ValueError(f"{path!r} holds metadata that is not a skae model description.")
    required = {"format_version", "skae_version", "torch_version", "estimator",
                "params", "attributes", "history"}
    missing = sorted(required - set(config))
    if missing:
        raise ValueError(f"{path!r}: skae metadata lacks the entries {missing}.")
    _check_versions(config, path)
    return config


def _release(value, what, path):
    """Release numbers of a version string: ``"2.13.0+cpu"`` gives (2, 13, 0)."""
    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(value))
    if match is None:
        raise ValueError(f"{path!r}: {what} version {value!r} is not a version.")
    return tuple(int(part or 0) for part in match.groups())


def _check_versions(config, path):
    format_version = config["format_version"]
    if not isinstance(format_version, int) or format_version < 1:
        raise ValueError(f"{path!r}: format_version={format_version!r} is not valid.")
    saved = _release(config["skae_version"], "skae", path)
    current = _release(_skae_version(), "skae", path)
    if format_version > FORMAT_VERSION or saved[0] > current[0]:
        raise ValueError(
            f"{path!r} was written by skae {config['skae_version']} (file format "
            f"{format_version}); this skae {_skae_version()} reads formats up to "
            f"{FORMAT_VERSION}. Upgrade skae to load it."
        )
    if saved > current:
        warnings.warn(
            f"{path!r} was written by skae {config['skae_version']}, newer than this "
            f"skae {_skae_version()}; if loading fails or the model misbehaves, "
            "upgrade skae.",
            UserWarning,
        )
    saved_torch = _release(config["torch_version"], "torch", path)
    if saved_torch[0] != _release(torch.__version__, "torch", path)[0]:
        warnings.warn(
            f"{path!r} was written with torch {config['torch_version']} and is loaded "
            f"with torch {torch.__version__}; check that transform gives the codes "
            "you expect.",
            UserWarning,
        )


def _read_state(config, path):
    """The estimator class and its decoded, checked parameters, attributes and history."""
    classes = _ESTIMATORS
    class_name = config["estimator"]
    if class_name not in classes:
        raise ValueError(
            f"{path!r} holds an unknown estimator class {class_name!r}; skae can load "
            f"{sorted(classes)}."
        )
    cls = classes[class_name]
    params, attributes = config["params"], config["attributes"]
    if not isinstance(params, dict) or not isinstance(attributes, dict):
        raise ValueError(f"{path!r}: 'params' and 'attributes' must be JSON objects.")
    try:
        params = {name: _decode(value) for name, value in params.items()}
        attributes = {name: _decode(value) for name, value in attributes.items()}
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path!r} holds a malformed value: {exc}.") from None
    param_names = set(cls._get_param_names())
    _upgrade_version_0_1(params, attributes)
    unknown = sorted(set(params) - param_names)
    if unknown:
        raise ValueError(
            f"{path!r} gives {class_name} unknown parameters {unknown}; it may come "
            "from another skae version."
        )
    _check_attributes(cls, attributes, param_names, path)
    history = config["history"]
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise ValueError(f"{path!r}: 'history' must be a list of JSON objects.")
    try:
        history = [_decode(row) for row in history]
    except ValueError as exc:
        raise ValueError(f"{path!r} holds a malformed history: {exc}.") from None
    return cls, {"params": params, "attributes": attributes, "history": history}


def _upgrade_version_0_1(params, attributes):
    """Fill in what files written before the PCA start (skae 0.1) lack.

    Their networks had no linear path (``init="random"``) and their
    parameters held the values the learned ``*_`` attributes now record.
    """
    if "init" in params:
        return
    params["init"] = "random"
    for param, attribute in (("n_components", "n_components_"),
                             ("hidden_layer_sizes", "hidden_layer_sizes_"),
                             ("batch_size", "batch_size_"),
                             ("early_stopping", "early_stopping_")):
        if param in params and attribute not in attributes:
            value = params[param]
            attributes[attribute] = tuple(value) if isinstance(value, list) else value


def _is_shape(value):
    return isinstance(value, tuple) and len(value) > 0 and all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value)


def _check_attributes(cls, attributes, param_names, path):
    for name in attributes:
        if (not isinstance(name, str) or not name.isidentifier() or name.startswith("__")
                or not (name.startswith("_") or name.endswith("_"))
                or name in param_names or name == "net_" or hasattr(cls, name)):
            raise ValueError(f"{path!r} holds a forbidden attribute name {name!r}.")
    missing = [name for name in _REQUIRED_ATTRIBUTES if name not in attributes]
    if missing:
        raise ValueError(f"{path!r} lacks the learned attributes {missing}.")
    n_features = attributes["n_features_in_"]
    problems = []
    if not (isinstance(n_features, int) and not isinstance(n_features, bool)
            and n_features > 0):
        problems.append(f"n_features_in_={n_features!r} is not a positive int")
    elif not _is_shape(attributes["input_shape_"]) \
            or math.prod(attributes["input_shape_"]) != n_features:
        problems.append(f"input_shape_={attributes['input_shape_']!r} does not hold "
                        f"{n_features} features")
    else:
        sample_shape = attributes["_sample_shape"]
        if sample_shape is not None and (not _is_shape(sample_shape)
                                         or math.prod(sample_shape) != n_features):
            problems.append(f"_sample_shape={sample_shape!r} does not hold "
                            f"{n_features} features")
        names = attributes.get("feature_names_in_")
        if names is not None and not (isinstance(names, np.ndarray) and names.dtype == object
                                      and names.shape == (n_features,)):
            problems.append("feature_names_in_ is not an array of one name per feature")
    for name, options in _ATTRIBUTE_OPTIONS.items():
        if name in attributes and attributes[name] not in options:
            problems.append(f"{name}={attributes[name]!r} is not one of {sorted(options)}")
    if not isinstance(attributes["_fitted_on_uint8"], bool):
        problems.append("_fitted_on_uint8 is not a bool")
    n_iter = attributes["n_iter_"]
    if not (isinstance(n_iter, int) and not isinstance(n_iter, bool) and n_iter >= 0):
        problems.append(f"n_iter_={n_iter!r} is not a non-negative int")
    if problems:
        raise ValueError(f"{path!r} holds inconsistent attributes: {'; '.join(problems)}.")


def _check_tensor_headers(file, expected):
    names = set(file.keys())
    missing = sorted(set(expected) - names)
    unexpected = sorted(names - set(expected))
    if missing or unexpected:
        raise ValueError(
            "the file holds weights of another architecture: missing tensors "
            f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected tensors "
            f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}."
        )
    for name, reference in expected.items():
        shape = tuple(file.get_slice(name).get_shape())
        if shape != tuple(reference.shape):
            raise ValueError(
                f"tensor {name!r} has shape {shape} but the network built "
                f"from the saved parameters needs {tuple(reference.shape)}."
            )


def _check_tensor_values(tensors, expected):
    for name, reference in expected.items():
        tensor = tensors[name]
        if tensor.dtype != reference.dtype:
            raise ValueError(
                f"tensor {name!r} has dtype {tensor.dtype} but the network "
                f"needs {reference.dtype}."
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"tensor {name!r} holds NaN or infinite values.")


def _resolve_load_device(cls, params, device, path):
    if device is not None:
        return resolve_device(device)
    saved = params.get("device", cls().device)
    try:
        return resolve_device(saved)
    except ValueError:
        warnings.warn(
            f"{path!r} was saved with device={saved!r}, which is not "
            "available here; loading on the CPU.",
            UserWarning,
        )
        return "cpu"
