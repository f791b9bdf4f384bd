"""warm_start, partial_fit and learning-rate schedules."""

import warnings

import numpy as np
import pytest

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer

ESTIMATORS = [AutoencoderTransformer, DenoisingAutoencoder, VAETransformer]
SMALL = dict(n_components=2, hidden_layer_sizes=(16,), n_threads=1, random_state=0)


@pytest.fixture(scope="module")
def X(digits_split):
    return digits_split[0][:600]


def _quiet_fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_warm_start_3_plus_3_is_one_fit_of_6(Estimator, dropout, X):
    # Without held-out rows each fit keeps its last weights, so continuing
    # is the same computation as the longer fit: bit-identical on the CPU
    # (the dropout masks continue from the net's generator too).
    once = _quiet_fit(Estimator(max_iter=6, early_stopping=False, dropout=dropout,
                                **SMALL), X)
    twice = _quiet_fit(Estimator(max_iter=3, early_stopping=False, dropout=dropout,
                                 **SMALL), X)
    _quiet_fit(twice.set_params(warm_start=True), X)
    assert twice.n_iter_ == 6
    assert twice.loss_curve_ == once.loss_curve_
    assert list(twice.net_.history[:, "epoch"]) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(twice.transform(X), once.transform(X))


def test_warm_start_with_early_stopping_continues_from_the_kept_weights(X):
    # Each fit returns its best weights and the next one continues from them
    # (not from the last epoch's), so only the history's shape is the long fit's.
    model = _quiet_fit(AutoencoderTransformer(max_iter=3, early_stopping=True, **SMALL), X)
    first_score = max(model.validation_scores_ + [model.validation_start_score_])
    _quiet_fit(model.set_params(warm_start=True), X)
    assert model.n_iter_ == 6 and len(model.validation_scores_) == 6
    assert max(model.validation_scores_) >= first_score
    assert 3 <= model.best_epoch_ <= 6


def test_warm_start_that_never_beats_its_resumed_weights_says_so(X):
    # The start of a continued fit is the weights it resumed from, not PCA's:
    # the warning names that epoch and counts this fit's epochs only (the
    # first, then n_iter_no_change more: patience counts from a trained epoch).
    model = _quiet_fit(AutoencoderTransformer(max_iter=3, early_stopping=True, **SMALL), X)
    resumed_at = model.n_iter_
    model.set_params(warm_start=True, tol=10.0, n_iter_no_change=2, max_iter=5)
    with pytest.warns(UserWarning) as caught:
        model.fit(X)
    assert model.best_epoch_ == resumed_at and model.n_iter_ == resumed_at + 3
    message = next(str(w.message) for w in caught if "kept its" in str(w.message))
    assert message.startswith(
        f"AutoencoderTransformer kept its weights of epoch {resumed_at}, where this "
        f"fit resumed (best_epoch_ = {resumed_at}): none of the 3 epochs it ran")


def test_warm_start_after_pickle_is_one_longer_fit(X):
    import pickle

    once = _quiet_fit(AutoencoderTransformer(max_iter=4, early_stopping=False, **SMALL), X)
    first = _quiet_fit(AutoencoderTransformer(max_iter=2, early_stopping=False, **SMALL), X)
    resumed = pickle.loads(pickle.dumps(first))
    _quiet_fit(resumed.set_params(warm_start=True), X)
    assert resumed.loss_curve_ == once.loss_curve_
    np.testing.assert_array_equal(resumed.transform(X), once.transform(X))


def test_warm_start_keeps_the_optimizer_state(X):
    model = _quiet_fit(AutoencoderTransformer(max_iter=2, early_stopping=False, **SMALL), X)
    optimizer = model.net_.optimizer_
    steps = next(iter(optimizer.state.values()))["step"].item()
    _quiet_fit(model.set_params(warm_start=True), X)
    assert model.net_.optimizer_ is optimizer
    assert next(iter(optimizer.state.values()))["step"].item() == 2 * steps


@pytest.mark.parametrize("change", [dict(n_components=3), dict(hidden_layer_sizes=(8,)),
                                    dict(architecture="conv"), dict(init="random")])
def test_warm_start_refuses_structural_changes(change, X):
    model = _quiet_fit(AutoencoderTransformer(max_iter=1, **SMALL), X)
    name = next(iter(change))
    with pytest.raises(ValueError, match=f"{name}=.*shape the network"):
        model.set_params(warm_start=True, **change).fit(X)
    with pytest.raises(ValueError, match="shape the network"):
        model.partial_fit(X)


@pytest.mark.parametrize("Estimator, change", [
    (AutoencoderTransformer, dict(batch_size=64)),
    (AutoencoderTransformer, dict(early_stopping=False)),
    (AutoencoderTransformer, dict(validation_fraction=0.3)),
    (AutoencoderTransformer, dict(dropout=0.5)),
    (AutoencoderTransformer, dict(verbose=1)),
    (DenoisingAutoencoder, dict(noise_level=0.5)),
    (DenoisingAutoencoder, dict(preserve_clean=False)),
    (VAETransformer, dict(beta=2.0)),
])
def test_warm_start_refuses_changes_to_the_training_set_up(Estimator, change, X):
    # A continued fit keeps its held-out rows, batches, dropout and loss: a
    # change it could not honour is an error, not silently ignored.
    model = _quiet_fit(Estimator(max_iter=1, **SMALL), X)
    name, value = next(iter(change.items()))
    fitted = model.get_params()[name]
    with pytest.raises(ValueError, match=f"{name}={value!r} \\(fitted with {fitted!r}\\): "
                                         "these parameters set up the training"):
        model.set_params(warm_start=True, **change).fit(X)
    model.set_params(**{name: fitted})
    _quiet_fit(model, X)
    assert model.n_iter_ == 2


def test_warm_start_refuses_new_callbacks_and_save_keeps_their_names(X, tmp_path):
    # Callbacks count by name: a file can hold them, and loading it runs no code.
    pytest.importorskip("safetensors")
    from skorch.callbacks import EpochTimer

    import skae

    model = _quiet_fit(AutoencoderTransformer(max_iter=1, callbacks=[("timer", EpochTimer())],
                                              **SMALL), X)
    model.set_params(warm_start=True, callbacks=None)
    with pytest.raises(ValueError, match=r"callbacks=\[\] \(fitted with \['timer'\]\)"):
        model.fit(X)
    model.save(tmp_path / "model.safetensors")
    loaded = skae.load(tmp_path / "model.safetensors")
    _quiet_fit(loaded.set_params(warm_start=True), X)
    assert loaded.n_iter_ == 2


def test_warm_start_honours_a_new_tol_and_patience(X):
    # With tol=0 every lower loss counts: the rate never falls. A warm start
    # with a tol no epoch can meet stalls every epoch, so "adaptive" divides
    # the rate, and training ends n_iter_no_change epochs after its first.
    model = _quiet_fit(AutoencoderTransformer(
        max_iter=3, learning_rate="adaptive", tol=0.0, early_stopping=False, **SMALL), X)
    model.set_params(warm_start=True, tol=10.0, n_iter_no_change=3, max_iter=10)
    _quiet_fit(model, X)
    rates = np.array(model.net_.history[:, "event_lr"])
    assert model.n_iter_ == 3 + 1 + 3
    np.testing.assert_allclose(rates, 1e-3 * np.array([1, 1, 1, 1, 1, 0.2, 0.2]))


def test_warm_start_checks_the_features(X):
    model = _quiet_fit(AutoencoderTransformer(max_iter=1, warm_start=True, **SMALL), X)
    with pytest.raises(ValueError, match="features"):
        model.fit(X[:, :10])


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_partial_fit_five_calls_lower_the_loss(Estimator, X):
    model = Estimator(**SMALL)
    for _ in range(5):
        model.partial_fit(X)
    assert model.n_iter_ == 5 and len(model.loss_curve_) == 5
    assert np.all(np.diff(model.loss_curve_) < 0), model.loss_curve_
    assert model.early_stopping_ is False and model.validation_scores_ is None


def test_partial_fit_checks_the_features(X):
    model = AutoencoderTransformer(**SMALL).partial_fit(X)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :10])


@pytest.mark.slow
def test_partial_fit_over_memmap_chunks_matches_fit(tmp_path, digits_split):
    X_train, X_test = digits_split[:2]
    path = tmp_path / "X.dat"
    array = np.memmap(path, dtype=np.float32, mode="w+", shape=X_train.shape)
    array[:] = X_train
    array.flush()
    X_disk = np.memmap(path, dtype=np.float32, mode="r", shape=X_train.shape)
    epochs = 6
    chunked = AutoencoderTransformer(n_components=4, hidden_layer_sizes=(32,),
                                     n_threads=1, random_state=0)
    bounds = np.linspace(0, len(X_disk), 11).astype(int)
    for _ in range(epochs):
        for start, stop in zip(bounds[:-1], bounds[1:]):
            chunked.partial_fit(X_disk[start:stop])
    whole = _quiet_fit(AutoencoderTransformer(n_components=4, hidden_layer_sizes=(32,),
                                              max_iter=epochs,
                                              early_stopping=False, random_state=0), X_train)

    def mse(model):
        return np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2)

    assert chunked.n_iter_ == 10 * epochs
    assert mse(chunked) <= 1.05 * mse(whole), (mse(chunked), mse(whole))


@pytest.mark.slow
def test_partial_fit_with_dask_ml_incremental(X):
    dask_array = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    wrappers = pytest.importorskip("dask_ml.wrappers")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        X_dask = dask_array.from_array(X, chunks=(150, X.shape[1]))
        model = wrappers.Incremental(AutoencoderTransformer(**SMALL)).fit(X_dask)
        codes = model.transform(X_dask).compute()
    assert model.estimator_.n_iter_ == 4  # one epoch per chunk
    assert codes.shape == (len(X), 2) and np.isfinite(codes).all()


def test_learning_rate_schedules_in_the_history(X):
    lr = 1e-3
    fits = {schedule: _quiet_fit(AutoencoderTransformer(
        max_iter=8, learning_rate=schedule, learning_rate_init=lr, early_stopping=False,
        **SMALL), X) for schedule in ("constant", "cosine", "cyclic")}
    assert "event_lr" not in fits["constant"].net_.history[-1]
    cosine = np.array(fits["cosine"].net_.history[:, "event_lr"])
    np.testing.assert_allclose(cosine, lr * (1 + np.cos(np.pi * np.arange(8) / 8)) / 2)
    cyclic = np.array([row["event_lr"] for epoch in fits["cyclic"].net_.history[:, "batches"]
                       for row in epoch])
    assert cyclic.min() == pytest.approx(lr / 10) and cyclic.max() == pytest.approx(lr, rel=0.05)
    assert np.any(np.diff(cyclic) < 0) and np.any(np.diff(cyclic) > 0)


def test_adaptive_learning_rate_divides_by_five_on_a_stall(X):
    # With a tol no epoch can meet, every epoch stalls: the rate falls by 5
    # after each two epochs in a row, as MLPRegressor's "adaptive" does.
    model = _quiet_fit(AutoencoderTransformer(
        max_iter=6, learning_rate="adaptive", tol=10.0, n_iter_no_change=6,
        early_stopping=False, **SMALL), X)
    rates = np.array(model.net_.history[:, "event_lr"])
    np.testing.assert_allclose(rates, 1e-3 * np.array([1, 1, 1, 0.2, 0.2, 0.04]))


def test_verbose_under_partial_fit_and_warm_start(X, capsys):
    model = AutoencoderTransformer(verbose=1, **SMALL)
    model.partial_fit(X).partial_fit(X)
    out = capsys.readouterr().out
    assert out.count("train_loss") == 1 and "      2" in out
    _quiet_fit(model.set_params(max_iter=1, warm_start=True), X)
    assert "      3" in capsys.readouterr().out


def _rates(model, per_batch=False):
    history = model.net_.history
    if per_batch:
        return np.array([row["event_lr"] for epoch in history[:, "batches"] for row in epoch])
    return np.array(history[:, "event_lr"])


@pytest.mark.parametrize("schedule", ["cyclic", "adaptive"])
def test_warm_start_continues_the_schedule_of_one_longer_fit(schedule, X):
    # The scheduler's state (CyclicLR's batch count, ReduceLROnPlateau's
    # counters) carries over, so 3 + 3 epochs get the rates of one fit of 6;
    # tol=10 makes every epoch a stall for "adaptive".
    params = dict(learning_rate=schedule, early_stopping=False, tol=10.0,
                  n_iter_no_change=6, **SMALL)
    once = _quiet_fit(AutoencoderTransformer(max_iter=6, **params), X)
    twice = _quiet_fit(AutoencoderTransformer(max_iter=3, **params), X)
    _quiet_fit(twice.set_params(warm_start=True), X)
    per_batch = schedule == "cyclic"
    np.testing.assert_array_equal(_rates(twice, per_batch), _rates(once, per_batch))
    if schedule == "adaptive":
        np.testing.assert_allclose(_rates(twice), 1e-3 * np.array([1, 1, 1, 0.2, 0.2, 0.04]))
    assert twice.loss_curve_ == once.loss_curve_
    np.testing.assert_array_equal(twice.transform(X), once.transform(X))


def test_warm_start_anneals_cosine_anew_and_partial_fit_continues_it(X):
    lr = 1e-3
    model = _quiet_fit(AutoencoderTransformer(max_iter=3, learning_rate="cosine",
                                              early_stopping=False, **SMALL), X)
    _quiet_fit(model.set_params(warm_start=True, max_iter=2), X)
    anneal = lambda n: lr * (1 + np.cos(np.pi * np.arange(n) / n)) / 2  # noqa: E731
    np.testing.assert_allclose(_rates(model), np.concatenate([anneal(3), anneal(2)]))
    # partial_fit's calls are epochs of one fit: the cosine runs over max_iter calls.
    chunked = AutoencoderTransformer(max_iter=8, learning_rate="cosine", **SMALL)
    for _ in range(4):
        chunked.partial_fit(X)
    np.testing.assert_allclose(_rates(chunked), anneal(8)[:4])


def test_warm_start_with_a_new_rate_restarts_the_schedule(X):
    model = _quiet_fit(AutoencoderTransformer(max_iter=2, learning_rate="cyclic",
                                              early_stopping=False, **SMALL), X)
    n_first = sum(len(epoch) for epoch in model.net_.history[:, "batches"])
    _quiet_fit(model.set_params(warm_start=True, learning_rate_init=1e-2), X)
    second = _rates(model, per_batch=True)[n_first:]
    np.testing.assert_allclose(second[0], 1e-3)  # the new cycle's base: 1e-2 / 10
    assert second.max() == pytest.approx(1e-2, rel=0.05)


@pytest.fixture
def read_in_chunks(monkeypatch):
    """Small chunks, groups and samples, and a record of what the fits validate and train on.

    Yields ``(validated, trained)``: the row counts that reached
    ``_validate_input`` (the estimator's path into memory) and the dataset
    classes that ``continue_training`` got.
    """
    from skae import _base, _data
    from skae._net import AutoencoderNet

    monkeypatch.setattr(_data, "MEMMAP_CHUNK_BYTES", 64 * 64 * 4)
    monkeypatch.setattr(_data, "GROUP_BYTES", 4 * 64 * 64 * 4)
    monkeypatch.setattr(_base, "SAMPLE_ROWS", 128)
    validated, trained = [], []
    validate, continue_training = (_base._BaseAutoencoder._validate_input,
                                   AutoencoderNet.continue_training)

    def recording_validate(self, X, *args, **kwargs):
        validated.append(len(X))
        return validate(self, X, *args, **kwargs)

    def recording_continue(self, dataset, *args, **kwargs):
        trained.append(type(dataset).__name__)
        return continue_training(self, dataset, *args, **kwargs)

    monkeypatch.setattr(_base._BaseAutoencoder, "_validate_input", recording_validate)
    monkeypatch.setattr(AutoencoderNet, "continue_training", recording_continue)
    return validated, trained


def _on_disk(tmp_path, X):
    array = np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="w+", shape=X.shape)
    array[:] = X
    array.flush()
    return np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="r", shape=X.shape)


def test_warm_start_on_a_memmap_reads_it_in_chunks(tmp_path, X, read_in_chunks):
    validated, trained = read_in_chunks
    X_disk = _on_disk(tmp_path, X)
    params = dict(early_stopping=False, **SMALL)
    once = _quiet_fit(AutoencoderTransformer(max_iter=4, **params), X_disk)
    twice = _quiet_fit(AutoencoderTransformer(max_iter=2, **params), X_disk)
    _quiet_fit(twice.set_params(warm_start=True), X_disk)
    assert trained == ["ChunkedDataset"]
    assert validated and max(validated) < len(X)  # samples of chunks, never all of X
    # Chunks continue their shuffling too: the same as one fit of 4 on the memmap.
    assert twice.loss_curve_ == once.loss_curve_
    np.testing.assert_array_equal(twice.transform(X), once.transform(X))


def test_partial_fit_on_zarr_reads_it_in_chunks(tmp_path, X, read_in_chunks):
    zarr = pytest.importorskip("zarr")
    validated, trained = read_in_chunks
    X_zarr = zarr.open_array(str(tmp_path / "X.zarr"), mode="w", shape=X.shape,
                             chunks=(50, X.shape[1]), dtype="float32")
    X_zarr[:] = X
    model = AutoencoderTransformer(**SMALL)
    for _ in range(3):
        model.partial_fit(X_zarr)
    assert trained == ["ChunkedDataset"] * 2
    assert max(validated) < len(X)
    assert model.n_iter_ == 3 and np.all(np.diff(model.loss_curve_) < 0)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X_zarr[:, :10])


def test_progress_bar_is_tqdm_auto_under_partial_fit_and_warm_start(X, monkeypatch, capsys):
    import tqdm.auto
    import tqdm.std

    bars = []

    class RecordingBar(tqdm.std.tqdm):
        def update(self, n=1):
            bars[-1] += n
            return super().update(n)

    def recording(*args, **kwargs):
        bars.append(0)
        return RecordingBar(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", recording)
    model = AutoencoderTransformer(verbose=2, **SMALL)
    model.partial_fit(X).partial_fit(X)
    _quiet_fit(model.set_params(max_iter=2, warm_start=True), X)
    n_batches = len(model.net_.history[-1, "batches"])
    assert bars == [n_batches] * 4  # a bar per epoch, one step per batch
    out = capsys.readouterr().out
    assert out.count("train_loss") == 1 and "      4" in out  # the epoch table goes on


@pytest.mark.filterwarnings("ignore")  # the half-built notebook bar complains when collected
def test_progress_bar_in_a_notebook_without_ipywidgets(X, monkeypatch):
    # skorch's own bar switches to tqdm.tqdm_notebook inside Jupyter, which
    # raises ImportError without ipywidgets; tqdm's auto frontend falls back to text.
    import gc

    import tqdm.notebook
    from skorch.callbacks import ProgressBar

    monkeypatch.setattr(tqdm.notebook, "IProgress", None)
    monkeypatch.setattr(ProgressBar, "in_ipynb", lambda self: True)
    with pytest.raises(ImportError, match="ipywidgets"):
        AutoencoderTransformer(max_iter=1, callbacks=[ProgressBar()], **SMALL).fit(X)
    gc.collect()
    model = _quiet_fit(AutoencoderTransformer(max_iter=1, verbose=2, **SMALL), X)
    assert model.n_iter_ == 1


def test_warm_start_refuses_a_new_schedule(X):
    model = _quiet_fit(AutoencoderTransformer(max_iter=1, learning_rate="cyclic", **SMALL), X)
    with pytest.raises(ValueError, match="learning_rate='cosine' \\(fitted with 'cyclic'\\)"):
        model.set_params(warm_start=True, learning_rate="cosine").fit(X)
    with pytest.raises(ValueError, match="set up the training"):
        model.partial_fit(X)
