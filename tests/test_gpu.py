"""skae on a CUDA device, and the prepared GPU check (``benchmarks/gpu_check.py``).

The tests marked ``gpu`` need CUDA and are skipped without it; run them with
``pytest -m gpu tests/test_gpu.py`` (``make gpu-check`` does, on a lent GPU).
The last test runs the check itself in its CPU smoke configuration, in the
default run.
"""

import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import skae._data
from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
from skae._base import INFERENCE_BATCH_SIZE

REPO_ROOT = Path(__file__).resolve().parents[1]

ESTIMATORS = [AutoencoderTransformer, DenoisingAutoencoder, VAETransformer]
ARCHITECTURES = ["mlp", "conv"]
SMALL = dict(n_components=2, hidden_layer_sizes=(32, 16), conv_channels=(8, 16),
             max_iter=3, device="cuda", random_state=0)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
CASES = [pytest.param(cls, architecture, id=f"{cls.__name__}-{architecture}",
                      marks=[pytest.mark.gpu, needs_cuda])
         for cls in ESTIMATORS for architecture in ARCHITECTURES]

# Codes of the conv models on the GPU and on the CPU differ by more than
# float32 rounding: cuDNN computes float32 convolutions in TF32 by default
# (torch.backends.cudnn.allow_tf32), with a 10-bit mantissa.
CPU_TOLERANCE = {"mlp": 1e-4, "conv": 1e-2}
# With cuDNN's default settings its fastest convolution algorithms may add in
# a different order from run to run (atomics), so two conv fits can differ by
# rounding that training amplifies; the bound is relative to the codes' scale.
# With torch.backends.cudnn.deterministic the fits must be bit-identical.
CONV_REPEAT_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def digits_data():
    """Digits as float32 rows in [0, 1] (mlp) and as (n, 8, 8) images (conv)."""
    X = (load_digits().data / 16.0).astype(np.float32)
    return {"mlp": X, "conv": X.reshape(-1, 8, 8)}


def _fit(cls, X, architecture, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(architecture=architecture, **{**SMALL, **params}).fit(X)


@pytest.fixture(scope="module")
def cuda_models(digits_data):
    """One model fitted on CUDA per estimator and architecture (empty without CUDA)."""
    if not torch.cuda.is_available():
        return {}
    return {(cls, architecture): _fit(cls, digits_data[architecture], architecture)
            for cls in ESTIMATORS for architecture in ARCHITECTURES}


def _scale(codes):
    return max(float(np.abs(codes).max()), 1e-6)


@pytest.mark.parametrize("cls, architecture", CASES)
def test_fits_on_cuda_with_fused_adam(cls, architecture, cuda_models, digits_data):
    est = cuda_models[cls, architecture]
    assert all(p.device.type == "cuda" for p in est.net_.module_.parameters())
    assert torch.device(est.net_.device).type == "cuda"
    assert est.net_.optimizer_.defaults.get("fused") is True
    codes = est.transform(digits_data[architecture])
    assert codes.shape == (len(digits_data[architecture]), 2)
    assert codes.dtype == np.float32 and np.isfinite(codes).all()
    assert np.isfinite(est.loss_curve_).all()


@pytest.mark.parametrize("cls, architecture", CASES)
def test_same_random_state_gives_the_same_codes(cls, architecture, cuda_models,
                                                digits_data, monkeypatch, record_property):
    """Two fits with one random_state on one GPU: bit-identical codes (mlp).

    For conv, within CONV_REPEAT_TOLERANCE under cuDNN's defaults (whether
    they were identical is recorded in the JUnit XML), and bit-identical
    with ``torch.backends.cudnn.deterministic``.
    """
    X = digits_data[architecture]
    first = cuda_models[cls, architecture].transform(X)
    second = _fit(cls, X, architecture).transform(X)
    if architecture == "mlp":
        np.testing.assert_array_equal(second, first)
        return
    record_property("bit_identical_with_cudnn_defaults", bool(np.array_equal(first, second)))
    assert np.abs(second - first).max() <= CONV_REPEAT_TOLERANCE * _scale(first)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    np.testing.assert_array_equal(_fit(cls, X, architecture).transform(X),
                                  _fit(cls, X, architecture).transform(X))


@pytest.mark.gpu
@needs_cuda
def test_cuda_models_load_where_cuda_is_hidden(cuda_models, digits_data, tmp_path):
    """Pickled and est.save'd CUDA models load in a process that sees no GPU."""
    names = {}
    for (cls, architecture), est in cuda_models.items():
        name = f"{cls.__name__}_{architecture}"
        names[name] = (est, architecture)
        with open(tmp_path / f"{name}.pkl", "wb") as file:
            pickle.dump(est, file)
        est.save(tmp_path / f"{name}.safetensors")
        np.save(tmp_path / f"{name}.X.npy", digits_data[architecture])
    script = textwrap.dedent("""
        import pickle, sys, warnings, numpy as np, torch, skae
        assert not torch.cuda.is_available(), "CUDA should be hidden"
        folder, names = sys.argv[1], sys.argv[2:]
        codes = {}
        warnings.simplefilter("ignore")  # skorch and skae warn that they map to the CPU
        for name in names:
            X = np.load(f"{folder}/{name}.X.npy")
            with open(f"{folder}/{name}.pkl", "rb") as file:
                est = pickle.load(file)
            assert str(est.net_.device) == "cpu", est.net_.device
            codes[name + ".pkl"] = est.transform(X)
            est = skae.load(f"{folder}/{name}.safetensors")
            assert str(est.net_.device) == "cpu", est.net_.device
            codes[name + ".safetensors"] = est.transform(X)
        np.savez(f"{folder}/codes.npz", **codes)
    """)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path), *names],
                            cwd=REPO_ROOT, env=env, timeout=300, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "codes.npz") as codes:
        for name, (est, architecture) in names.items():
            expected = est.transform(digits_data[architecture])
            for suffix in (".pkl", ".safetensors"):
                error = np.abs(codes[name + suffix] - expected).max()
                assert error <= CPU_TOLERANCE[architecture] * _scale(expected), (
                    name + suffix, error)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_uint8_images_go_to_the_gpu_batch_by_batch(architecture, digits_data, monkeypatch,
                                                   record_property):
    """uint8 images are converted batch by batch, and encode as their float/255 values."""
    images = np.rint(digits_data["conv"] * 255).astype(np.uint8)
    X = images if architecture == "conv" else images.reshape(len(images), -1)
    batches = []  # (rows, their dtype, pinned, converted for inference)
    convert = skae._data.rows_to_tensor

    def spy(rows, sample_shape, buffer=None):
        tensor = convert(rows, sample_shape, buffer)
        batches.append((len(rows), str(rows.dtype).removeprefix("torch."),
                        tensor.is_pinned(), torch.is_inference_mode_enabled()))
        return tensor

    monkeypatch.setattr(skae._data, "rows_to_tensor", spy)
    est = _fit(AutoencoderTransformer, X, architecture, batch_size=64)
    codes = est.transform(X)
    training = [n for n, _, _, inference in batches if not inference]
    assert training and max(training) <= 64
    assert max(n for n, *_ in batches) <= INFERENCE_BATCH_SIZE
    assert {dtype for _, dtype, _, _ in batches} == {"uint8"}
    record_property("pinned_batches", sum(pinned for _, _, pinned, _ in batches))
    # The float input is what skae makes of uint8 (x / 255 in float32); a
    # conversion on the device could round a value by one unit in the last place.
    floats = X.astype(np.float32) / np.float32(255)
    np.testing.assert_allclose(est.transform(floats), codes, rtol=1e-5, atol=1e-6)


def test_gpu_check_smoke_runs_on_cpu(tmp_path):
    """``benchmarks/gpu_check.py --smoke`` runs every part on the CPU and writes its report."""
    # One thread: on a busy machine two OpenMP threads can wait on each other for seconds.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--smoke", "--out", str(tmp_path)],
        cwd=REPO_ROOT, env=env, timeout=120, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {"environment", "mode", "pytest", "speed", "fashion_mnist", "errors",
            "total_seconds"} <= report.keys()
    assert report["mode"] == "smoke" and report["errors"] == {}
    assert report["pytest"]["returncode"] == 0 and report["pytest"]["skipped"] > 0
    assert [row["row"] for row in report["speed"]] == ["fashion float32", "fashion uint8",
                                                      "digits"]
    assert all(row["ratio"] > 0 for row in report["speed"])
    assert {(m["architecture"], m["n_components"]) for m in report["fashion_mnist"]} == {
        ("conv", 2), ("conv", 64), ("mlp", 2), ("mlp", 64)}
    assert all(np.isfinite(m["test_mse"]) and m["epochs"] >= 1
               for m in report["fashion_mnist"])
    summary = (tmp_path / "gpu_check.md").read_text()
    assert "| conv | 2 |" in summary and "ratio" in summary
    assert (tmp_path / "pytest_gpu.txt").exists()
