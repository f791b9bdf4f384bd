"""Predict how long a profile takes on this machine, without running it.

For each dataset and method of the profile it fits the method on a sample of
the training rows (at most ``sample_rows``) and scales what it measured:

- skae networks: the median duration of epochs 2 to 4 (the first carries
  one-off costs) per training row, times the dataset's training rows, times the
  profile's ``max_iter``; plus encoding the training and test rows and
  decoding the test rows at the measured transform rate. Early stopping can
  only make the real run shorter, so this part is an upper bound.
- the other methods: fit time scaled linearly with the training rows (UMAP
  and t-SNE grow a little faster), plus the transforms at the measured rate.
- the metrics (kNN, KMeans, trustworthiness), timed once per dataset on
  random codes of the real size.

The machine's load during the estimate changes it as much as the real run's.
"""

import dataclasses
import os
import sys
import time
import warnings

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from . import data, metrics
from .environment import default_n_threads
from .methods import SKAE, Budget, Context, get_method
from .profiles import get_profile
from .report import markdown_table
from .suite import evaluate, prepare

WARMUP_ROWS = 300
TIMED_EPOCHS = 4


def _sample(dataset, n_train, n_test):
    return dataclasses.replace(
        dataset, X_train=dataset.X_train[:n_train], y_train=dataset.y_train[:n_train],
        X_test=dataset.X_test[:n_test], y_test=dataset.y_test[:n_test],
    )


def _metrics_seconds(dataset, n_components, n_threads):
    """Time the metrics on random codes as large as the real ones."""
    rng = np.random.default_rng(0)
    Z_train = rng.normal(size=(len(dataset.X_train), n_components)).astype(np.float32)
    Z_test = rng.normal(size=(len(dataset.X_test), n_components)).astype(np.float32)
    prepared = prepare(dataset)
    with metrics.Timer() as timer:
        for k in (1, 5):
            metrics.knn_accuracy(Z_train, dataset.y_train, Z_test, dataset.y_test, k)
        metrics.kmeans_scores(Z_test, dataset.y_test, dataset.n_classes)
        metrics.trustworthiness_score(prepared.trust_distances, Z_test[prepared.trust_index])
    return timer.seconds


def _cell_seconds(dataset, sample, method, n_components, budget, n_threads):
    """Predicted seconds of one (method, size, seed) cell, metrics excluded."""
    n_train, n_test = len(dataset.X_train), len(dataset.X_test)
    if method.family == SKAE:
        seconds_per_row, rate = _time_network(sample, method, n_components, n_threads)
        fit = seconds_per_row * n_train * budget.max_iter
    else:
        if method.requires:  # numba compiles on the first call: keep it out
            evaluate(prepare(_sample(sample, WARMUP_ROWS, WARMUP_ROWS)), method,
                     n_components, 0, budget, n_threads)
        row, _ = evaluate(prepare(sample), method, n_components, 0, budget, n_threads)
        fit_rows = min(n_train, method.max_train_rows or n_train)
        fit = row["fit_seconds"] * fit_rows / row["train_rows"]
        rate = row["transform_rows_per_s"]
    transformed = n_test + (0 if method.codes_from_fit else n_train + n_test)
    return fit + transformed / rate


def _time_network(sample, method, n_components, n_threads):
    """Seconds per row of a training epoch, and transform rows per second.

    The epoch time is the median of epochs 2 to 4: the first carries one-off
    costs, and one epoch of a small table is short enough to be all noise.
    """
    budget = Budget(TIMED_EPOCHS, early_stopping=False)
    estimator = method.build(Context(sample, n_components, 0, budget, n_threads))
    scaler = sample.make_scaler().fit(sample.X_train)
    X = scaler.transform(sample.as_input(sample.X_train, method.images))
    X_test = scaler.transform(sample.as_input(sample.X_test, method.images))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X)
    with metrics.Timer() as timer:
        estimator.transform(X_test)
    rows = len(X)
    epoch = float(np.median(estimator.net_.history[1:, "dur"]))
    return epoch / rows, len(X_test) / timer.seconds


def estimate(profile="full", *, n_threads=None, sample_rows=2000, log=sys.stderr):
    """Predicted seconds of each (dataset, method) of a profile.

    Returns
    -------
    list of dict
        ``dataset, method, cells, seconds_per_cell, seconds`` per pair.
    """
    profile = get_profile(profile)
    n_threads = int(n_threads or default_n_threads())
    lines = []
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            for name in profile.datasets:
                try:
                    dataset = data.load(name, profile.fashion_rows)
                except FileNotFoundError:  # Fashion-MNIST not downloaded
                    continue
                sample = _sample(dataset, sample_rows, sample_rows)
                seeds = profile.seeds_for(name)
                metric_seconds = _metrics_seconds(
                    dataset, min(16, dataset.n_features - 1), n_threads)
                for method in map(get_method, profile.methods):
                    sizes = [k for k in profile.sizes_for(name, method.name, profile.n_components)
                             if k < dataset.n_features and method.applies(dataset, k)]
                    if not sizes:
                        continue
                    cells = len(sizes) * (len(seeds) if method.family == SKAE else 1)
                    started = time.perf_counter()
                    try:
                        per_cell = _cell_seconds(dataset, sample, method, sizes[0],
                                                 profile.budget(name, method.conv), n_threads)
                    except Exception as exc:  # noqa: BLE001 - report and go on
                        per_cell, note = float("nan"), f"{type(exc).__name__}: {exc}"
                    else:
                        note = ""
                    per_cell += metric_seconds
                    lines.append(dict(dataset=name, method=method.name, cells=cells,
                                      seconds_per_cell=per_cell, seconds=per_cell * cells,
                                      note=note))
                    if log is not None:
                        print(f"  {name} {method.name}: {cells} x {per_cell:.0f} s "
                              f"(measured in {time.perf_counter() - started:.0f} s)",
                              file=log, flush=True)
    finally:
        torch.set_num_threads(previous)
    return lines


def format_estimate(lines):
    rows = [[line["dataset"], line["method"], str(line["cells"]),
             f"{line['seconds_per_cell']:.0f}", f"{line['seconds'] / 60:.1f}", line["note"]]
            for line in lines]
    total = np.nansum([line["seconds"] for line in lines])
    table = markdown_table(["dataset", "method", "cells", "s per cell", "minutes", "note"], rows)
    load = ""
    if hasattr(os, "getloadavg"):
        average, cores = os.getloadavg()[0], os.cpu_count() or 1
        load = f" Load average while measuring: {average:.1f} on {cores} cores."
        if average > cores / 2:
            load += (" The machine was busy, so this overestimates, badly with several"
                     " threads: torch threads wait on each other when cores are shared.")
    return (f"{table}\n\nEstimated total: {total / 60:.0f} minutes (epochs counted up to "
            f"max_iter; early stopping can only shorten them).{load}")
