"""Checkpoints through ``callbacks=`` and resuming a fit that died."""

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from skorch.callbacks import Callback, Checkpoint, TrainEndCheckpoint

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
from skae.callbacks import EstimatorCheckpoint

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(n_components=2, hidden_layer_sizes=(16,), n_threads=1, random_state=0,
             max_iter=6)
# With early stopping: a rate at which no epoch beats the PCA start, so the
# right best epoch (0) is one only a resumed convergence monitor remembers.
EARLY = dict(SMALL, early_stopping=True, learning_rate_init=0.1, random_state=1)
LATE = dict(SMALL, early_stopping=False)


def _digits():
    from sklearn.datasets import load_digits

    return (load_digits().data / 16).astype(np.float32)


@pytest.fixture(scope="module")
def X():
    return _digits()[:600]


def _quiet_fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


class Interrupted(Exception):
    pass


class InterruptAfter(Callback):
    """Raise after ``epoch`` epochs, once the checkpoints before it are written."""

    def __init__(self, epoch=3):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise Interrupted


def _interrupted_then_resumed(Estimator, params, X, path):
    model = Estimator(callbacks=[EstimatorCheckpoint(path), InterruptAfter(3)], **params)
    with pytest.raises(Interrupted):
        _quiet_fit(model, X)
    with open(path, "rb") as file:
        resumed = pickle.load(file)
    assert resumed.n_iter_ == 3 and len(resumed.loss_curve_) == 3
    return _quiet_fit(resumed.set_params(warm_start=True), X)


def _assert_same_fit(resumed, once, X):
    assert resumed.n_iter_ == once.n_iter_ == 6
    assert resumed.loss_curve_ == once.loss_curve_
    assert resumed.validation_scores_ == once.validation_scores_
    assert resumed.best_epoch_ == once.best_epoch_
    np.testing.assert_array_equal(resumed.transform(X), once.transform(X))


@pytest.mark.parametrize("params", [LATE, EARLY], ids=["last_weights", "early_stopping"])
@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, DenoisingAutoencoder,
                                       VAETransformer])
def test_resumed_checkpoint_is_the_uninterrupted_fit(Estimator, params, X, tmp_path):
    # Bit-identical on the CPU: the checkpoint holds every state the epochs
    # left depend on, and they run the same arithmetic.
    once = _quiet_fit(Estimator(**params), X)
    resumed = _interrupted_then_resumed(Estimator, params, X, tmp_path / "model.pkl")
    _assert_same_fit(resumed, once, X)


@pytest.mark.parametrize("learning_rate", ["cyclic", "cosine", "adaptive"])
def test_resumed_checkpoint_follows_the_schedule(learning_rate, X, tmp_path):
    # The schedule's state is in the checkpoint: the resumed epochs get the
    # rates of the uninterrupted fit (per batch for "cyclic").
    params = dict(LATE, learning_rate=learning_rate, dropout=0.1)
    once = _quiet_fit(AutoencoderTransformer(**params), X)
    resumed = _interrupted_then_resumed(AutoencoderTransformer, params, X,
                                        tmp_path / "model.pkl")
    _assert_same_fit(resumed, once, X)

    def rates(model):
        history = model.net_.history
        return [row.get("event_lr") for epoch in history for row in epoch["batches"]] + [
            epoch.get("event_lr") for epoch in history]

    assert rates(resumed) == rates(once)


def test_checkpoint_of_a_finished_fit_resumes_with_nothing_left(X, tmp_path):
    path = tmp_path / "model.pkl"
    fitted = _quiet_fit(AutoencoderTransformer(callbacks=[EstimatorCheckpoint(path)],
                                               **EARLY), X)
    with open(path, "rb") as file:
        resumed = pickle.load(file)
    _quiet_fit(resumed.set_params(warm_start=True), X)
    _assert_same_fit(resumed, fitted, X)
    # The resumed fit is done: a further warm start trains max_iter more epochs.
    _quiet_fit(resumed, X)
    assert resumed.n_iter_ == 12


def test_checkpoint_of_partial_fit_calls_goes_on_with_the_next_chunk(X, tmp_path):
    path = tmp_path / "model.pkl"
    chunks = np.array_split(X, 4)
    once = AutoencoderTransformer(**SMALL)
    for chunk in chunks:
        once.partial_fit(chunk)
    model = AutoencoderTransformer(callbacks=[EstimatorCheckpoint(path)], **SMALL)
    for chunk in chunks[:3]:
        model.partial_fit(chunk)
    with open(path, "rb") as file:
        resumed = pickle.load(file)
    assert resumed.n_iter_ == 3
    resumed.partial_fit(chunks[3])
    assert resumed.loss_curve_ == once.loss_curve_
    np.testing.assert_array_equal(resumed.transform(X), once.transform(X))


def test_checkpoint_outside_an_estimator_says_so():
    import torch
    from skorch import NeuralNet

    net = NeuralNet(torch.nn.Linear(2, 2), criterion=torch.nn.MSELoss, max_epochs=1,
                    train_split=None, callbacks=[EstimatorCheckpoint("unused.pkl")])
    data = np.zeros((4, 2), np.float32)
    with pytest.raises(TypeError, match="EstimatorCheckpoint saves a skae estimator"):
        net.fit(data, data)


def test_skorch_checkpoints_work_through_callbacks(X, tmp_path):
    every_epoch, at_end = tmp_path / "every_epoch", tmp_path / "at_end"
    model = _quiet_fit(AutoencoderTransformer(callbacks=[
        Checkpoint(dirname=str(every_epoch), monitor=None),
        TrainEndCheckpoint(dirname=str(at_end)),
    ], **LATE), X)
    for folder in (every_epoch, at_end):
        names = {path.name.replace("train_end_", "") for path in folder.iterdir()}
        assert {"params.pt", "optimizer.pt", "history.json"} <= names
    # skorch's own loading puts the saved weights into another estimator's net.
    other = _quiet_fit(AutoencoderTransformer(**dict(LATE, random_state=1)), X)
    assert not np.array_equal(other.transform(X), model.transform(X))
    other.net_.load_params(f_params=str(at_end / "train_end_params.pt"))
    np.testing.assert_array_equal(other.transform(X), model.transform(X))


# The subprocess of the SIGKILL test: "kill" fits with a checkpoint each epoch
# and kills itself with SIGKILL at the end of epoch 3, after the checkpoint is
# written; "resume" loads the checkpoint in a new process and finishes the fit.
SCRIPT = textwrap.dedent('''
    import json, os, pickle, signal, sys, warnings

    import numpy as np
    from skorch.callbacks import Callback

    from sklearn.datasets import load_digits

    from skae import AutoencoderTransformer
    from skae.callbacks import EstimatorCheckpoint

    class KillAfterEpoch3(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 3:
                os.kill(os.getpid(), signal.SIGKILL)

    warnings.simplefilter("ignore")
    mode, path, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    X = (load_digits().data / 16).astype(np.float32)[:600]
    if mode == "kill":
        callbacks = [EstimatorCheckpoint(path), KillAfterEpoch3()]
        AutoencoderTransformer(callbacks=callbacks, **params).fit(X)
        sys.exit("not killed")
    with open(path, "rb") as file:
        model = pickle.load(file)
    assert model.n_iter_ == 3, model.n_iter_
    model.set_params(warm_start=True).fit(X)
    np.save(path + ".codes.npy", model.transform(X))
    with open(path + ".json", "w") as file:
        json.dump({"n_iter": model.n_iter_, "loss_curve": model.loss_curve_,
                   "best_epoch": model.best_epoch_}, file)
''')


def _run(script, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    # subprocess.run waits for the child, and kills it if it outlives the timeout.
    return subprocess.run([sys.executable, str(script), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("params", [LATE, EARLY],
                         ids=["last_weights", "early_stopping"])
def test_fit_killed_by_sigkill_resumes_in_a_new_process(params, X, tmp_path):
    # On the CPU with fixed threads the resumed fit is bit-identical to an
    # uninterrupted one (fitted here, in the test's process): the checkpoint
    # holds everything the remaining epochs depend on (weights, Adam's
    # moments, the generators' states, the convergence monitor's best epoch,
    # best weights and misses), and the arithmetic is the same.
    script, path = tmp_path / "fit.py", str(tmp_path / "model.pkl")
    script.write_text(SCRIPT)
    killed = _run(script, "kill", path, json.dumps(params))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _run(script, "resume", path, json.dumps(params))
    assert resumed.returncode == 0, resumed.stderr
    with open(path + ".json") as file:
        result = json.load(file)
    once = _quiet_fit(AutoencoderTransformer(**params), X)
    assert result["n_iter"] == 6
    assert result["loss_curve"] == once.loss_curve_
    assert result["best_epoch"] == once.best_epoch_
    np.testing.assert_array_equal(np.load(path + ".codes.npy"), once.transform(X))
