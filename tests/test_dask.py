"""Scaling out: joblib's loky and Dask backends, thread defaults, transform_dask.

One real ``dask.distributed.LocalCluster`` (two worker processes, bound to
127.0.0.1) serves the whole module and is closed at its end, with a check
that its processes are gone.
"""

import json
import os
import pickle
import sys
import threading
import uuid
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

import skae
from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
from skae._runtime import _parse_threads, default_n_threads, parallel_task

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")
cloudpickle = pytest.importorskip("cloudpickle")

ESTIMATOR_CLASSES = [AutoencoderTransformer, DenoisingAutoencoder, VAETransformer]
SMALL = dict(hidden_layer_sizes=(16,), max_iter=3, batch_size=100, random_state=0)
# Threads a fit in this (main) process should get, read before any cluster
# starts: Dask's nanny later writes OMP_NUM_THREADS=1 into our environment.
PARENT_THREADS = _parse_threads(os.environ.get("OMP_NUM_THREADS")) or joblib.cpu_count()


class RecordWhereFitRuns(Callback):
    """Write one JSON file per fit: process id, torch threads, Dask worker address."""

    def __init__(self, directory):
        self.directory = directory

    def on_train_begin(self, net, **kwargs):
        try:
            worker = distributed.get_worker().address
        except ValueError:
            worker = None
        record = {"pid": os.getpid(), "threads": torch.get_num_threads(), "worker": worker}
        Path(self.directory, f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))


def started_processes(before):
    """Child processes of this one that were not there before, except the
    resource trackers that multiprocessing and loky keep for the whole session."""
    return {
        child.pid for child in psutil.Process().children(recursive=True)
        if child.pid not in before and child.is_running()
        and child.status() != psutil.STATUS_ZOMBIE
        and "resource_tracker" not in " ".join(child.cmdline())
    }


def read_records(directory):
    return [json.loads(path.read_text()) for path in sorted(Path(directory).glob("*.json"))]


def fit_and_record(estimator, X):
    """Fit in whatever process runs this; return the estimator and torch's threads then."""
    record = {}

    class Probe(Callback):
        def on_train_begin(self, net, **kwargs):
            record["threads"] = torch.get_num_threads()
            record["pid"] = os.getpid()

    estimator.set_params(callbacks=[("probe", Probe())]).fit(X)
    return estimator.set_params(callbacks=None), record


@pytest.fixture(scope="module", autouse=True)
def _pickle_this_module_by_value():
    # Worker processes cannot import this test file: ship its callbacks by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real two-process LocalCluster on 127.0.0.1; checks at teardown that it is gone."""
    children_before = {child.pid for child in psutil.Process().children(recursive=True)}
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        local_directory=str(tmp_path_factory.mktemp("dask-scratch")),
    )
    client = distributed.Client(cluster)
    worker_pids = client.run(os.getpid)
    try:
        yield client, worker_pids
    finally:
        client.close()
        cluster.close()
        processes = [psutil.Process(pid) for pid in worker_pids.values()
                     if psutil.pid_exists(pid)]
        _, alive = psutil.wait_procs(processes, timeout=15)
        assert not alive, f"Dask worker processes still running: {alive}"
        assert not started_processes(children_before), "the cluster left processes running"


@pytest.fixture(scope="module")
def X_search(digits_split):
    return digits_split[0][:300]


def make_search(record_directory, n_jobs):
    pipe = Pipeline([
        ("ae", AutoencoderTransformer(
            n_components=4, **SMALL, callbacks=[RecordWhereFitRuns(str(record_directory))])),
        ("km", KMeans(5, n_init=1, random_state=0)),
    ])
    grid = {"ae__hidden_layer_sizes": [(4,), (32,)]}
    return GridSearchCV(pipe, grid, cv=2, n_jobs=n_jobs)


N_SEARCH_FITS = 2 * 2  # candidates x folds, before the refit


@pytest.fixture(scope="module")
def sequential_search(X_search, tmp_path_factory):
    directory = tmp_path_factory.mktemp("records-sequential")
    return make_search(directory, n_jobs=1).fit(X_search), read_records(directory)


def assert_same_search(search, reference):
    assert search.best_params_ == reference.best_params_
    assert_allclose(search.cv_results_["mean_test_score"],
                    reference.cv_results_["mean_test_score"], rtol=1e-4)
    assert_allclose(search.best_score_, reference.best_score_, rtol=1e-4)


def test_sequential_search_uses_every_core_in_this_process(sequential_search):
    _, records = sequential_search
    assert len(records) == N_SEARCH_FITS + 1
    assert all(r == {"pid": os.getpid(), "threads": PARENT_THREADS, "worker": None}
               for r in records)


def test_grid_search_on_loky_matches_sequential(X_search, sequential_search, tmp_path):
    from joblib.externals.loky import get_reusable_executor

    children_before = {child.pid for child in psutil.Process().children(recursive=True)}
    # joblib gives each loky worker OMP_NUM_THREADS = cores // n_jobs unless set here.
    expected = _parse_threads(os.environ.get("OMP_NUM_THREADS")) or max(1, joblib.cpu_count() // 2)
    search = make_search(tmp_path, n_jobs=2).fit(X_search)
    assert_same_search(search, sequential_search[0])

    records = read_records(tmp_path)
    in_workers = [r for r in records if r["pid"] != os.getpid()]
    assert len(in_workers) == N_SEARCH_FITS
    assert {r["threads"] for r in in_workers} == {expected}
    # The refit runs here, with every core.
    assert [r for r in records if r["pid"] == os.getpid()] == [
        {"pid": os.getpid(), "threads": PARENT_THREADS, "worker": None}]

    workers = [psutil.Process(pid) for pid in {r["pid"] for r in in_workers}]
    get_reusable_executor().shutdown(wait=True)
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive
    assert not started_processes(children_before)


def test_cluster_listens_on_loopback_only(dask_cluster):
    client, worker_pids = dask_cluster
    info = client.scheduler_info()
    addresses = [client.scheduler.address, *info["workers"],
                 *(worker["nanny"] for worker in info["workers"].values())]
    assert len(addresses) == 5
    assert all(address.startswith("tcp://127.0.0.1:") for address in addresses), addresses
    # The sockets themselves, scheduler and nannies (here) and workers.
    for pid in [os.getpid(), *worker_pids.values()]:
        listening = [c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and set(listening) == {"127.0.0.1"}, (pid, listening)


def test_grid_search_on_dask_matches_sequential(dask_cluster, X_search, sequential_search,
                                                tmp_path):
    client, worker_pids = dask_cluster
    with joblib.parallel_config(backend="dask"), distributed.get_task_stream(client) as stream:
        search = make_search(tmp_path, n_jobs=-1).fit(X_search)
    assert_same_search(search, sequential_search[0])

    records = read_records(tmp_path)
    on_workers = [r for r in records if r["worker"] is not None]
    assert len(on_workers) == N_SEARCH_FITS
    assert all(worker_pids[r["worker"]] == r["pid"] for r in on_workers)
    # One torch thread per single-threaded worker process.
    assert {r["threads"] for r in on_workers} == {1}
    assert {task["worker"] for task in stream.data} <= set(worker_pids)
    assert len(stream.data) >= N_SEARCH_FITS
    # The refit runs in this process with every core, although the nanny has
    # set OMP_NUM_THREADS=1 in our environment for its workers to inherit.
    assert [r for r in records if r["worker"] is None] == [
        {"pid": os.getpid(), "threads": PARENT_THREADS, "worker": None}]


def test_fit_on_a_worker_then_use_here(dask_cluster, X_search):
    client, worker_pids = dask_cluster
    future = client.submit(fit_and_record, AutoencoderTransformer(n_components=3, **SMALL),
                           X_search, pure=False)
    fitted_remotely, record = future.result()
    assert record["pid"] in worker_pids.values() and record["threads"] == 1

    fitted_here, record_here = fit_and_record(AutoencoderTransformer(n_components=3, **SMALL),
                                              X_search)
    assert record_here == {"pid": os.getpid(), "threads": PARENT_THREADS}
    assert_allclose(fitted_remotely.transform(X_search), fitted_here.transform(X_search),
                    rtol=1e-4, atol=1e-5)
    assert_allclose(fitted_remotely.loss_curve_, fitted_here.loss_curve_, rtol=1e-4)


def test_default_threads_in_this_process_with_a_cluster_running(dask_cluster):
    assert default_n_threads() == PARENT_THREADS
    seen = []

    def in_a_chunk():
        with parallel_task():
            seen.append(default_n_threads())

    thread = threading.Thread(target=in_a_chunk)
    thread.start()
    thread.join()
    assert seen == [_parse_threads(os.environ.get("OMP_NUM_THREADS")) or 1]
    assert default_n_threads() == PARENT_THREADS


def test_default_threads_read_omp_num_threads(monkeypatch):
    def in_a_chunk():
        with parallel_task():
            return default_n_threads()

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert in_a_chunk() == 3
    # This process keeps the setting it had when skae was imported.
    assert default_n_threads() == PARENT_THREADS
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # nested levels: the first counts
    assert in_a_chunk() == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "zero")
    assert in_a_chunk() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert in_a_chunk() == 1
    assert default_n_threads() == PARENT_THREADS


def test_threads_on_an_in_process_dask_worker(X_search):
    # processes=False: worker threads live in this process, yet each is one worker.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        futures = [client.submit(fit_and_record, AutoencoderTransformer(n_components=2, **SMALL),
                                 X_search[:200], pure=False) for _ in range(2)]
        records = [record for _, record in client.gather(futures)]
    expected = _parse_threads(os.environ.get("OMP_NUM_THREADS")) or 1
    assert records == [{"threads": expected, "pid": os.getpid()}] * 2


def test_transform_dask_on_the_cluster_matches_transform(dask_cluster, digits_split):
    client, worker_pids = dask_cluster
    X = digits_split[0]
    ae = AutoencoderTransformer(n_components=3, **SMALL).fit(X)
    X_dask = da.from_array(X, chunks=(400, 32))  # columns split: rechunked to one block

    codes = skae.transform_dask(ae, X_dask)
    assert isinstance(codes, da.Array)
    assert codes.shape == (len(X), 3) and codes.dtype == np.float32
    assert codes.chunks == ((400, 400, 400, 147), (3,))
    assert codes.name.startswith("skae-transform-")
    with distributed.get_task_stream(client) as stream:
        computed = codes.compute()
    ran = [task for task in stream.data if "skae-transform" in str(task["key"])]
    assert len(ran) == 4 and {task["worker"] for task in ran} <= set(worker_pids)
    assert computed.dtype == np.float32
    assert_allclose(computed, ae.transform(X), rtol=1e-5, atol=1e-6)

    decoded = skae.transform_dask(ae, codes, method="inverse_transform")
    assert decoded.shape == X.shape and decoded.chunks[0] == codes.chunks[0]
    assert_allclose(decoded.compute(), ae.inverse_transform(computed), rtol=1e-5, atol=1e-6)


def test_transform_dask_images_and_uint8(digits_split):
    images = (digits_split[0][:500] * 255).astype(np.uint8).reshape(-1, 8, 8)
    ae = AutoencoderTransformer(n_components=2, **SMALL).fit(images)
    images_dask = da.from_array(images, chunks=(150, 8, 4))
    codes = skae.transform_dask(ae, images_dask)
    assert codes.shape == (500, 2) and codes.numblocks == (4, 1)
    # Local threaded scheduler: no cluster needed.
    computed = codes.compute(scheduler="threads")
    assert_allclose(computed, ae.transform(images), rtol=1e-5, atol=1e-6)

    decoded = skae.transform_dask(ae, codes, method="inverse_transform")
    assert decoded.shape == (500, 8, 8) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded.compute(scheduler="threads"),
                                  ae.inverse_transform(computed))
    scores = skae.transform_dask(ae, images_dask, method="score_samples")
    assert scores.shape == (500,) and scores.chunks == ((150, 150, 150, 50),)
    assert_allclose(scores.compute(scheduler="threads"), ae.score_samples(images), rtol=1e-5)


def test_transform_dask_errors(digits_split, monkeypatch):
    X = digits_split[0][:200]
    ae = AutoencoderTransformer(n_components=2, **SMALL).fit(X)
    with pytest.raises(TypeError, match="must be a dask array.*from_array"):
        skae.transform_dask(ae, X)
    with pytest.raises(ValueError, match="method='predict' is not one of"):
        skae.transform_dask(ae, da.from_array(X), method="predict")
    with pytest.raises(NotFittedError):
        skae.transform_dask(AutoencoderTransformer(), da.from_array(X))
    with pytest.raises(ValueError, match="X has 10 features"):
        skae.transform_dask(ae, da.zeros((50, 10), chunks=10))
    with pytest.raises(ValueError, match="needs rows"):
        skae.transform_dask(ae, da.zeros(50, chunks=10))
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"pip install 'skae\[dask\]'"):
        skae.transform_dask(ae, X)


def find_generators(estimator):
    places = {"estimator": vars(estimator)}
    if hasattr(estimator, "net_"):
        places["net_"] = vars(estimator.net_)
    return [f"{place}.{name}" for place, attributes in places.items()
            for name, value in attributes.items() if isinstance(value, torch.Generator)]


@pytest.mark.parametrize("dumps, loads", [(pickle.dumps, pickle.loads),
                                          (cloudpickle.dumps, cloudpickle.loads)],
                         ids=["pickle", "cloudpickle"])
@pytest.mark.parametrize("Estimator", ESTIMATOR_CLASSES)
def test_round_trips_fitted_and_unfitted(Estimator, dumps, loads, digits_split):
    X = digits_split[0][:100]
    unfitted = Estimator(n_components=2, **SMALL)
    copy = loads(dumps(unfitted))
    assert copy.get_params() == unfitted.get_params()
    assert not hasattr(copy, "net_")

    fitted = Estimator(n_components=2, **SMALL).fit(X)
    assert find_generators(fitted) == []
    copy = loads(dumps(fitted))
    np.testing.assert_array_equal(copy.transform(X), fitted.transform(X))
    assert copy.loss_curve_ == fitted.loss_curve_
    # The copy trains again like a fresh estimator: no state left over from fit.
    refitted = copy.fit(X)
    assert_allclose(refitted.loss_curve_, fitted.loss_curve_, rtol=1e-5)
