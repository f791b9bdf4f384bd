"""Training that goes wrong, interruptions, convergence, scaling and determinism."""

import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
from skae._net import LastEpochWeights

ESTIMATORS = [AutoencoderTransformer, DenoisingAutoencoder, VAETransformer]
INITS = ["pca", "random"]
SMALL = dict(n_components=2, hidden_layer_sizes=(16,), batch_size=32, device="cpu",
             n_threads=1, random_state=0)


@pytest.fixture(scope="module")
def X(digits_split):
    """300 digits in [0, 1], float32."""
    return digits_split[0][:300]


@pytest.fixture(scope="module")
def X_standardized(X):
    return StandardScaler().fit_transform(X).astype(np.float32)


def _quiet_fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


def assert_fit_fails_and_leaves_unfitted(est, X, match):
    with pytest.raises(ValueError, match=match):
        _quiet_fit(est, X)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)


class EpochCounter(Callback):
    """Counts epochs begun. skae deep-copies callbacks, so the count is a class list."""

    begun = []

    def on_epoch_begin(self, net, **kwargs):
        EpochCounter.begun.append(len(net.history))


class Interrupt(Callback):
    """Raise KeyboardInterrupt in epoch ``epoch``: mid-epoch or at its end."""

    def __init__(self, epoch, where):
        self.epoch = epoch
        self.where = where

    def on_batch_end(self, net, training=False, **kwargs):
        if self.where == "batch" and training and len(net.history) == self.epoch \
                and len(net.history[-1, "batches"]) == 2:
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if self.where == "epoch" and len(net.history) == self.epoch:
            raise KeyboardInterrupt


# ----------------------------------------------------------------------
# A loss that becomes NaN or inf
# ----------------------------------------------------------------------
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("cls, learning_rate", [
    (AutoencoderTransformer, 1.0),  # diverges after a few epochs
    (AutoencoderTransformer, 1e3),
    (DenoisingAutoencoder, 1e3),
    (VAETransformer, 1.0),
])
def test_diverging_loss_stops_at_its_epoch_with_advice(cls, learning_rate, init,
                                                       X_standardized):
    EpochCounter.begun.clear()
    est = cls(**SMALL, init=init, optimizer="sgd", learning_rate_init=learning_rate,
              max_iter=20, early_stopping=False, callbacks=[EpochCounter()])
    with pytest.raises(ValueError, match=(
            r"Training diverged at epoch \d+: the train loss is (nan|inf)\. Lower "
            rf"learning_rate_init \(now {learning_rate!r}\) or scale the data first "
            r"\(e\.g\. StandardScaler or MinMaxScaler\)")) as info:
        _quiet_fit(est, X_standardized)
    epoch = int(re.search(r"epoch (\d+)", str(info.value)).group(1))
    assert len(EpochCounter.begun) == epoch  # no epoch after the one that diverged
    if learning_rate == 1.0 and cls is AutoencoderTransformer:
        assert epoch > 1
    with pytest.raises(NotFittedError):
        check_is_fitted(est)


def test_vae_whose_last_step_overflows_its_kl_term_is_caught():
    # Found by tests/test_properties.py: on unscaled data the last step left
    # log-variances near 89, whose exp overflows float32. The outputs were
    # finite, so fit succeeded, and score_samples then failed on the
    # training data itself. From the random start: the PCA start needs two rows.
    X = np.array([[-30, 326241, -30, -30]], dtype=np.int32)
    est = VAETransformer(n_components=1, init="random", hidden_layer_sizes=(), max_iter=1,
                         batch_size=2, device="cpu", n_threads=1, random_state=0)
    assert_fit_fails_and_leaves_unfitted(est, X, (
        r"Training diverged at epoch 1: after its last step the loss on the training "
        r"data is (inf|nan)\. .* scale the data first"))


class BreakWeightsAtEpochEnd(Callback):
    """Write NaN into the first weight tensor at the end of epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            with torch.no_grad():
                next(net.module_.parameters()).view(-1)[0] = float("nan")


# The module's first parameter: the linear path beside the network with the
# PCA start, the network's first layer without.
FIRST_WEIGHTS = {"pca": r"encoder\.linear\.weight", "random": r"encoder\.hidden\.0\.weight"}


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_weights_broken_by_the_last_step_are_caught(early_stopping, init, X):
    est = AutoencoderTransformer(**SMALL, init=init, max_iter=3,
                                 early_stopping=early_stopping,
                                 callbacks=[BreakWeightsAtEpochEnd(3)])
    assert_fit_fails_and_leaves_unfitted(est, X, (
        r"Training diverged at epoch 3: after its last step the weights "
        rf"'{FIRST_WEIGHTS[init]}' hold NaN or inf\. Lower learning_rate_init"))


@pytest.mark.parametrize("init", INITS)
def test_weights_broken_before_the_last_epoch_stop_the_next_one(init, X):
    EpochCounter.begun.clear()
    est = AutoencoderTransformer(**SMALL, init=init, max_iter=5,
                                 callbacks=[BreakWeightsAtEpochEnd(2), EpochCounter()])
    with pytest.raises(ValueError, match=r"Training diverged at epoch 3: the train loss is nan"):
        _quiet_fit(est, X)
    assert len(EpochCounter.begun) == 3


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_failed_refit_keeps_the_previous_model(cls, X_standardized):
    est = _quiet_fit(cls(**SMALL, max_iter=3), X_standardized)
    codes, net, loss_curve = est.transform(X_standardized), est.net_, est.loss_curve_
    est.set_params(optimizer="sgd", learning_rate_init=1e3)
    with pytest.raises(ValueError, match="diverged"):
        _quiet_fit(est, X_standardized)
    assert est.net_ is net and est.loss_curve_ == loss_curve and est.n_iter_ == 3
    np.testing.assert_array_equal(est.transform(X_standardized), codes)
    # The new parameters stay set: the user sees what was asked for.
    assert est.learning_rate_init == 1e3
    with pytest.raises(ValueError, match="NaN"):
        est.fit(np.full((4, 64), np.nan))
    np.testing.assert_array_equal(est.transform(X_standardized), codes)


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_last_step_that_breaks_the_weights_is_caught(early_stopping, init, X_standardized):
    # Without early stopping no validation pass measures the last step's
    # weights: the check after training must.
    est = AutoencoderTransformer(**{**SMALL, "batch_size": 512}, init=init,
                                 early_stopping=early_stopping, optimizer="sgd",
                                 learning_rate_init=1e35, max_iter=1)
    try:
        _quiet_fit(est, X_standardized)
    except ValueError as exc:
        assert "diverged" in str(exc)
    else:
        assert np.isfinite(est.score(X_standardized))


# ----------------------------------------------------------------------
# KeyboardInterrupt
# ----------------------------------------------------------------------
# Without early stopping, which in these few epochs would return the PCA
# start in both runs and make the comparison of their codes say nothing.
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("where, n_finished", [("batch", 2), ("epoch", 3)])
def test_interrupt_keeps_the_last_finished_epoch(cls, init, where, n_finished, X):
    """Ctrl-C in epoch 3 (mid-epoch, or at its end) keeps the finished epochs' weights."""
    params = dict(SMALL, init=init, early_stopping=False)
    est = cls(**params, max_iter=10, callbacks=[Interrupt(epoch=3, where=where)])
    with pytest.warns(UserWarning, match=rf"interrupted.*last finished epoch \({n_finished}\)"):
        est.fit(X)
    assert est.n_iter_ == n_finished == len(est.loss_curve_)
    # Bit-identical to a run that was asked for exactly those epochs.
    reference = _quiet_fit(cls(**params, max_iter=n_finished), X)
    assert est.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(est.transform(X), reference.transform(X))
    assert np.isfinite(est.score(X))


@pytest.mark.parametrize("init", INITS)
def test_interrupt_restores_batchnorm_statistics_too(init, X):
    # The running mean and variance are buffers updated in place every batch.
    params = dict(SMALL, init=init, early_stopping=False, batch_norm=True, max_iter=10)
    est = AutoencoderTransformer(**params, callbacks=[Interrupt(epoch=3, where="batch")])
    with pytest.warns(UserWarning, match=r"interrupted.*last finished epoch \(2\)"):
        est.fit(X)
    reference = _quiet_fit(AutoencoderTransformer(**{**params, "max_iter": 2}), X)
    for name, tensor in reference.net_.module_.state_dict().items():
        torch.testing.assert_close(est.net_.module_.state_dict()[name], tensor, rtol=0, atol=0)


def test_last_epoch_weights_follow_swapped_data_and_a_new_module():
    def module(value):
        layer = torch.nn.Linear(2, 2)
        torch.nn.init.constant_(layer.weight, value)
        return torch.nn.Sequential(layer, torch.nn.BatchNorm1d(2))

    net = SimpleNamespace(module_=module(1.0))
    callback = LastEpochWeights()
    callback.on_train_begin(net)
    with torch.no_grad():
        net.module_[0].weight.add_(1.0)  # an optimizer step: in place
    net.module_[1].running_mean.fill_(5.0)
    callback.on_epoch_end(net)
    assert callback.state_["0.weight"].eq(2.0).all()
    assert callback.state_["1.running_mean"].eq(5.0).all()
    net.module_[0].weight.data = torch.full((2, 2), 3.0)  # what module.to() does
    callback.on_epoch_end(net)
    assert callback.state_["0.weight"].eq(3.0).all()
    net.module_ = module(7.0)  # skorch's initialize_module
    callback.on_epoch_end(net)
    assert callback.state_["0.weight"].eq(7.0).all()
    assert callback.state_["1.running_mean"].eq(0.0).all()


def test_interrupt_in_the_first_epoch_leaves_a_usable_model(X):
    est = AutoencoderTransformer(**SMALL, max_iter=10, early_stopping=False,
                                 callbacks=[Interrupt(1, "batch")])
    with pytest.warns(UserWarning, match=r"interrupted.*last finished epoch \(0\)"):
        est.fit(X)
    assert est.n_iter_ == 0 and est.loss_curve_ == []
    assert np.isfinite(est.transform(X)).all()


def test_interrupt_in_the_first_epoch_with_early_stopping(X):
    est = AutoencoderTransformer(**SMALL, max_iter=10, early_stopping=True,
                                 callbacks=[Interrupt(1, "batch")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    assert any("interrupted" in str(w.message) for w in caught)
    assert est.n_iter_ == 0 and np.isfinite(est.transform(X)).all()


# ----------------------------------------------------------------------
# Convergence and early stopping
# ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_max_iter_reached_warns_convergence(cls, init, early_stopping, X):
    # learning_rate_init=0.01 beats the PCA start on the validation rows within
    # the 3 epochs; a fit that never does warns so instead (test_pca_start.py).
    monitored = "validation" if early_stopping else "training"
    with pytest.warns(ConvergenceWarning, match=(
            rf"reached max_iter=3 epochs while the {monitored} loss was still "
            r"improving.*raise max_iter")):
        est = cls(**SMALL, init=init, early_stopping=early_stopping,
                  learning_rate_init=0.01, max_iter=3, tol=0.0).fit(X)
    assert est.n_iter_ == 3 and est.early_stopping_ is early_stopping
    assert est.best_epoch_ > 0


@pytest.mark.parametrize("init", INITS)
def test_converged_fit_stops_early_without_warning(init, X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = AutoencoderTransformer(**SMALL, init=init, early_stopping=False, max_iter=50,
                                     tol=10.0, n_iter_no_change=1).fit(X)
    assert not [w for w in caught if issubclass(w.category, (ConvergenceWarning, UserWarning))]
    # On the training loss, with no start among the candidates: the first
    # epoch improves on nothing, the second misses.
    assert est.n_iter_ == 2 == est.best_epoch_


# A learning rate at which training beats the start, then overfits the 240 rows.
@pytest.mark.parametrize("init, learning_rate", [("random", 0.1), ("pca", 0.01)])
def test_early_stopping_restores_the_best_validation_weights(init, learning_rate, X):
    est = _quiet_fit(AutoencoderTransformer(
        **{**SMALL, "batch_size": 64}, init=init, learning_rate_init=learning_rate,
        max_iter=100, early_stopping=True, validation_fraction=0.2, tol=0.0,
        n_iter_no_change=3), X)
    valid_losses = list(est.net_.history[:, "valid_loss"])
    # The start (epoch 0), scored before the first step, is a candidate too;
    # here a trained epoch beat it.
    candidates = [-est.validation_start_score_, *valid_losses]
    best_loss = min(candidates)
    assert est.best_epoch_ == int(np.argmin(candidates)) >= 1
    # It stopped n_iter_no_change epochs after the best one, which was worse...
    assert est.n_iter_ == est.best_epoch_ + 3 < 100
    assert valid_losses[-1] > best_loss
    # ...and the weights are the best epoch's: the held-out rows (the same
    # split skae draws from random_state) score exactly the best loss.
    seed = check_random_state(0).randint(np.iinfo(np.int32).max)
    held_out = np.random.RandomState(seed).permutation(len(X))[:round(0.2 * len(X))]
    assert -est.score(X[held_out]) == pytest.approx(best_loss, rel=1e-5)
    assert max(est.validation_scores_) == pytest.approx(est.score(X[held_out]), rel=1e-5)


# ----------------------------------------------------------------------
# Inputs that scale badly
# ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def millions(X):
    return X[:64, :8] * 1e6


@pytest.mark.parametrize("cls", [AutoencoderTransformer, DenoisingAutoencoder])
def test_sigmoid_on_unscaled_columns_warns_to_scale(cls, millions):
    # A sigmoid output needs the random start (the PCA start refuses it).
    with pytest.warns(UserWarning, match=r"output_activation='sigmoid'.*spans.*"
                                         r"MinMaxScaler.*StandardScaler"):
        _fit_only_warning_of_interest(cls(**SMALL, init="random",
                                          output_activation="sigmoid", max_iter=1),
                                      millions)


def _fit_only_warning_of_interest(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)


@pytest.mark.parametrize("init", INITS)
def test_bernoulli_on_unscaled_columns_says_to_scale(init, millions):
    with pytest.raises(ValueError, match="likelihood='bernoulli' needs data in \\[0, 1\\]"
                                         ".*MinMaxScaler"):
        VAETransformer(**SMALL, init=init, likelihood="bernoulli", max_iter=1).fit(millions)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_inputs_that_overflow_the_network_never_give_silent_nan(cls, init, X_standardized):
    est = _quiet_fit(cls(**SMALL, init=init, max_iter=1), X_standardized[:, :5])
    huge = np.random.default_rng(0).choice([3e38, -3e38, 1.0], size=(50, 5))
    for method in ("transform", "reconstruct", "score_samples"):
        try:
            output = getattr(est, method)(huge)
        except ValueError:
            continue
        assert not np.isnan(output).any(), method


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_transform_finds_one_non_finite_value_in_a_later_batch(cls, init, value, X):
    """transform checks finiteness batch by batch: a value deep in X is found.

    -inf in one pixel can become all zeros after the first ReLU; a check of the
    codes alone would miss it. The check sits on the encoder's first Linear
    layer: the linear path with the PCA start, the network's first layer
    without.
    """
    est = _quiet_fit(cls(**SMALL, init=init, max_iter=1), X)
    rows = np.tile(X, (10, 1))  # 3,000 rows: several inference batches
    rows[2500, 7] = value
    for method in ("transform", "reconstruct", "score_samples", "score"):
        with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
            getattr(est, method)(rows)
    hooked = [name for name, layer in est.net_.module_.named_modules() if layer._forward_hooks]
    assert not hooked, f"the check's hook stayed on {hooked}"
    rows[2500, 7] = 0.5
    np.testing.assert_array_equal(est.transform(rows)[:300], est.transform(X))


@pytest.mark.parametrize("init, n_rows, batch_size, match", [
    # The PCA start refuses a single row first (it needs two).
    ("random", 1, "auto", r"batch_norm=True cannot train on n_samples=1"),
    ("random", 2, 1, r"batch_norm=True cannot train on batches of one row"),
    ("pca", 2, 1, r"batch_norm=True cannot train on batches of one row"),
])
def test_batch_norm_on_a_single_row_names_the_parameter(init, n_rows, batch_size, match):
    X = np.arange(3.0 * n_rows).reshape(n_rows, 3)
    with pytest.raises(ValueError, match=match):
        AutoencoderTransformer(n_components=1, init=init, hidden_layer_sizes=(3,),
                               batch_norm=True, batch_size=batch_size,
                               max_iter=1).fit(X)


# ----------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------
DETERMINISM = {
    "mlp": dict(hidden_layer_sizes=(16, 8), dropout=0.1),
    "conv": dict(architecture="conv", conv_channels=(4, 8), early_stopping=False),
}


def _codes(cls, kind, X, random_state=0, n_threads=1, *, init):
    data = X[:128] if kind == "mlp" else X[:128].reshape(-1, 8, 8)
    params = dict(DETERMINISM[kind])
    if kind == "mlp":
        # With early stopping (the validation split, the restored weights)
        # from the random start. Two epochs never beat the PCA start on the
        # validation rows, so there that fit would return the start itself,
        # the same for every seed: train without.
        params["early_stopping"] = init == "random"
    est = cls(n_components=2, init=init, batch_size=32, max_iter=2, n_threads=n_threads,
              device="cpu", random_state=random_state, **params)
    _quiet_fit(est, data)
    assert est.best_epoch_ == est.n_iter_ == 2, "the codes must come from trained weights"
    return est.transform(data)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("kind", ["mlp", "conv"])
@pytest.mark.parametrize("init", INITS)
def test_same_random_state_gives_bit_identical_codes(cls, kind, init, X):
    first = _codes(cls, kind, X, init=init)
    np.testing.assert_array_equal(_codes(cls, kind, X, init=init), first)
    assert not np.array_equal(_codes(cls, kind, X, random_state=1, init=init), first)


@pytest.mark.slow
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("kind", ["mlp", "conv"])
@pytest.mark.parametrize("init", INITS)
def test_same_random_state_gives_bit_identical_codes_with_two_threads(cls, kind, init, X):
    first = _codes(cls, kind, X, n_threads=2, init=init)
    np.testing.assert_array_equal(_codes(cls, kind, X, n_threads=2, init=init), first)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("init", INITS)
def test_random_state_none_varies(cls, init, X):
    assert not np.array_equal(_codes(cls, "mlp", X, None, init=init),
                              _codes(cls, "mlp", X, None, init=init))


def test_same_random_state_gives_bit_identical_codes_in_a_fresh_process(X, tmp_path):
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(f"""
        import sys, warnings
        import numpy as np
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_reliability import ESTIMATORS, INITS, _codes
        X = np.load(sys.argv[1] + "/X.npy")
        np.savez(sys.argv[1] + "/codes.npz", **{{
            f"{{cls.__name__}}_{{kind}}_{{init}}": _codes(cls, kind, X, init=init)
            for cls in ESTIMATORS for kind in ("mlp", "conv") for init in INITS}})
    """)
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=300,
                   capture_output=True)
    with np.load(tmp_path / "codes.npz") as codes:
        assert len(codes.files) == 2 * len(ESTIMATORS) * len(INITS)
        for name in codes.files:
            cls_name, kind, init = name.rsplit("_", 2)
            cls = next(c for c in ESTIMATORS if c.__name__ == cls_name)
            np.testing.assert_array_equal(codes[name], _codes(cls, kind, X, init=init),
                                          err_msg=name)


# ----------------------------------------------------------------------
# Input that scikit-learn's checks reject obscurely or would convert silently
# ----------------------------------------------------------------------
def _unusable_inputs():
    pd = pytest.importorskip("pandas")
    dates = pd.date_range("2020-01-01", periods=40)
    return {
        "None": (None, TypeError, "X is None; pass a 2-D array-like"),
        "date column": (pd.DataFrame({"when": dates, "x": np.arange(40.0)}), TypeError,
                        r"dates or durations \(columns \['when'\]\)"),
        "tz-aware dates only": (pd.DataFrame({"when": dates.tz_localize("UTC"),
                                              "other": dates.tz_localize("UTC")}),
                                TypeError, "dates or durations"),
        "durations": (pd.DataFrame({"d": pd.to_timedelta(np.arange(40), "s"),
                                    "x": np.arange(40.0)}), TypeError, "dates or durations"),
        "datetime64 array": (np.asarray(dates).reshape(20, 2), TypeError,
                             "skae needs numbers"),
        "frame without columns": (pd.DataFrame(index=range(40)), ValueError,
                                  "DataFrame with 0 columns"),
    }


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("case", ["None", "date column", "tz-aware dates only", "durations",
                                  "datetime64 array", "frame without columns"])
def test_unusable_input_gets_a_clear_error_in_fit_and_transform(cls, case, X):
    data, error, message = _unusable_inputs()[case]
    with pytest.raises(error, match=message):
        cls(**SMALL, max_iter=1).fit(data)
    fitted = _quiet_fit(cls(**SMALL, max_iter=1), X[:, :2])
    with pytest.raises(error, match=message):
        fitted.transform(data)


@pytest.mark.parametrize("where", ["batch", "epoch"])
def test_interrupt_with_early_stopping_names_the_weights_it_keeps(where, X):
    # With early stopping the kept weights are the best epoch's on the
    # validation rows, which the warning must say, not the last epoch's.
    est = AutoencoderTransformer(**SMALL, max_iter=10, early_stopping=True,
                                 learning_rate_init=0.01,
                                 callbacks=[Interrupt(epoch=4, where=where)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    (message,) = [str(w.message) for w in caught if "interrupted" in str(w.message)]
    assert f"keeping the weights of epoch {est.best_epoch_}, the best on the " \
           "validation rows" in message
    kept = (est.validation_start_score_ if est.best_epoch_ == 0
            else est.validation_scores_[est.best_epoch_ - 1])
    assert kept >= max([est.validation_start_score_, *est.validation_scores_]) - est.tol


def _monitor_run(scores, start_score, patience, threshold=0.0, threshold_mode="abs"):
    """Drive a ConvergenceMonitor through epochs of the given validation losses."""
    from skorch.history import History

    from skae._net import ConvergenceMonitor

    module = torch.nn.Linear(1, 1)
    torch.nn.init.zeros_(module.weight)
    net = SimpleNamespace(history=History(), module_=module, verbose=0, _resuming=False,
                          evaluate=lambda dataset: {"valid_loss": start_score})
    monitor = ConvergenceMonitor(monitor="valid_loss", patience=patience,
                                 threshold=threshold, threshold_mode=threshold_mode,
                                 load_best=True)
    monitor.on_train_begin(net)
    for epoch, score in enumerate(scores, start=1):
        net.history.new_epoch()
        net.history.record("epoch", epoch)
        monitor.on_epoch_begin(net, dataset_valid=object())
        with torch.no_grad():  # each epoch's weights are its number
            module.weight.fill_(epoch)
        net.history.record("valid_loss", score)
        try:
            monitor.on_epoch_end(net)
        except KeyboardInterrupt:
            break
    monitor.on_train_end(net)
    return len(net.history), monitor.best_epoch_, float(module.weight)


def test_patience_counts_from_the_best_trained_epoch_not_the_start():
    # The first epochs lose to the start, then training overtakes it: with
    # patience 2 counted against the start, it would stop at epoch 2.
    n_epochs, best, weight = _monitor_run([1.5, 1.4, 1.3, 0.8, 0.9, 0.95], 1.0, patience=2)
    assert (n_epochs, best, weight) == (6, 4, 4.0)


def test_the_start_is_restored_when_no_trained_epoch_beats_it():
    n_epochs, best, weight = _monitor_run([1.5, 1.2, 1.3, 1.4], 1.0, patience=2)
    assert (n_epochs, best, weight) == (4, 0, 0.0)


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_relative_tol_asks_the_same_share_at_any_scale_and_sign(sign, scale):
    # Losses that fall by 0.5% then by 0.02% an epoch, from a start of
    # sign * scale: with tol=1e-3 the first epochs count and the later ones
    # do not, whatever the loss's unit, a negative ELBO's included.
    start = sign * scale
    losses, loss = [], start
    for share in [5e-3] * 3 + [2e-4] * 4:
        loss -= share * abs(loss)
        losses.append(loss)
    n_epochs, best, _ = _monitor_run(losses, start, patience=3, threshold=1e-3,
                                     threshold_mode="rel")
    assert (n_epochs, best) == (6, 3)


def test_default_tol_is_relative(X):
    est = AutoencoderTransformer(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X[:200])
    monitor = dict(est.net_.callbacks_)["convergence"]
    assert (monitor.threshold_mode, monitor.threshold) == ("rel", 1e-4)
