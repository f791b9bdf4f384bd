"""The fast paths of training and inference change no result and drop no callback.

skae trains with a fused optimizer when torch has one, switches the module's
mode only when it changes, reads the batches' losses once an epoch while no
callback listens to batches, and sizes convolutional inference batches to the
cache. These tests pin what must not change: the codes of a plain PyTorch
loop, the history skorch's own loop records, every callback call.
"""

import collections
import copy
import math
import warnings
import weakref
from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback
from skorch.history import History

import skae._base
import skae._net
import skae._runtime
from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
from skae._data import ArrayDataset
from skae._net import supports_fused


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def X_digits(digits_split):
    return digits_split[0][:400]


class InitialWeights(Callback):
    """Keep the module's weights as training starts."""

    def on_train_begin(self, net, **kwargs):
        self.state_ = copy.deepcopy(net.module_.state_dict())


class CountCalls(Callback):
    """Count batch hooks, the module's mode in them, and the batch losses seen."""

    def initialize(self):
        self.calls = collections.Counter()
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        self.calls["begin", training] += 1

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        self.calls["grad", training] += 1
        self.calls["grad_params"] += len(list(named_parameters))

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        self.calls["end", training] += 1
        self.calls["module_training", net.module_.training] += 1
        prefix = "train" if training else "valid"
        # What skorch's loop has recorded when on_batch_end runs.
        assert isinstance(net.history[-1, "batches", -1, f"{prefix}_loss"], float)
        assert net.history[-1, "batches", -1, f"{prefix}_batch_size"] == len(batch[0])


def plain_loop_codes(X, estimator, initial_state, batch_size, epochs):
    """Codes and epoch losses of a plain PyTorch loop: skae's initial weights and
    batch order, unfused Adam, no skorch."""
    module = copy.deepcopy(estimator.net_.module_)
    module.load_state_dict(initial_state)
    module.train()
    optimizer = torch.optim.Adam(module.parameters(), lr=estimator.learning_rate_init,
                                 foreach=False, fused=False)
    shuffle_seed = np.random.SeedSequence(estimator.net_.random_seed).generate_state(3)[0]
    generator = torch.Generator().manual_seed(int(shuffle_seed))
    X_tensor = torch.from_numpy(X)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        total = 0.0
        for start in range(0, len(X), batch_size):
            batch = X_tensor[order[start:start + batch_size]]
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(module(batch)[0], batch)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(X))
    module.eval()
    with torch.no_grad():
        return module.encode(X_tensor).numpy(), losses


def test_codes_match_a_plain_pytorch_loop(X_digits):
    epochs, batch_size = 4, 64
    estimator = AutoencoderTransformer(
        n_components=3, hidden_layer_sizes=(64, 16), batch_size=batch_size,
        max_iter=epochs, n_iter_no_change=epochs, early_stopping=False, random_state=0,
        n_threads=1,
        device="cpu", callbacks=[("initial", InitialWeights())],
    ).fit(X_digits)
    initial_state = dict(estimator.net_.callbacks_)["initial"].state_
    codes, losses = plain_loop_codes(X_digits, estimator, initial_state, batch_size, epochs)

    assert np.abs(codes).max() > 0.1  # the loop trained something
    np.testing.assert_allclose(estimator.transform(X_digits), codes, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(estimator.loss_curve_, losses, rtol=1e-5)
    # Batch losses and sizes are in the history as skorch's loop records them.
    first_epoch = estimator.net_.history[0]
    batch_sizes = [b["train_batch_size"] for b in first_epoch["batches"]]
    assert batch_sizes == [64] * 6 + [16]
    batch_losses = [b["train_loss"] for b in first_epoch["batches"]]
    assert all(isinstance(value, float) for value in batch_losses)
    assert first_epoch["train_loss"] == pytest.approx(
        np.average(batch_losses, weights=batch_sizes))


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, DenoisingAutoencoder,
                                       VAETransformer])
def test_every_batch_hook_reaches_user_callbacks(Estimator, X_digits):
    # 400 rows, 80 held out: 10 training and 3 validation batches an epoch.
    estimator = Estimator(
        n_components=2, hidden_layer_sizes=(16,), batch_size=32, max_iter=3,
        n_iter_no_change=3, early_stopping=True, validation_fraction=0.2,
        random_state=0, n_threads=1, callbacks=[("count", CountCalls())],
    ).fit(X_digits)
    calls = dict(estimator.net_.callbacks_)["count"].calls
    n_params = len(list(estimator.net_.module_.parameters()))
    assert calls["begin", True] == calls["end", True] == calls["grad", True] == 30
    assert calls["begin", False] == calls["end", False] == 9
    assert calls["grad_params"] == 30 * n_params
    # Training batches ran in train mode, validation batches in eval mode.
    assert calls["module_training", True] == 30
    assert calls["module_training", False] == 9


def test_replaced_callbacks_get_the_batch_hooks(X_digits):
    estimator = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(16,), batch_size=100, max_iter=1,
        random_state=0, n_threads=1, callbacks=[("count", CountCalls())],
    ).fit(X_digits)
    net = estimator.net_
    first = dict(net.callbacks_)["count"]
    net.callbacks = [("count", CountCalls())]
    net.initialize_callbacks()
    net.partial_fit(ArrayDataset(X_digits, (X_digits.shape[1],)))
    second = dict(net.callbacks_)["count"]
    assert second is not first
    assert first.calls["end", True] == 4
    assert second.calls["end", True] == 4


def test_fused_optimizer_when_available_with_fallback(monkeypatch, X_digits):
    for name in ("adam", "adamw", "sgd"):
        estimator = AutoencoderTransformer(
            n_components=2, hidden_layer_sizes=(16,), optimizer=name, max_iter=2,
            random_state=0, n_threads=1, device="cpu",
        ).fit(X_digits)
        optimizer_class = skae._base.OPTIMIZERS[name][0]
        fused = estimator.net_.optimizer_.defaults.get("fused")
        assert bool(fused) == supports_fused(optimizer_class, "cpu")

    class NoFusedSGD(torch.optim.SGD):
        def __init__(self, params, lr, fused=None, **kwargs):
            if fused:
                raise RuntimeError("no fused kernels here")
            super().__init__(params, lr, **kwargs)

    assert supports_fused(NoFusedSGD, "cpu") is False
    monkeypatch.setitem(skae._base.OPTIMIZERS, "sgd", (NoFusedSGD, {"momentum": 0.9}))
    estimator = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(16,), optimizer="sgd", max_iter=3,
        random_state=0, n_threads=1, device="cpu",
    ).fit(X_digits)
    assert isinstance(estimator.net_.optimizer_, NoFusedSGD)
    assert estimator.loss_curve_[-1] < estimator.loss_curve_[0]


def test_silent_fit_skips_the_epoch_table_verbose_prints_it(capsys, X_digits):
    params = dict(n_components=2, hidden_layer_sizes=(16,), max_iter=2, random_state=0,
                  n_threads=1)
    silent = AutoencoderTransformer(**params).fit(X_digits)
    assert "print_log" not in dict(silent.net_.callbacks_)
    assert capsys.readouterr().out == ""
    AutoencoderTransformer(**params, verbose=1).fit(X_digits)
    out = capsys.readouterr().out
    assert "train_loss" in out and out.count("\n") >= 4


def test_convolutional_inference_in_cache_sized_batches(monkeypatch, X_digits):
    images = X_digits[:50].reshape(-1, 8, 8)
    estimator = AutoencoderTransformer(
        n_components=2, architecture="conv", conv_channels=(4, 8), max_iter=2,
        random_state=0, n_threads=1, device="cpu",
    ).fit(images)
    batch_rows = []
    encode = estimator.net_.module_.encode

    def spy(batch):
        batch_rows.append(len(batch))
        return encode(batch)

    monkeypatch.setattr(estimator.net_.module_, "encode", spy)
    # A budget of 7 rows of 4 maps of 8 x 8 values.
    monkeypatch.setattr(skae._base, "INFERENCE_VALUES", 7 * 4 * 64)
    codes = estimator.transform(images)
    assert batch_rows == [7] * 7 + [1]
    module = estimator.net_.module_.eval()
    with torch.no_grad():
        expected = encode(torch.from_numpy(images[:, None]))
    np.testing.assert_allclose(codes, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_uint8_batches_converted_in_one_buffer_equal_new_tensors(monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8)
    estimator = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(16,), max_iter=2, random_state=0,
        n_threads=1, device="cpu",
    ).fit(images)
    inputs = []
    encode = estimator.net_.module_.encode

    def spy(batch):
        inputs.append((batch.data_ptr(), batch.clone()))
        return encode(batch)

    monkeypatch.setattr(estimator.net_.module_, "encode", spy)
    monkeypatch.setattr(skae._base, "INFERENCE_BATCH_SIZE", 16)
    codes = estimator.transform(images)
    # Batches of 16, 16 and 8 rows, all converted into the same memory.
    assert [len(batch) for _, batch in inputs] == [16, 16, 8]
    assert len({pointer for pointer, _ in inputs}) == 1
    scaled = torch.from_numpy(images.reshape(40, 64).astype(np.float32)) / 255.0
    torch.testing.assert_close(torch.cat([batch for _, batch in inputs]), scaled,
                               rtol=0, atol=0)
    # The same codes as float input in batches of the same size.
    as_float = images.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(codes, estimator.transform(as_float))


def subnormal_flushing_by_thread(n_threads=2):
    """(calling thread flushes, an OpenMP worker flushes) subnormal float32 results.

    The smallest subnormal (bits 0x00000001, made without float arithmetic)
    doubled in one parallel operation: the first half is the calling thread's,
    the second half a worker's.
    """
    n = 2 * 65536
    with skae._runtime.torch_threads(n_threads):
        smallest = torch.ones(n, dtype=torch.int32).view(torch.float32)
        kept = (smallest * 2.0).view(torch.int32) != 0
    return not bool(kept[: n // 2].any()), not bool(kept[n // 2:].any())


class RecordFlushing(Callback):
    def on_epoch_end(self, net, **kwargs):
        self.flushing_ = subnormal_flushing_by_thread()


def test_training_flushes_subnormals_in_every_thread_and_restores(X_digits):
    before = subnormal_flushing_by_thread()
    assert before == (False, False)  # IEEE arithmetic, the default
    estimator = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(16,), max_iter=1, random_state=0, n_threads=2,
        device="cpu", callbacks=[("flushing", RecordFlushing())],
    ).fit(X_digits)
    during = dict(estimator.net_.callbacks_)["flushing"].flushing_
    if skae._runtime._gnu_openmp_parallel() is not None:
        assert during == (True, True)
    else:  # another threading runtime: the calling thread at least
        assert during[0]
    assert subnormal_flushing_by_thread() == before
    estimator.transform(X_digits)
    assert subnormal_flushing_by_thread() == before


def test_a_caller_that_flushes_keeps_flushing(X_digits):
    skae._runtime._set_flush_denormal(True)
    try:
        AutoencoderTransformer(n_components=2, hidden_layer_sizes=(16,), max_iter=1,
                               random_state=0, n_threads=2, device="cpu").fit(X_digits)
        assert skae._runtime.flushes_denormals()
    finally:
        skae._runtime._set_flush_denormal(False)
    assert subnormal_flushing_by_thread() == (False, False)


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, VAETransformer])
def test_flushing_subnormals_changes_no_code(monkeypatch, Estimator, X_digits):
    # Adam's first moments of rarely active ReLU units are the subnormal
    # values: their share of a weight update lies far below float32 rounding.
    # Like any change of rounding, training can amplify it over many epochs
    # (the PCA start's linear path meets subnormal products on digits'
    # constant pixels), so after 30 epochs the models are compared by quality.
    params = dict(n_components=2, hidden_layer_sizes=(64, 16), n_iter_no_change=30,
                  early_stopping=False, random_state=0, n_threads=2, device="cpu")
    flushed = [Estimator(**params, max_iter=it).fit(X_digits) for it in (2, 30)]
    monkeypatch.setattr(skae._base, "flushed_denormals", lambda device: nullcontext())
    ieee = [Estimator(**params, max_iter=it).fit(X_digits) for it in (2, 30)]
    np.testing.assert_allclose(flushed[0].transform(X_digits), ieee[0].transform(X_digits),
                               rtol=1e-3, atol=1e-3)
    assert flushed[1].score(X_digits) == pytest.approx(ieee[1].score(X_digits), rel=0.02)


class ListenToBatchEnds(Callback):
    """A callback that only listens to on_batch_end: the net runs skorch's own loop."""

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        pass


def history_without_durations(history):
    return [{key: value for key, value in epoch.items() if key != "dur"} for epoch in history]


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, DenoisingAutoencoder,
                                       VAETransformer])
def test_batch_values_read_once_an_epoch_record_what_skorchs_loop_records(
        monkeypatch, Estimator, X_digits):
    params = dict(n_components=2, hidden_layer_sizes=(16,), batch_size=64, max_iter=3,
                  n_iter_no_change=3, early_stopping=True, validation_fraction=0.2,
                  random_state=0, n_threads=1, device="cpu")
    skorch_loops = collections.Counter()
    skorch_run_single_epoch = skae._net.NeuralNet.run_single_epoch

    def counted(net, *args, **kwargs):
        skorch_loops[type(net).__name__] += 1
        return skorch_run_single_epoch(net, *args, **kwargs)

    monkeypatch.setattr(skae._net.NeuralNet, "run_single_epoch", counted)
    lean = Estimator(**params).fit(X_digits)
    assert not skorch_loops
    listened = Estimator(**params, callbacks=[("listen", ListenToBatchEnds())]).fit(X_digits)
    assert sum(skorch_loops.values()) == 6  # training and validation, 3 epochs

    # The same rows, keys in the same order, the same floats; the same codes.
    lean_history = history_without_durations(lean.net_.history)
    assert lean_history == history_without_durations(listened.net_.history)
    assert [list(batch) for batch in lean_history[0]["batches"]] == [
        list(batch) for batch in listened.net_.history[0]["batches"]]
    assert all(type(value) in (float, int) for epoch in lean_history
               for batch in epoch["batches"] for value in batch.values())
    np.testing.assert_array_equal(lean.transform(X_digits), listened.transform(X_digits))


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, VAETransformer])
def test_batch_values_kept_in_preallocated_columns_that_view_no_batch(monkeypatch, Estimator,
                                                                     X_digits):
    # mse_loss on the CPU returns a scalar viewing the batch's whole buffer:
    # kept as it is, an epoch of them held as much memory as the data. The
    # values are copied into one column per name, allocated once a pass.
    passes = []
    write_to = skae._net.EpochBatchValues.write_to
    monkeypatch.setattr(skae._net.EpochBatchValues, "write_to",
                        lambda values, history: (passes.append(values),
                                                 write_to(values, history)))
    Estimator(n_components=2, hidden_layer_sizes=(16,), batch_size=64, max_iter=2,
              n_iter_no_change=2, early_stopping=True, validation_fraction=0.2,
              random_state=0, n_threads=1, device="cpu").fit(X_digits)
    # loss (recon, kl; validation: mse at the posterior mean)
    n_columns = {"train": 3, "valid": 4} if Estimator is VAETransformer else {
        "train": 1, "valid": 1}
    assert len(passes) == 2 * 2  # training and validation, 2 epochs
    for values, kind in zip(passes, ["train", "valid"] * 2):
        columns = [column for column, _, _ in values.columns.values()
                   if isinstance(column, torch.Tensor)]
        assert len(columns) == n_columns[kind]
        assert all(column.shape == (values.capacity,) and column._base is None
                   and column.untyped_storage().nbytes() == values.capacity * 4
                   for column in columns)
        assert values.capacity == values.n_batches  # the iterator's length, no regrowth


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, DenoisingAutoencoder,
                                       VAETransformer])
def test_a_batch_and_its_outputs_are_freed_before_the_next_batch(monkeypatch, Estimator,
                                                                 X_digits):
    # Holding a batch's outputs while the next one runs leaves the allocator
    # a different set of free blocks each batch (page faults a hand loop
    # does not take).
    previous = []
    alive_at_next_step = []
    step_single = skae._net.AutoencoderNet.train_step_single

    def watched(net, batch, **fit_params):
        alive_at_next_step.extend(ref() is not None for ref in previous)
        step = step_single(net, batch, **fit_params)
        previous[:] = [weakref.ref(batch[0]), weakref.ref(step["y_pred"][0])]
        return step

    monkeypatch.setattr(skae._net.AutoencoderNet, "train_step_single", watched)
    Estimator(n_components=2, hidden_layer_sizes=(16,), batch_size=64, max_iter=2,
              early_stopping=False, random_state=0, n_threads=1, device="cpu").fit(X_digits)
    n_batches = 2 * math.ceil(len(X_digits) / 64)
    assert len(alive_at_next_step) == 2 * (n_batches - 1)
    assert not any(alive_at_next_step)


def test_batch_values_grow_past_the_expected_length_and_keep_their_order():
    values = skae._net.EpochBatchValues(n_batches=2)
    for i in range(5):
        values.new_batch()
        if i != 1:
            values.record("a_recon", torch.tensor(i / 2, dtype=torch.float64))
        values.record("a_loss", torch.tensor(float(i), requires_grad=True) * 1)
        values.record("a_batch_size", 10 + i)
    history = History()
    history.new_epoch()
    values.write_to(history)
    assert values.capacity == 8
    assert [list(row.items()) for row in history[-1]["batches"]] == [
        [("a_recon", i / 2), ("a_loss", float(i)), ("a_batch_size", 10 + i)] if i != 1
        else [("a_loss", 1.0), ("a_batch_size", 11)] for i in range(5)]
    columns = [column for column, _, _ in values.columns.values()
               if isinstance(column, torch.Tensor)]
    assert not any(column.requires_grad for column in columns)


class RecordingHistory(History):
    """A History subclass (as skorch's DistributedHistory) that sees each record."""

    def record_batch(self, attr, value):
        self.seen = [*getattr(self, "seen", []), (attr, value)]
        super().record_batch(attr, value)


def test_batch_values_reach_a_history_subclass_through_its_own_methods():
    # A plain History gets the rows in one extend; a subclass (skorch's
    # DistributedHistory syncs what record_batch stores) gets every record.
    histories = [History(), RecordingHistory()]
    for history in histories:
        values = skae._net.EpochBatchValues(n_batches=3)
        for i in range(3):
            values.new_batch()
            values.record("a_loss", torch.tensor(float(i)))
            values.record("a_batch_size", 10 + i)
        history.new_epoch()
        values.write_to(history)
    assert histories[0].to_list() == histories[1].to_list()
    assert histories[1].seen == [(name, value) for i in range(3)
                                 for name, value in (("a_loss", float(i)), ("a_batch_size", 10 + i))]


class GradientNorms(Callback):
    """Listens to on_grad_computed only: the norm of the gradients of each step."""

    def initialize(self):
        self.norms = []
        return self

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        grads = [parameter.grad for _, parameter in named_parameters]
        self.norms.append(float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))))


def test_gradient_callbacks_see_every_training_step(X_digits):
    estimator = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(16,), batch_size=100, max_iter=3,
        n_iter_no_change=3, random_state=0, n_threads=1,
        callbacks=[("norms", GradientNorms())],
    ).fit(X_digits)
    norms = dict(estimator.net_.callbacks_)["norms"].norms
    assert len(norms) == 3 * 4
    assert all(norm > 0 for norm in norms)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_batches_gathered_by_torch_equal_numpys(tmp_path, dtype):
    rng = np.random.default_rng(0)
    X = (rng.random((50, 12)) * 255).astype(dtype)
    np.save(tmp_path / "X.npy", X)
    read_only = np.load(tmp_path / "X.npy", mmap_mode="r")
    shared, copied = ArrayDataset(X, (3, 4)), ArrayDataset(read_only, (3, 4))
    assert shared._X_tensor is not None and copied._X_tensor is None  # torch / numpy

    def expected(rows):
        floats = torch.from_numpy(X[rows].astype(np.float32)).view(-1, 3, 4)
        return floats / 255.0 if dtype == np.uint8 else floats

    positions = rng.permutation(50)[:20]
    for dataset in (shared, copied, shared.subset(np.arange(50)), copied.subset(np.arange(50))):
        batch = dataset.batch(positions)
        assert batch.dtype == torch.float32
        torch.testing.assert_close(batch, expected(positions), rtol=0, atol=0)
    for dataset in (shared.subset(positions), copied.subset(positions)):
        torch.testing.assert_close(dataset.batch(start=5, stop=15),
                                   expected(np.sort(positions)[5:15]), rtol=0, atol=0)


def test_device_tensor_passes_a_tensor_on_the_device_and_converts_the_rest(X_digits):
    # skorch's to_tensor is skipped only where it would return X unchanged.
    rows = torch.from_numpy(X_digits[:5])
    assert skae._net.device_tensor(rows, "cpu") is rows
    assert skae._net.device_tensor(rows, None) is rows
    converted = skae._net.device_tensor(X_digits[:5], torch.device("cpu"))
    assert isinstance(converted, torch.Tensor) and converted.device.type == "cpu"
    torch.testing.assert_close(converted, rows, rtol=0, atol=0)
    assert not skae._net._on_device(rows, "cuda:0")


def test_batch_average_records_what_skorchs_passthrough_scoring_records():
    from skorch.callbacks import PassthroughScoring

    def run(Scoring):
        rng = np.random.default_rng(0)
        net = SimpleNamespace(history=History())
        callbacks = [Scoring(name="train_loss", on_train=True).initialize(),
                     Scoring(name="valid_loss").initialize(),
                     Scoring(name="train_loss", lower_is_better=None, on_train=True).initialize()]
        for epoch in range(5):
            net.history.new_epoch()
            for batch, size in enumerate((64, 64, 17) if epoch != 1 else [64] * 19 + [5]):
                net.history.new_batch()
                net.history.record_batch("train_loss", float(rng.random()))
                if not (epoch == 3 and batch == 2):  # a row without its size: skorch's path
                    net.history.record_batch("train_batch_size", size)
                if epoch != 2:  # an epoch without validation rows
                    net.history.record_batch("valid_loss", float(rng.random()))
                    net.history.record_batch("valid_batch_size", size)
            for callback in callbacks:
                callback.on_epoch_end(net)
        return [{key: value for key, value in row.items() if key != "batches"}
                for row in net.history]

    skorchs, ours = run(PassthroughScoring), run(skae._net.BatchAverage)
    assert ours == skorchs
    assert [list(row) for row in ours] == [list(row) for row in skorchs]
    assert "valid_loss" not in ours[2] and "valid_loss_best" in ours[3]


def test_nets_use_batch_average_for_skorchs_default_averages(X_digits):
    estimator = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=1,
                               random_state=0, n_threads=1, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        callbacks = dict(estimator.fit(X_digits).net_.callbacks_)
    averages = {name for name, callback in callbacks.items()
                if type(callback) is skae._net.BatchAverage}
    assert averages == {"train_loss", "valid_loss", "train_recon", "train_kl",
                        "valid_recon", "valid_kl", "valid_mse"}
