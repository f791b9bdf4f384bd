"""skae's benchmark suite: how do skae's autoencoders compare with PCA and friends?

On held-out data of Fashion-MNIST and four scikit-learn sets: reconstruction
MSE, 1-NN/5-NN accuracy, KMeans NMI/ARI, trustworthiness, fit seconds,
transform rows per second and peak fit memory. Each (dataset, method,
n_components, seed) is one row of ``results.csv``; a method that fails gets
its error in its row. Usage: ``python -m benchmarks run --profile quick``
(``make demo``) or ``--profile full`` (``make bench``), or
``benchmarks.suite.run("quick", datasets=["wine"], methods=["pca", "ae_mlp"])``.
"""

import dataclasses
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from skae import AutoencoderTransformer

from . import data, metrics
from .environment import default_n_threads, describe_environment
from .methods import METHOD_NAMES, SKAE, Context, get_method
from .profiles import get_profile
from .report import Results, write_all

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCATTER_ROWS = 3000
TRANSFORM_BATCH = 5000

COLUMNS = [
    "dataset", "method", "family", "n_components", "seed", "status",
    "recon_mse", "knn1_acc", "knn5_acc", "kmeans_nmi", "kmeans_ari", "trustworthiness",
    "log_likelihood", "fit_seconds", "best_epoch", "epochs_to_pca", "transform_rows_per_s",
    "peak_fit_mem_mb", "data_variance", "train_rows", "test_rows", "n_features", "settings",
    "profile", "n_threads", "git_commit", "command", "error", "note",
]
METRIC_COLUMNS = [
    "recon_mse", "knn1_acc", "knn5_acc", "kmeans_nmi", "kmeans_ari", "trustworthiness",
    "log_likelihood", "fit_seconds", "best_epoch", "epochs_to_pca", "transform_rows_per_s",
    "peak_fit_mem_mb", "data_variance",
]
# Columns that may be empty in a successful row: the error, a note, the MSE
# of a method with no inverse_transform (explained by the note), the test
# log-likelihood of a method without one (only PCA's and the VAE's bound),
# and the training facts of methods that are not skae networks.
OPTIONAL_COLUMNS = ("error", "note", "recon_mse", "log_likelihood", "best_epoch",
                    "epochs_to_pca")

__all__ = ["run", "evaluate", "Results", "COLUMNS", "OPTIONAL_COLUMNS", "METHOD_NAMES"]


@dataclass
class PreparedDataset:
    """A dataset with what every method's evaluation shares."""

    dataset: data.Dataset
    trust_index: np.ndarray
    trust_distances: np.ndarray


def prepare(dataset):
    """Precompute the input-space distances of the trustworthiness rows."""
    scaler = dataset.make_scaler().fit(dataset.X_train)
    index = metrics.trust_rows(len(dataset.X_test))
    X_trust = np.asarray(scaler.transform(dataset.X_test[index]))
    return PreparedDataset(dataset, index, metrics.input_distances(X_trust))


def _transform(pipeline, X):
    """Transform in batches, so that kernel methods never build a huge kernel."""
    return np.concatenate([
        np.asarray(pipeline.transform(X[start:start + TRANSFORM_BATCH]))
        for start in range(0, len(X), TRANSFORM_BATCH)
    ])


def _settings(method, estimator, budget):
    if method.family == SKAE:
        if estimator.architecture == "conv":
            network = f"conv {tuple(estimator.conv_channels)}"
        else:
            network = f"hidden {tuple(estimator.hidden_layer_sizes_)}"
        stopping = ", early_stopping" if estimator.early_stopping_ else ""
        return (f"{network}, batch {estimator.batch_size_}, epochs run "
                f"{estimator.n_iter_}/{budget.max_iter}{stopping}")
    if method.max_train_rows:
        return f"defaults, fitted on <= {method.max_train_rows} rows"
    return "defaults"


def _training_facts(method, estimator):
    """Epoch kept, and the epoch at which held-out MSE first beat PCA's (0: the PCA start)."""
    if method.family != SKAE:
        return {"best_epoch": float("nan"), "epochs_to_pca": float("nan")}
    return {"best_epoch": estimator.best_epoch_,
            "epochs_to_pca": 0 if estimator.init == "pca" else float("nan")}


def _first_line(exc):
    lines = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return lines[0][:500]


def _fit_rows(dataset, method, seed):
    X = dataset.X_train
    if method.max_train_rows and len(X) > method.max_train_rows:
        rows = np.random.default_rng(seed).choice(len(X), method.max_train_rows, replace=False)
        X = X[np.sort(rows)]
    return dataset.as_input(X, method.images)


def evaluate(prepared, method, n_components, seed, budget, n_threads):
    """Fit one method at one size and seed; return (metrics dict, test codes).

    The method is the last step of ``Pipeline([("scale", scaler), (name,
    estimator)])`` with a fresh copy of the dataset's scaler. Raises whatever
    the method raises; :func:`run` records it in the row.
    """
    dataset = prepared.dataset
    method.check_requirements()
    estimator = method.build(Context(dataset, n_components, seed, budget, n_threads))
    pipeline = Pipeline([("scale", dataset.make_scaler()), (method.name, estimator)])
    X_fit = _fit_rows(dataset, method, seed)
    X_test = dataset.as_input(dataset.X_test, method.images)

    with warnings.catch_warnings():
        # Budgets are set by the profile: reaching max_iter is expected there.
        warnings.simplefilter("ignore")
        with metrics.PeakMemory() as memory, metrics.Timer() as fit_time:
            if method.codes_from_fit:
                Z_train = np.asarray(pipeline.fit_transform(X_fit))
            else:
                pipeline.fit(X_fit)
        with metrics.Timer() as transform_time:
            Z_test = _transform(pipeline, X_test)
        if not method.codes_from_fit:
            Z_train = _transform(pipeline, dataset.as_input(dataset.X_train, method.images))
        final = pipeline[-1]
        if hasattr(final, "inverse_transform") and not method.codes_from_fit:
            X_scaled = pipeline[:-1].transform(X_test)
            recon_mse = metrics.reconstruction_mse(X_scaled, final.inverse_transform(Z_test))
            note = ""
        else:
            recon_mse, note = float("nan"), "no inverse_transform: recon_mse left blank"
        X_scaled = np.asarray(pipeline[:-1].transform(X_test))
        data_variance = float(np.var(X_scaled.reshape(len(X_scaled), -1), axis=0).mean())
        log_likelihood = float("nan")
        if method.name in ("pca", "vae"):
            # PCA's probabilistic log-likelihood, the VAE's lower bound on it: nats per row.
            log_likelihood = float(final.score(pipeline[:-1].transform(X_test)))

    if not (np.all(np.isfinite(Z_test)) and np.all(np.isfinite(Z_train))):
        raise ValueError(f"{method.name} produced non-finite codes.")
    y_train = dataset.y_train
    if len(Z_train) != len(y_train):
        raise ValueError(f"{method.name} gave {len(Z_train)} training codes for "
                         f"{len(y_train)} training rows; codes_from_fit needs no subsample.")
    nmi, ari = metrics.kmeans_scores(Z_test, dataset.y_test, dataset.n_classes)
    return dict(
        recon_mse=recon_mse,
        knn1_acc=metrics.knn_accuracy(Z_train, y_train, Z_test, dataset.y_test, 1),
        knn5_acc=metrics.knn_accuracy(Z_train, y_train, Z_test, dataset.y_test, 5),
        kmeans_nmi=nmi,
        kmeans_ari=ari,
        trustworthiness=metrics.trustworthiness_score(
            prepared.trust_distances, Z_test[prepared.trust_index]),
        log_likelihood=log_likelihood,
        data_variance=data_variance,
        fit_seconds=fit_time.seconds,
        **_training_facts(method, final),
        transform_rows_per_s=len(X_test) / max(transform_time.seconds, 1e-9),
        peak_fit_mem_mb=memory.peak_mb,
        train_rows=len(X_fit),
        settings=_settings(method, final, budget),
        note=note,
    ), Z_test


def run_cell(prepared, method, n_components, seed, budget, n_threads, say=None):
    """One row of the results: the metrics, or the error that stopped them."""
    dataset = prepared.dataset
    row = dict(dataset=dataset.name, method=method.name, family=method.family,
               n_components=n_components, seed=seed, test_rows=len(dataset.X_test),
               n_features=dataset.n_features)
    label = f"{dataset.name} {method.name} k={n_components} seed={seed}"
    try:
        measured, Z = evaluate(prepared, method, n_components, seed, budget, n_threads)
    except Exception as exc:  # noqa: BLE001 - one failing method must not stop the run
        if say:
            say(f"  {label}: FAILED {_first_line(exc)}")
        if os.environ.get("SKAE_BENCH_TRACEBACK"):
            traceback.print_exc()
        row.update({column: float("nan") for column in METRIC_COLUMNS})
        row.update(train_rows=len(dataset.X_train), settings="", note="",
                   status="failed", error=_first_line(exc))
        return row, None
    if say:
        say(f"  {label}: fit {measured['fit_seconds']:.1f} s, MSE "
            f"{measured['recon_mse']:.4g}, 1-NN {measured['knn1_acc']:.3f}")
    row.update(measured, status="ok", error="")
    return row, Z


def _check_names(names, known, kind):
    for name in names:
        if isinstance(name, str) and name not in known:
            raise ValueError(f"Unknown {kind} {name!r}; choose from {', '.join(known)}.")
    return list(names)


def _check_ints(name, values, minimum):
    values = [values] if isinstance(values, int) else list(values)
    if not values or not all(isinstance(v, (int, np.integer)) and v >= minimum
                             for v in values):
        raise ValueError(f"{name}={values!r} must be a non-empty list of ints >= {minimum}.")
    return tuple(int(v) for v in values)


def _describe_call(profile, **kwargs):
    given = {k: v for k, v in kwargs.items() if v is not None}
    if "methods" in given:
        given["methods"] = [getattr(m, "name", m) for m in given["methods"]]
    arguments = ", ".join([repr(profile.name)] + [f"{k}={v!r}" for k, v in given.items()])
    return f"benchmarks.suite.run({arguments})"


def run(profile="quick", *, datasets=None, methods=None, n_components=None, seeds=None,
        max_iter=None, n_threads=None, output_dir=None, plots=True, command=None,
        log=sys.stderr):
    """Run the benchmark suite and write its tables and plots.

    Parameters
    ----------
    profile : {"quick", "full"} or Profile, default="quick"
        Default datasets, methods, sizes, seeds and training budgets.
    datasets : list of str or None
        From ``benchmarks.data.DATASET_NAMES``. None takes the profile's, and
        then skips Fashion-MNIST (with a note) when its files are absent.
    methods : list of str or Method or None
        Names from ``benchmarks.methods.METHOD_NAMES``, or Method objects.
    n_components : list of int or None
        Code sizes; a size not below a dataset's number of features is
        skipped. Given explicitly, it also lifts the profile's per-method
        size restrictions.
    seeds : list of int or None
        Seeds of the skae methods; the other methods run with the first.
    max_iter : int or None
        ``max_iter`` of every skae network, overriding the profile's budgets
        (their ``early_stopping`` stays).
    n_threads : int or None
        Threads for torch, BLAS and OpenMP; None uses every available core.
    output_dir : path or None
        Where results go; None is ``benchmarks/results/<profile>/``.
    plots : bool, default=True
        Write PNG plots (needs matplotlib).
    command : str or None
        The command recorded with the results; None describes this call.
    log : file or None, default=sys.stderr
        Where progress lines go; None is silent.

    Returns
    -------
    Results
        ``frame`` (one row per dataset, method, size and seed), ``summary``,
        ``goals``, ``markdown``, ``table`` and ``output_dir``.
    """
    profile = get_profile(profile)
    dataset_names = _check_names(profile.datasets if datasets is None else datasets,
                                 data.DATASET_NAMES, "dataset")
    method_list = [get_method(m) for m in (profile.methods if methods is None else methods)]
    sizes = _check_ints("n_components", profile.n_components if n_components is None
                        else n_components, 1)
    if seeds is not None:
        seeds = _check_ints("seeds", seeds, 0)
    if max_iter is not None:
        max_iter = _check_ints("max_iter", max_iter, 1)[0]
    n_threads = _check_ints("n_threads", n_threads or default_n_threads(), 1)[0]
    output_dir = Path(output_dir) if output_dir is not None else RESULTS_DIR / profile.name
    if command is None:
        command = _describe_call(profile, datasets=datasets, methods=methods,
                                 n_components=n_components, seeds=seeds, max_iter=max_iter,
                                 n_threads=n_threads)
    environment = describe_environment(n_threads, command)

    def say(message):
        if log is not None:
            print(message, file=log, flush=True)

    rows, codes, skipped = [], {}, []
    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            if any(method.family == SKAE for method in method_list):
                _warm_up(n_threads)
            for name in dataset_names:
                say(f"{name}: loading")
                try:
                    dataset = data.load(name, profile.fashion_rows)
                except FileNotFoundError as exc:
                    if datasets is not None:  # asked for by name: a real error
                        raise
                    skipped.append(f"{name}: {exc}")
                    say(f"skipped {skipped[-1]}")
                    continue
                prepared = prepare(dataset)
                _run_dataset(prepared, profile, method_list, sizes, n_components is not None,
                             seeds, max_iter, n_threads, say, rows, codes)
    finally:
        torch.set_num_threads(previous_threads)
    environment["wall_seconds"] = round(time.perf_counter() - started, 1)

    frame = pd.DataFrame(rows)
    for column, value in [("profile", profile.name), ("n_threads", n_threads),
                          ("git_commit", environment["git_commit"]), ("command", command)]:
        frame[column] = value
    frame = frame.reindex(columns=COLUMNS)
    return write_all(frame, codes, environment, profile, method_list, skipped, output_dir,
                     plots)


def _warm_up(n_threads):
    """Fit a tiny network once, so torch's one-off start-up costs (thread pools,
    kernels, allocator) do not land on the first measured fit."""
    X = np.random.default_rng(0).random((64, 8), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=2, n_threads=n_threads,
                               random_state=0).fit(X).transform(X)


def _run_dataset(prepared, profile, method_list, sizes, explicit_sizes, seeds, max_iter,
                 n_threads, say, rows, codes):
    dataset = prepared.dataset
    dataset_seeds = seeds if seeds is not None else profile.seeds_for(dataset.name)
    for method in method_list:
        method_sizes = sizes if explicit_sizes else profile.sizes_for(
            dataset.name, method.name, sizes)
        method_seeds = dataset_seeds if method.family == SKAE else dataset_seeds[:1]
        budget = profile.budget(dataset.name, method.conv)
        if max_iter is not None:
            budget = dataclasses.replace(budget, max_iter=max_iter)
        for k in method_sizes:
            if k >= dataset.n_features or not method.applies(dataset, k):
                continue
            for seed in method_seeds:
                row, Z = run_cell(prepared, method, k, seed, budget, n_threads, say)
                rows.append(row)
                if Z is not None and k == 2 and seed == method_seeds[0]:
                    keep = metrics.trust_rows(len(Z), SCATTER_ROWS)
                    codes[(dataset.name, method.name)] = (Z[keep], dataset.y_test[keep])
