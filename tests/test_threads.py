"""Fits and inference from several threads at once (issue 18).

Every fit draws its random numbers from generators it owns, so the same
``random_state`` gives bit-identical weights in any thread, and no call
leaves torch's process-wide settings changed.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
from skae._runtime import flushes_denormals, seeded_torch, torch_threads

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# Small fits: the point is the random streams, not the quality.
COMMON = dict(n_components=2, max_iter=2, batch_size=64, random_state=3)
IMAGE = dict(architecture="conv", conv_channels=(4, 8), input_shape=(1, 8, 8))

CONFIGS = {
    "ae_mlp": (AutoencoderTransformer, {}),
    "ae_mlp_dropout": (AutoencoderTransformer, {"dropout": 0.3}),
    "ae_conv": (AutoencoderTransformer, IMAGE),
    "ae_early_stopping": (AutoencoderTransformer, {"early_stopping": True}),
    "ae_no_early_stopping": (AutoencoderTransformer, {"early_stopping": False}),
    "dae_gaussian": (DenoisingAutoencoder, {"noise": "gaussian"}),
    "dae_masking": (DenoisingAutoencoder, {"noise": "masking", "dropout": 0.2}),
    "dae_salt_and_pepper": (DenoisingAutoencoder, {"noise": "salt_and_pepper"}),
    "dae_callable": (DenoisingAutoencoder, {
        "noise": lambda X, generator: X + 0.1 * torch.randn(X.shape, generator=generator)}),
    "dae_conv": (DenoisingAutoencoder, IMAGE),
    "vae_mlp": (VAETransformer, {}),
    "vae_dropout": (VAETransformer, {"dropout": 0.3, "early_stopping": True}),
    "vae_conv": (VAETransformer, IMAGE),
    "vae_random_init": (VAETransformer, {"init": "random"}),
}


@pytest.fixture(scope="module")
def X(digits_split):
    return digits_split[0][:400]


def _fit(name, X):
    cls, params = CONFIGS[name]
    estimator = cls(**{**COMMON, **params}).fit(X)
    weights = {k: v.clone() for k, v in estimator.net_.module_.state_dict().items()}
    return weights, estimator.transform(X), estimator.loss_curve_


def _same(a, b):
    weights_a, codes_a, curve_a = a
    weights_b, codes_b, curve_b = b
    return (weights_a.keys() == weights_b.keys()
            and all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
            and np.array_equal(codes_a, codes_b) and curve_a == curve_b)


def _process_state():
    """torch's thread count as this thread and a new thread see it, and its RNG state."""
    seen = {}
    probe = threading.Thread(target=lambda: seen.update(new=torch.get_num_threads()))
    probe.start()
    probe.join()
    return torch.get_num_threads(), seen["new"], torch.get_rng_state()


def _assert_state_unchanged(before):
    threads, new_thread, rng = _process_state()
    assert (threads, new_thread) == before[:2]
    assert torch.equal(rng, before[2])


@pytest.fixture(scope="module")
def serial(X):
    return {name: _fit(name, X) for name in CONFIGS}


def test_every_configuration_is_reproducible_serially(X, serial):
    # The baseline the threaded runs compare with must itself be stable.
    for name in ("ae_mlp_dropout", "dae_masking", "vae_dropout"):
        assert _same(_fit(name, X), serial[name]), name


def test_concurrent_fits_of_every_configuration_match_serial_fits(X, serial):
    """All configurations at once, each twice, on 8 threads: a mix of every stream."""
    before = _process_state()
    names = [name for name in CONFIGS for _ in range(2)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda name: _fit(name, X), names))
    mismatched = [name for name, result in zip(names, results) if not _same(result, serial[name])]
    assert mismatched == []
    _assert_state_unchanged(before)


@pytest.mark.parametrize("n_threads", [2, 4, 8])
def test_same_fit_in_many_threads_is_bit_identical(X, serial, n_threads):
    before = _process_state()
    with ThreadPoolExecutor(n_threads) as pool:
        results = list(pool.map(lambda _: _fit("ae_mlp_dropout", X), range(n_threads)))
    assert all(_same(result, serial["ae_mlp_dropout"]) for result in results)
    _assert_state_unchanged(before)


def test_fits_keep_each_threads_flush_mode(X):
    """Denormals are flushed while training and the calling thread's mode is restored."""
    torch.set_flush_denormal(False)

    def fit_and_report(_):
        before = flushes_denormals()
        _fit("ae_mlp", X)
        return before, flushes_denormals()

    with ThreadPoolExecutor(4) as pool:
        modes = list(pool.map(fit_and_report, range(8)))
    assert all(before == after for before, after in modes)
    assert not flushes_denormals()


def test_grid_search_threading_backend_scores_like_serial(X):
    search = GridSearchCV(AutoencoderTransformer(max_iter=3, random_state=0),
                          {"n_components": [2, 4], "dropout": [0.0, 0.2]}, cv=2)
    serial_scores = search.set_params(n_jobs=1).fit(X).cv_results_
    with joblib.parallel_backend("threading"):
        threaded_scores = search.set_params(n_jobs=2).fit(X).cv_results_
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_array_equal(threaded_scores[key], serial_scores[key])


def _calls(estimator, dae, vae, X):
    codes = estimator.transform(X)
    return {
        "transform": lambda: estimator.transform(X),
        "inverse_transform": lambda: estimator.inverse_transform(codes),
        "score_samples": lambda: estimator.score_samples(X),
        "reconstruct": lambda: estimator.reconstruct(X),
        "denoise": lambda: dae.denoise(X),
        "vae_score_samples": lambda: vae.score_samples(X),
        "sample": lambda: vae.sample(16, random_state=5),
        "interpolate": lambda: vae.interpolate(X[0], X[1], n_steps=4),
    }


def test_concurrent_inference_on_one_estimator_matches_serial(X, serial):
    estimator = AutoencoderTransformer(**COMMON).fit(X)
    dae = DenoisingAutoencoder(**COMMON).fit(X)
    vae = VAETransformer(**COMMON).fit(X)
    calls = _calls(estimator, dae, vae, X)
    expected = {name: call() for name, call in calls.items()}
    before = _process_state()
    names = list(calls) * 4
    with ThreadPoolExecutor(8) as pool:
        # A fit of another estimator runs beside the inference calls.
        other = pool.submit(_fit, "vae_dropout", X)
        results = list(pool.map(lambda name: calls[name](), names))
        assert _same(other.result(), serial["vae_dropout"])
    for name, result in zip(names, results):
        np.testing.assert_array_equal(result, expected[name], err_msg=name)
    _assert_state_unchanged(before)


def test_torch_threads_overlapping_calls_restore_the_process_count():
    """A starts, B starts inside A's call (inheriting its count), A ends, then B."""
    baseline = torch.get_num_threads()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with torch_threads(1):
            a_in.set()
            b_in.wait()
        a_out.set()

    def second():
        with torch_threads(3):
            b_in.set()
            a_out.wait()

    a = threading.Thread(target=first)
    a.start()
    a_in.wait()
    b = threading.Thread(target=second)
    b.start()
    a.join()
    b.join()
    assert _process_state()[:2] == (baseline, baseline)
    # Nested calls in one thread restore the outer value.
    with torch_threads(1):
        with torch_threads(3):
            assert torch.get_num_threads() == 3
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == baseline


def test_seeded_torch_leaves_the_global_generator_alone():
    before = torch.get_rng_state()
    with seeded_torch(7):
        a = torch.nn.Linear(4, 3).weight.detach().clone()
        noise = torch.rand(3)
    with seeded_torch(7):
        b = torch.nn.Linear(4, 3).weight.detach().clone()
        assert torch.equal(torch.rand(3), noise)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), before)
    # The same stream as torch.manual_seed gives, so seeds keep their meaning.
    torch.manual_seed(7)
    assert torch.equal(torch.nn.Linear(4, 3).weight.detach(), a)


def test_dropout_masks_follow_the_fit_not_the_global_generator(X):
    cls, params = CONFIGS["ae_mlp_dropout"]
    first = cls(**{**COMMON, **params}).fit(X)
    torch.manual_seed(12345)  # the global stream is not what seeds the masks
    second = cls(**{**COMMON, **params}).fit(X)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    changed = cls(**{**COMMON, **params, "random_state": 4}).fit(X)
    assert not np.array_equal(first.transform(X), changed.transform(X))
