"""Data-parallel training under torchrun (``distributed="auto"``), on CPU with gloo.

The launch tests run ``torch.distributed.run`` (torchrun) or two plain
processes with torchrun's environment, bound to 127.0.0.1; every process they
start is stopped in a ``finally``, and each test checks that none is left.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from sklearn.datasets import load_digits

from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
from skae._data import ArrayDataset, BatchIterator, ChunkedDataset, ChunkIterator
from skae._distributed import ShardIterator, distributed_timeout

REPO_ROOT = Path(__file__).resolve().parents[1]
ESTIMATORS = {cls.__name__: cls for cls in
              (AutoencoderTransformer, DenoisingAutoencoder, VAETransformer)}

# The script every rank runs: the user's unchanged fit, then what the test
# compares (weights, codes, test MSE, the rank's pid), one file per rank.
SCRIPT = """
import json, os, pickle, sys
import numpy as np, torch
from skorch.callbacks import Callback
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import skae

out, name, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
rank = int(os.environ.get("RANK", "0"))
with open(os.path.join(out, f"pid_{rank}"), "w") as file:
    file.write(str(os.getpid()))


class DieAtEpoch(Callback):
    def on_epoch_end(self, net, **kwargs):
        if rank == 1 and len(net.history) == int(os.environ["DIE_AT_EPOCH"]):
            os._exit(1)


X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0, stratify=y)
if os.environ.get("X_ZARR"):  # the same rows, in a zarr array read chunk by chunk
    import zarr

    X_train = zarr.open_array(os.environ["X_ZARR"], mode="r")
if os.environ.get("USER_GROUP"):  # the script's own process group, which skae must keep
    torch.distributed.init_process_group("gloo")
callbacks = [DieAtEpoch()] if "DIE_AT_EPOCH" in os.environ else None
est = getattr(skae, name)(**params, callbacks=callbacks).fit(X_train)
group_after_fit = torch.distributed.is_initialized()
torch.save(est.net_.module_.state_dict(), os.path.join(out, f"state_{rank}.pt"))
np.save(os.path.join(out, f"codes_{rank}.npy"), est.transform(X_test))
mse = float(np.mean((est.reconstruct(X_test) - X_test) ** 2))
with open(os.path.join(out, f"result_{rank}.json"), "w") as file:
    last_epoch = est.net_.history[-1]
    json.dump({"mse": mse, "n_iter": est.n_iter_, "loss_curve": est.loss_curve_,
               "module": type(est.net_.module_).__name__,
               "batches": last_epoch["train_batch_count"],
               "gathered": sum("train_loss" in row for row in last_epoch["batches"]),
               "group_after_fit": group_after_fit,
               "cycle": getattr(getattr(dict(est.net_.callbacks_).get("lr_scheduler"),
                                        "lr_scheduler_", None), "total_size", None)},
              file)
if rank == 0:
    est.save(os.path.join(out, "model.safetensors"))
# The fitted model needs no process group: it pickles, and trains on alone.
copy = pickle.loads(pickle.dumps(est))
assert np.array_equal(copy.transform(X_test), est.transform(X_test))
est.set_params(distributed=False, warm_start=True, max_iter=1).fit(X_train)
"""

SMALL = {"n_components": 8, "hidden_layer_sizes": [64], "max_iter": 20, "random_state": 0,
         "n_threads": 1}
GLOBAL_BATCH = 64


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(**extra):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1",
           # gloo's own connections on the loopback interface.
           "GLOO_SOCKET_IFNAME": "lo", "SKAE_DISTRIBUTED_TIMEOUT": "20"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return {**env, **extra}


def _stop(processes):
    """Kill what is still running of ``processes`` (started in new sessions) and their children."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _rank_pids(out, world_size=2):
    return [int((out / f"pid_{rank}").read_text()) for rank in range(world_size)
            if (out / f"pid_{rank}").exists()]


def _assert_no_process_left(out, processes):
    pids = [*_rank_pids(out), *(process.pid for process in processes)]
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in pids if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left running: {alive}"


def _write_script(tmp_path):
    script = tmp_path / "fit_digits.py"
    script.write_text(SCRIPT)
    return script


def torchrun(tmp_path, name, params, timeout=120, **env):
    """Run SCRIPT under ``torchrun --standalone --nproc_per_node=2``; (returncode, output)."""
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "--local-addr=127.0.0.1", "--max-restarts=0",
               str(_write_script(tmp_path)), str(out), name, json.dumps(params)]
    process = subprocess.Popen(command, env=_environment(**env), cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        _stop([process])
    _assert_no_process_left(out, [process])
    return process.returncode, output, out


def _digits_split():
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, test_size=0.25, random_state=0, stratify=y)


def _reference_fit(name, params, batch_size, X_train=None):
    """The single-process fit of SCRIPT's data, and its test rows."""
    digits_train, X_test = _digits_split()
    X_train = digits_train if X_train is None else X_train
    est = ESTIMATORS[name](**{**params, "batch_size": batch_size}).fit(X_train)
    return est, X_test


def _check_data_parallel_fit(tmp_path, name, params, X_train=None, **env):
    # batch_size is per rank: two ranks of 32 rows make the reference's global 64.
    returncode, output, out = torchrun(
        tmp_path, name, {**params, "batch_size": GLOBAL_BATCH // 2}, **env)
    assert returncode == 0, output
    states = [torch.load(out / f"state_{rank}.pt") for rank in range(2)]
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])
    np.testing.assert_array_equal(np.load(out / "codes_0.npy"), np.load(out / "codes_1.npy"))
    results = [json.loads((out / f"result_{rank}.json").read_text()) for rank in range(2)]
    assert results[0] == results[1]
    # skae destroys the process group it created, and only that one.
    assert results[0]["group_after_fit"] == bool(env.get("USER_GROUP"))
    # Each rank took half the steps, and its history holds both ranks' batches.
    assert results[0]["gathered"] == 2 * results[0]["batches"]
    # The stored module is the plain one, not the DistributedDataParallel wrapper.
    assert results[0]["module"] != "DistributedDataParallel"
    reference, X_test = _reference_fit(name, params, GLOBAL_BATCH, X_train)
    reference_mse = float(np.mean((reference.reconstruct(X_test) - X_test) ** 2))
    if X_train is None:  # rows: as many steps as the reference's 64-row batches
        assert results[0]["batches"] == reference.net_.history[-1, "train_batch_count"]
    if params.get("learning_rate") == "cyclic":  # a cycle of as many steps
        scheduler = dict(reference.net_.callbacks_)["lr_scheduler"].lr_scheduler_
        assert results[0]["cycle"] == scheduler.total_size
    print(f"{name}: test MSE {results[0]['mse']:.6f} on two ranks, {reference_mse:.6f} in "
          "one process")
    assert abs(results[0]["mse"] - reference_mse) <= 0.05 * reference_mse, (
        results[0]["mse"], reference_mse)
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torchrun_two_ranks_train_one_model(tmp_path):
    out = _check_data_parallel_fit(tmp_path, "AutoencoderTransformer", SMALL)
    # Rank 0's file loads without a process group into the same model.
    import skae

    loaded = skae.load(out / "model.safetensors")
    _, X_test = _reference_fit("AutoencoderTransformer", SMALL, GLOBAL_BATCH)
    np.testing.assert_array_equal(loaded.transform(X_test), np.load(out / "codes_0.npy"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name, extra", [
    ("DenoisingAutoencoder", {"dropout": 0.1, "batch_norm": True}),
    ("VAETransformer", {}),
    ("AutoencoderTransformer", {"init": "random", "early_stopping": False}),
    ("AutoencoderTransformer", {"learning_rate": "cyclic"}),
])
def test_torchrun_every_estimator(tmp_path, name, extra):
    _check_data_parallel_fit(tmp_path, name, {**SMALL, **extra})


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torchrun_in_the_scripts_own_process_group(tmp_path):
    _check_data_parallel_fit(tmp_path, "AutoencoderTransformer", SMALL, USER_GROUP="1")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torchrun_on_an_array_on_disk(tmp_path):
    # Chunks of 100 rows: training chunks dealt out whole, the few held-out
    # ones sliced among the ranks.
    zarr = pytest.importorskip("zarr")
    X_train, _ = _digits_split()
    path = str(tmp_path / "X.zarr")
    z = zarr.open_array(path, mode="w", shape=X_train.shape, chunks=(100, 64),
                        dtype="float32")
    z[:] = X_train
    _check_data_parallel_fit(tmp_path, "AutoencoderTransformer", SMALL,
                             X_train=zarr.open_array(path, mode="r"), X_ZARR=path)


@pytest.mark.slow
def test_torchrun_stops_when_a_rank_dies(tmp_path):
    start = time.monotonic()
    returncode, output, _ = torchrun(tmp_path, "AutoencoderTransformer", SMALL,
                                     timeout=90, DIE_AT_EPOCH="2")
    assert returncode != 0
    assert "rank: 1" in output and "exitcode: 1" in output, output[-3000:]
    assert time.monotonic() - start < 80


def test_a_dead_rank_makes_rank_0_fail_with_an_error(tmp_path):
    # Two processes with the environment torchrun gives its workers, without
    # torchrun's agent (which would kill rank 0 itself): rank 0's fit must
    # fail on its own, with the error naming the problem, within the timeout.
    out = tmp_path / "out"
    out.mkdir()
    script = _write_script(tmp_path)
    launch = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
              "DIE_AT_EPOCH": "2", "SKAE_DISTRIBUTED_TIMEOUT": "10"}
    processes = []
    start = time.monotonic()
    try:
        for rank in (0, 1):
            processes.append(subprocess.Popen(
                [sys.executable, str(script), str(out), "AutoencoderTransformer",
                 json.dumps(SMALL)],
                env=_environment(**launch, RANK=str(rank), LOCAL_RANK=str(rank)),
                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=True))
        output, _ = processes[0].communicate(timeout=90)
        processes[1].communicate(timeout=30)
    finally:
        _stop(processes)
    assert time.monotonic() - start < 80
    assert processes[1].returncode == 1
    assert processes[0].returncode != 0
    assert ("RuntimeError: Data-parallel fit failed on rank 0 of 2: another rank died or "
            "stopped answering") in output, output[-3000:]
    assert not (out / "result_0.json").exists()
    _assert_no_process_left(out, processes)


def test_a_rank_alone_fails_to_join_within_the_timeout(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    launch = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
              "MASTER_PORT": str(_free_port()), "SKAE_DISTRIBUTED_TIMEOUT": "3"}
    process = subprocess.Popen(
        [sys.executable, str(_write_script(tmp_path)), str(out), "AutoencoderTransformer",
         json.dumps(SMALL)], env=_environment(**launch), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        _stop([process])
    assert process.returncode != 0
    assert "RuntimeError: Rank 0 of 2 could not join the process group at 127.0.0.1:" in output
    assert "within SKAE_DISTRIBUTED_TIMEOUT=3 s" in output, output[-3000:]
    _assert_no_process_left(out, [process])


# -- in one process ---------------------------------------------------------
LAUNCHED = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "1"}


def _small_fit(X, **params):
    est = AutoencoderTransformer(n_components=3, hidden_layer_sizes=(16,), max_iter=3,
                                 random_state=0, n_threads=1, **params)
    return est.fit(X)


@pytest.fixture(scope="module")
def digits():
    return (load_digits().data[:300] / 16.0).astype(np.float32)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_auto_without_launch_and_false_under_launch_are_the_plain_fit(digits, monkeypatch):
    for name in LAUNCHED:
        monkeypatch.delenv(name, raising=False)
    plain = _small_fit(digits, distributed=False)
    auto = _small_fit(digits)
    for name, value in LAUNCHED.items():
        monkeypatch.setenv(name, value)
    # MASTER_PORT=1: an attempt to join the launch would fail, not hang.
    ignored = _small_fit(digits, distributed=False)
    for est in (auto, ignored):
        assert est.loss_curve_ == plain.loss_curve_
        for a, b in zip(est.net_.module_.state_dict().values(),
                        plain.net_.module_.state_dict().values()):
            assert torch.equal(a, b)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_auto_in_a_parallel_worker_fits_alone(digits, monkeypatch):
    # A joblib or Dask worker started under torchrun inherits its environment.
    from skae._runtime import parallel_task

    for name, value in LAUNCHED.items():
        monkeypatch.setenv(name, value)
    with parallel_task():
        est = _small_fit(digits)
    assert est.n_iter_ == 3


def test_training_ranks_alone(monkeypatch):
    from skae._distributed import training_ranks

    for name in LAUNCHED:
        monkeypatch.delenv(name, raising=False)
    assert training_ranks("auto") == training_ranks(False) == 1


def test_distributed_true_needs_a_launch(digits, monkeypatch):
    for name in LAUNCHED:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="distributed=True needs torchrun's environment"):
        _small_fit(digits, distributed=True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="WORLD_SIZE=2 asks for data-parallel training.*"
                                         "missing: RANK, MASTER_ADDR, MASTER_PORT"):
        _small_fit(digits)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_partial_fit_and_warm_start_refuse_a_launch(digits, monkeypatch):
    fitted = _small_fit(digits, distributed=False, warm_start=True)
    for name, value in LAUNCHED.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="partial_fit is not data-parallel"):
        AutoencoderTransformer(n_components=3).partial_fit(digits)
    fitted.partial_fit(digits)  # distributed=False: each process on its own
    fitted.set_params(distributed="auto")
    with pytest.raises(ValueError, match="partial_fit is not data-parallel"):
        fitted.partial_fit(digits)
    with pytest.raises(ValueError, match="A warm start is not data-parallel"):
        fitted.fit(digits)


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_timeout_variable_is_checked(monkeypatch, value):
    monkeypatch.setenv("SKAE_DISTRIBUTED_TIMEOUT", value)
    with pytest.raises(ValueError, match="SKAE_DISTRIBUTED_TIMEOUT=.* positive number"):
        distributed_timeout()
    monkeypatch.setenv("SKAE_DISTRIBUTED_TIMEOUT", "2.5")
    assert distributed_timeout().total_seconds() == 2.5


def _rank_batches(dataset, world_size, seed, batch_size=8):
    """Each rank's rows of one pass of ShardIterator, as a list of arrays of row values."""
    passes = []
    for rank in range(world_size):
        shared = torch.Generator().manual_seed(seed)
        own = torch.Generator().manual_seed(100 + rank)
        iterator_class = ChunkIterator if isinstance(dataset, ChunkedDataset) else BatchIterator
        shards = ShardIterator(
            dataset, rank, world_size, shared,
            lambda shard: iterator_class(shard, batch_size, shuffle=True, generator=own),
            after_pass=lambda: None)
        batches = [batch[:, 0].numpy() for batch, _ in shards]
        if iterator_class is BatchIterator:  # chunks: an estimate, their shards vary
            assert len(batches) == len(shards)
        passes.append(batches)
    return passes


@pytest.mark.parametrize("n_rows", [40, 41, 43])
def test_shards_are_disjoint_equal_and_cover_the_rows(n_rows):
    # Row i holds the value i, so a batch's first column names its rows.
    X = np.repeat(np.arange(n_rows, dtype=np.float32)[:, None], 2, axis=1)
    passes = _rank_batches(ArrayDataset(X, (2,)), world_size=3, seed=0)
    counts = [sum(len(batch) for batch in batches) for batches in passes]
    assert len({len(batches) for batches in passes}) == 1
    assert counts == [-(-n_rows // 3)] * 3
    rows = np.concatenate([np.concatenate(batches) for batches in passes])
    # Every row once, and the padding repeats only n_rows % 3 rows.
    assert set(rows.tolist()) == set(range(n_rows))
    assert len(rows) - n_rows == (-n_rows) % 3


def test_shards_of_an_array_on_disk_take_equal_numbers_of_batches(tmp_path):
    X = np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="w+", shape=(1000, 2))
    X[:] = np.arange(1000, dtype=np.float32)[:, None]
    chunks = [(start, min(start + 70, 1000)) for start in range(0, 1000, 70)]
    passes = _rank_batches(ChunkedDataset(X, (2,), chunks), world_size=2, seed=1)
    assert len(passes[0]) == len(passes[1]) > 0
    rows = [set(np.concatenate(batches).tolist()) for batches in passes]
    assert not rows[0] & rows[1]


@pytest.mark.parametrize("on_disk", [False, True])
def test_shards_keep_each_rows_sample_weight(on_disk, tmp_path):
    # The weight of row i is i: every batch of every rank pairs rows with their weights.
    n = 500
    X = np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, axis=1)
    extras = {"sample_weight": np.arange(n, dtype=np.float32)}
    if on_disk:
        mm = np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="w+", shape=X.shape)
        mm[:] = X
        dataset = ChunkedDataset(mm, (2,), [(s, min(s + 70, n)) for s in range(0, n, 70)],
                                 extras=extras)
    else:
        dataset = ArrayDataset(X, (2,), extras=extras)
    for rank in range(2):
        iterator_class = ChunkIterator if on_disk else BatchIterator
        shards = ShardIterator(
            dataset, rank, 2, torch.Generator().manual_seed(0),
            lambda shard: iterator_class(shard, 8, shuffle=True,
                                         generator=torch.Generator().manual_seed(rank)),
            after_pass=lambda: None)
        for batch, batch_extras in shards:
            np.testing.assert_array_equal(batch[:, 0].numpy(),
                                          batch_extras["sample_weight"].numpy())
