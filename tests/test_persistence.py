"""Saving and loading: pickle, joblib, the safe format, devices, tampered files."""

import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import safetensors
import safetensors.torch
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback
from skorch.exceptions import DeviceWarning

import skae
from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer

ESTIMATORS = [AutoencoderTransformer, DenoisingAutoencoder, VAETransformer]
SMALL = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=2, batch_size=64,
             device="cpu", n_threads=1, random_state=0)


@pytest.fixture(scope="module")
def table(digits_split):
    """160 rows of digits as a DataFrame with named columns."""
    X = digits_split[0][:160]
    return pd.DataFrame(X, columns=[f"pixel_{i}" for i in range(X.shape[1])])


@pytest.fixture(scope="module")
def images(digits_split):
    """160 digits as uint8 images of shape (8, 8)."""
    return np.rint(digits_split[0][:160] * 255).astype(np.uint8).reshape(-1, 8, 8)


def _fit(cls, X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(**{**SMALL, **params}).fit(X)


# Options whose learned state must survive saving: the clip bounds and noise
# of the denoiser, the VAE's fixed Gaussian scale (a buffer, not a parameter).
EXTRA = {DenoisingAutoencoder: dict(clip=True, noise="salt_and_pepper"),
         VAETransformer: dict(likelihood="gaussian", gaussian_scale=0.5, kl_warmup=2)}


@pytest.fixture(scope="module")
def fitted(table):
    """One fitted MLP model per class (with BatchNorm, so buffers are saved too)."""
    return {cls: _fit(cls, table, batch_norm=True, **EXTRA.get(cls, {}))
            for cls in ESTIMATORS}


@pytest.fixture(scope="module")
def fitted_conv(images):
    return {cls: _fit(cls, images, architecture="conv", conv_channels=(4, 4),
                      n_components=3) for cls in ESTIMATORS}


def _outputs(est, X):
    """Everything a fitted model computes deterministically from X."""
    codes = est.transform(X)
    return {"codes": codes, "decoded": est.inverse_transform(codes),
            "scores": est.score_samples(X)}


def _assert_same_outputs(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ----------------------------------------------------------------------
# pickle and joblib
# ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_pickle_and_joblib_round_trips_keep_codes(cls, fitted, table, tmp_path):
    est = fitted[cls]
    expected = _outputs(est, table)
    from_pickle = pickle.loads(pickle.dumps(est))
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    from_joblib = joblib.load(path)
    for loaded in (from_pickle, from_joblib):
        _assert_same_outputs(_outputs(loaded, table), expected)
        assert loaded.get_params() == est.get_params()
        assert loaded.n_iter_ == est.n_iter_
        assert loaded.loss_curve_ == est.loss_curve_


def test_round_trips_keep_codes_in_a_fresh_process(fitted, fitted_conv, table, images,
                                                   tmp_path):
    """pickle, joblib and est.save files load in a new interpreter with identical codes."""
    models = {f"{cls.__name__}_mlp": (fitted[cls], table) for cls in ESTIMATORS}
    models["AutoencoderTransformer_conv"] = (fitted_conv[AutoencoderTransformer], images)
    for name, (est, X) in models.items():
        with open(tmp_path / f"{name}.pkl", "wb") as file:
            pickle.dump(est, file)
        joblib.dump(est, tmp_path / f"{name}.joblib")
        est.save(tmp_path / f"{name}.safetensors")
        pd.to_pickle(X, tmp_path / f"{name}.X.pkl")
    script = textwrap.dedent("""
        import pickle, sys, joblib, numpy as np, pandas as pd, skae
        folder, names = sys.argv[1], sys.argv[2:]
        codes = {}
        for name in names:
            X = pd.read_pickle(f"{folder}/{name}.X.pkl")
            with open(f"{folder}/{name}.pkl", "rb") as file:
                codes[name + ".pkl"] = pickle.load(file).transform(X)
            codes[name + ".joblib"] = joblib.load(f"{folder}/{name}.joblib").transform(X)
            codes[name + ".safetensors"] = skae.load(f"{folder}/{name}.safetensors").transform(X)
        np.savez(f"{folder}/codes.npz", **codes)
    """)
    subprocess.run([sys.executable, "-c", script, str(tmp_path), *models],
                   check=True, timeout=120, capture_output=True)
    with np.load(tmp_path / "codes.npz") as codes:
        assert len(codes.files) == 3 * len(models)
        for name, (est, X) in models.items():
            expected = est.transform(X)
            for suffix in (".pkl", ".joblib", ".safetensors"):
                np.testing.assert_array_equal(codes[name + suffix], expected,
                                              err_msg=name + suffix)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_model_pickled_on_cuda_loads_on_cpu(cls, fitted, table):
    """skorch maps a CUDA net to the CPU when unpickled where CUDA is missing.

    A CUDA fit is mocked: the net of a CPU fit is marked as living on "cuda"
    before pickling, which is what skorch reads when unpickling.
    """
    est = pickle.loads(pickle.dumps(fitted[cls]))
    est.net_.device = "cuda"
    payload = pickle.dumps(est)
    with pytest.warns(DeviceWarning) as caught:
        loaded = pickle.loads(payload)
    assert any("no CUDA devices are available" in str(w.message) for w in caught)
    assert torch.device(loaded.net_.device).type == "cpu"
    assert all(p.device.type == "cpu" for p in loaded.net_.module_.parameters())
    _assert_same_outputs(_outputs(loaded, table), _outputs(fitted[cls], table))


# ----------------------------------------------------------------------
# The safe format: est.save / skae.load
# ----------------------------------------------------------------------
def _learned_state(est):
    return {k: v for k, v in vars(est).items() if k != "net_"}


def _assert_same_state(a, b):
    state_a, state_b = _learned_state(a), _learned_state(b)
    assert state_a.keys() == state_b.keys()
    for key, value in state_a.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, state_b[key])
        else:
            assert value == state_b[key], key
            assert type(value) is type(state_b[key]), key


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_save_load_round_trip(cls, kind, fitted, fitted_conv, table, images, tmp_path):
    est, X = (fitted[cls], table) if kind == "mlp" else (fitted_conv[cls], images)
    path = tmp_path / "model.safetensors"
    est.save(path)
    loaded = skae.load(path)
    assert type(loaded) is cls
    _assert_same_outputs(_outputs(loaded, X), _outputs(est, X))
    # Parameters keep their types (tuples stay tuples), learned attributes
    # (feature names, data range, output activation or likelihood, uint8
    # flag, image shape) are all restored.
    _assert_same_state(loaded, est)
    assert loaded.net_.device == "cpu"
    saved_rows = [{k: v for k, v in row.items() if k != "batches"} for row in est.net_.history]
    assert list(loaded.net_.history) == saved_rows
    # A model fitted on uint8 images still gives uint8 images back.
    assert loaded.inverse_transform(loaded.transform(X)).dtype == est.inverse_transform(
        est.transform(X)).dtype


def test_loaded_models_keep_their_extra_methods(fitted, table, tmp_path):
    dae, vae = fitted[DenoisingAutoencoder], fitted[VAETransformer]
    dae.save(tmp_path / "dae")
    vae.save(tmp_path / "vae")
    dae_loaded, vae_loaded = skae.load(tmp_path / "dae"), skae.load(tmp_path / "vae")
    np.testing.assert_array_equal(dae_loaded.denoise(table), dae.denoise(table))
    np.testing.assert_array_equal(vae_loaded.sample(5, random_state=3),
                                  vae.sample(5, random_state=3))
    # Feature names are still checked.
    with pytest.raises(ValueError, match="feature names"):
        dae_loaded.transform(table.rename(columns={"pixel_0": "other"}))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_loaded_model_refits_like_a_fresh_one(cls, fitted, table, tmp_path):
    fitted[cls].save(tmp_path / "model")
    loaded = skae.load(tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = loaded.fit(table)
        fresh = clone(fitted[cls]).fit(table)
    np.testing.assert_array_equal(refit.transform(table), fresh.transform(table))


def test_save_keeps_set_output(table, tmp_path):
    est = _fit(AutoencoderTransformer, table).set_output(transform="pandas")
    est.save(tmp_path / "model")
    codes = skae.load(tmp_path / "model").transform(table)
    assert isinstance(codes, pd.DataFrame)
    assert list(codes.columns) == ["autoencodertransformer0", "autoencodertransformer1"]


def test_load_maps_an_unavailable_device_to_the_cpu(fitted, table, tmp_path):
    est = pickle.loads(pickle.dumps(fitted[AutoencoderTransformer]))
    est.set_params(device="cuda:3")  # as if it had been trained there
    est.save(tmp_path / "model")
    if torch.cuda.device_count() > 3:
        pytest.skip("this machine has a cuda:3")
    with pytest.warns(UserWarning, match="not available here; loading on the CPU"):
        loaded = skae.load(tmp_path / "model")
    assert loaded.device == "cuda:3"  # the parameter is kept as saved
    assert loaded.net_.device == "cpu"
    np.testing.assert_array_equal(loaded.transform(table), est.transform(table))
    explicit = skae.load(tmp_path / "model", device="cpu")
    np.testing.assert_array_equal(explicit.transform(table), est.transform(table))


def test_load_leaves_torch_random_state_alone(fitted, tmp_path):
    fitted[VAETransformer].save(tmp_path / "model")
    before = torch.get_rng_state()
    skae.load(tmp_path / "model")
    assert torch.equal(torch.get_rng_state(), before)


def test_save_replaces_the_file_atomically(fitted, tmp_path, monkeypatch):
    path = tmp_path / "model"
    fitted[AutoencoderTransformer].save(path)
    original = path.read_bytes()

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        fitted[VAETransformer].save(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["model"]


class _Noise:
    def __call__(self, X, generator):
        return X


@pytest.mark.parametrize("params, name", [
    (dict(callbacks=[Callback()]), "callbacks"),
    (dict(random_state=np.random.RandomState(0)), "random_state"),
])
def test_save_rejects_parameters_that_are_not_plain_values(params, name, table, tmp_path):
    est = _fit(AutoencoderTransformer, table, **params)
    with pytest.raises(TypeError, match=rf"Cannot save AutoencoderTransformer: parameter "
                                        rf"{name}\b.*set_params\({name}=\.\.\.\)"):
        est.save(tmp_path / "model")
    assert not os.listdir(tmp_path)


def test_save_rejects_a_callable_noise(table, tmp_path):
    est = _fit(DenoisingAutoencoder, table, noise=_Noise())
    with pytest.raises(TypeError, match="parameter noise=.*loading a file never runs code"):
        est.save(tmp_path / "model")


def test_save_needs_a_fitted_skae_estimator(tmp_path):
    with pytest.raises(NotFittedError):
        AutoencoderTransformer().save(tmp_path / "model")

    class Custom(AutoencoderTransformer):
        pass

    with pytest.raises(TypeError, match="save supports"):
        Custom().save(tmp_path / "model")


def test_missing_safetensors_says_what_to_install(fitted, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(ImportError, match=r"pip install skae\[safe\]"):
        fitted[AutoencoderTransformer].save(tmp_path / "model")
    with pytest.raises(ImportError, match=r"pip install skae\[safe\]"):
        skae.load(tmp_path / "model")


# ----------------------------------------------------------------------
# Tampered and foreign files
# ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """Path of a saved VAETransformer, its config and its tensors."""
    path = tmp_path_factory.mktemp("saved") / "vae.safetensors"
    fitted[VAETransformer].save(path)
    with safetensors.safe_open(path, "pt") as file:
        config = json.loads(file.metadata()["skae"])
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    return path, config, tensors


def _write(path, config, tensors, raw_metadata=None):
    metadata = {"skae": raw_metadata if raw_metadata is not None else json.dumps(config)}
    safetensors.torch.save_file(tensors, path, metadata=metadata)
    return path


def _edited(saved, tmp_path, edit):
    """A copy of the saved file after ``edit(config, tensors)``."""
    _, config, tensors = saved
    config = json.loads(json.dumps(config))
    tensors = dict(tensors)
    edit(config, tensors)
    return _write(tmp_path / "edited.safetensors", config, tensors)


def test_the_unchanged_copy_loads(saved, tmp_path):
    path = _edited(saved, tmp_path, lambda config, tensors: None)
    assert isinstance(skae.load(path), VAETransformer)


def test_a_file_of_version_0_1_loads_as_a_random_start(table, tmp_path):
    """Files written before the PCA start: no ``init``, no resolved attributes."""
    est = _fit(VAETransformer, table, init="random", hidden_layer_sizes=(8,),
               batch_size=32, early_stopping=False)
    est.save(tmp_path / "new.safetensors")
    with safetensors.safe_open(tmp_path / "new.safetensors", "pt") as file:
        config = json.loads(file.metadata()["skae"])
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    del config["params"]["init"]
    for name in ("n_components_", "hidden_layer_sizes_", "batch_size_", "early_stopping_"):
        del config["attributes"][name]
    loaded = skae.load(_write(tmp_path / "old.safetensors", config, tensors))
    assert loaded.init == "random" and loaded.hidden_layer_sizes_ == (8,)
    np.testing.assert_array_equal(loaded.transform(table), est.transform(table))


def _set(*keys, value):
    def edit(config, tensors):
        target = config
        for key in keys[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return edit


_DELETE = object()


def _first_weight(tensors):
    return next(name for name in tensors if name.endswith("weight"))


def _resize_first_weight(config, tensors):
    name = _first_weight(tensors)
    tensors[name] = torch.zeros(tensors[name].shape[0], tensors[name].shape[1] + 1)


def _drop_first_weight(config, tensors):
    del tensors[_first_weight(tensors)]


def _add_tensor(config, tensors):
    tensors["extra.weight"] = torch.zeros(2)


def _as_float64(config, tensors):
    name = _first_weight(tensors)
    tensors[name] = tensors[name].double()


def _nan_weight(config, tensors):
    name = _first_weight(tensors)
    tensors[name] = tensors[name].clone()
    tensors[name][0, 0] = float("nan")


def _huge_network(config, tensors):
    del config["attributes"]["feature_names_in_"]
    config["attributes"]["n_features_in_"] = 10**12
    config["attributes"]["input_shape_"] = {"__tuple__": [10**12]}


@pytest.mark.parametrize("edit, message", [
    (_set("estimator", value="os.system"), "unknown estimator class 'os.system'"),
    (_set("format", value="pickle"), "not a skae model description"),
    (_set("params", value=[1, 2]), "must be JSON objects"),
    (_set("params", "shell", value="rm -rf /"), r"unknown parameters \['shell'\]"),
    (_set("params", "n_components", value=-1), "invalid parameters.*n_components"),
    (_set("params", "hidden_layer_sizes", value={"__tuple__": [4]}),
     "hidden_layer_sizes_=.* disagrees with hidden_layer_sizes"),
    (_set("attributes", "hidden_layer_sizes_", value={"__tuple__": [4]}),
     "hidden_layer_sizes_=\\(4,\\) disagrees with hidden_layer_sizes=\\(8,\\)"),
    (_set("params", "beta", value={"__float__": "1e309"}), "malformed __float__"),
    (_set("attributes", "_build_module", value="x"), "forbidden attribute name"),
    (_set("attributes", "__class__", value="x"), "forbidden attribute name"),
    (_set("attributes", "n_features_in_", value=_DELETE), r"lacks the learned attributes"),
    (_set("attributes", "n_features_in_", value=63), "inconsistent attributes"),
    (_set("attributes", "n_features_in_", value="64"), "inconsistent attributes"),
    (_set("attributes", "_sample_shape", value={"__tuple__": [2, 2]}),
     "inconsistent attributes"),
    (_set("attributes", "likelihood_", value="poisson"), "likelihood_='poisson' is not one"),
    (_set("attributes", "likelihood_", value=_DELETE), "network skae can build"),
    (_set("attributes", "feature_names_in_", value={"__ndarray__": {
        "dtype": "object", "shape": [1], "data": [1]}}), "malformed value"),
    (_set("attributes", "feature_names_in_", value={"__ndarray__": {
        "dtype": "V8", "shape": [1], "data": ["x"]}}), "malformed value"),
    (_set("attributes", "extra_", value={"__ndarray__": {
        "dtype": "int8", "shape": [1], "data": [1000]}}), "malformed value.*out of its range"),
    (_set("history", value="x"), "'history' must be a list"),
    (_set("skae_version", value=_DELETE), "lacks the entries"),
    (_set("skae_version", value="nonsense version"), "is not a version"),
    (_set("skae_version", value="99.0"), "Upgrade skae"),
    (_set("format_version", value=99), "Upgrade skae"),
    (_huge_network, "shape"),
    (_resize_first_weight, "has shape"),
    (_drop_first_weight, "another architecture: missing tensors"),
    (_add_tensor, r"unexpected tensors \['extra.weight'\]"),
    (_as_float64, "dtype"),
    (_nan_weight, "NaN"),
])
def test_tampered_files_get_a_clear_value_error(saved, tmp_path, edit, message):
    path = _edited(saved, tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        skae.load(path)


def test_weights_of_another_architecture_are_rejected(fitted, table, saved, tmp_path):
    _, config, _ = saved
    other = _fit(VAETransformer, table, hidden_layer_sizes=(4, 3))
    other.save(tmp_path / "other")
    with safetensors.safe_open(tmp_path / "other", "pt") as file:
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    path = _write(tmp_path / "mixed", config, tensors)
    with pytest.raises(ValueError, match="weights of another architecture"):
        skae.load(path)


@pytest.mark.parametrize("raw, message", [
    ("{not json", "bad JSON"),
    ("[" * 100_000 + "]" * 100_000, "bad JSON"),
    ('"just a string"', "not a skae model description"),
])
def test_malformed_metadata_gets_a_clear_value_error(saved, tmp_path, raw, message):
    _, config, tensors = saved
    path = _write(tmp_path / "bad", config, tensors, raw_metadata=raw)
    with pytest.raises(ValueError, match=message):
        skae.load(path)


def test_files_that_are_not_skae_models(saved, tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x80\x04\x95 this is a pickle, not a model")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        skae.load(garbage)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(saved[0].read_bytes()[:-10])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        skae.load(truncated)
    plain = tmp_path / "plain"
    safetensors.torch.save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="without skae's metadata"):
        skae.load(plain)
    with pytest.raises(FileNotFoundError):
        skae.load(tmp_path / "missing")


def test_version_differences_warn(saved, tmp_path):
    newer_minor = _edited(saved, tmp_path, _set("skae_version", value="0.99.0"))
    with pytest.warns(UserWarning, match="newer than this skae"):
        skae.load(newer_minor)
    other_torch = _edited(saved, tmp_path, _set("torch_version", value="1.13.1"))
    with pytest.warns(UserWarning, match="torch 1.13.1"):
        skae.load(other_torch)
    older = _edited(saved, tmp_path, _set("skae_version", value="0.0.1"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skae.load(older)


def test_saved_metadata_documents_the_versions(saved):
    _, config, _ = saved
    assert config["skae_version"] == skae.__version__
    assert config["torch_version"] == torch.__version__
    assert config["estimator"] == "VAETransformer"
    assert config["attributes"]["likelihood_"] == "gaussian"
    assert json.loads(json.dumps(config)) == config  # plain JSON, nothing else
    check_is_fitted(skae.load(saved[0]))
