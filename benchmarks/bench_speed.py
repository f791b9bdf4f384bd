"""How close do skae's training and encoding come to a hand-written PyTorch loop?

Question
--------
A user who wraps an autoencoder in ``AutoencoderTransformer`` gets
scikit-learn's API and skorch's loop (callbacks, history, early stopping).
What does that cost against the fastest loop one would write by hand for
the same model, data, batch size and threads? Targets (issue 7): an epoch at
most 1.05x the hand loop on Fashion-MNIST sizes and 1.25x on digits;
``transform`` at most 1.05x raw ``torch.inference_mode()`` batches; ``fit``'s
peak memory at most one float32 copy of the input for float32 data and no
full float copy for uint8 images.

Data
----
Fashion-MNIST's 60,000 training images from ``$SKAE_DATA/fashion_mnist.npz``
(default ``../shared/data`` next to the checkout), as float32 rows scaled to
[0, 1] and as the original (60000, 28, 28) uint8 array; scikit-learn's digits
(1,797 x 64, scaled by 1/16); the first 5,000 images for the convolutional
architecture. Without the file, uniform random images of the same shape stand
in (timings depend on shapes, not values) and the report says so.

Method
------
Training. Each case trains the same module (built by skae, re-initialised
for the hand loop), with Adam at lr 1e-3, MSE on the sigmoid output, the
same batch size and the same number of torch threads (pinned with
``torch.set_num_threads`` / ``n_threads``). The contenders:

- ``hand``: a minimal loop: a new permutation each epoch applied to the
  float32 tensor once (pre-shuffled slices), ``zero_grad(set_to_none)``,
  forward, ``mse_loss``, backward, fused Adam when torch has it, and the
  epoch's mean loss summed as a tensor and read once per epoch; like skae,
  it flushes subnormal floats to zero in every torch thread while it
  trains (without, Adam's decaying moments make epochs up to 2x longer,
  and longer from one epoch to the next);
- ``hand gather``: the same loop gathering each batch's rows with
  ``index_select`` instead of writing a shuffled copy of the data (faster
  on large data, where that copy costs more than the per-batch gathers);
- ``skae``: ``AutoencoderTransformer.fit`` on the same float32 rows (``skae
  uint8``: on the uint8 images, converted batch by batch);
- ``hand IEEE``: ``hand gather`` with torch's default IEEE arithmetic, as
  the tutorials train: what skae saves a user who writes that loop;
- ``skorch``: a plain ``skorch.NeuralNet`` (its row-wise Dataset and
  DataLoader, default Adam, IEEE arithmetic), for reference.

``hand IEEE`` and ``skorch`` run in two cases (Fashion-MNIST batch 128 and
digits), not with ``--quick``.

Contenders alternate (in a new random order each repetition) so that a slow
spell of a shared machine hits all of them. An epoch's time is measured by
a callback from ``on_epoch_begin`` to ``on_epoch_end`` (it runs after skae's
own callbacks, so it covers the whole epoch); per-fit overhead is the fit's
time minus its epochs (validation, building the module, the first batch's
lazy set-up). The reference is the best hand loop: of ``hand`` and ``hand
gather``, the one with the lower median epoch time (taking the faster of
the two in each repetition instead would favour the reference, since the
minimum of two noisy times is biased low). Ratios are medians over
repetitions of the paired ratio contender / best hand loop; wall-clock (``perf_counter``) is the
headline, process CPU time is shown too, and a "batch median" ratio whose
epoch times take the median of their inner batch steps (from one batch's
start to the next; the first and last steps, which hold the per-epoch work,
as measured), which a slow spell shorter than half an epoch does not move.
skae's batch start times are noted by its batch iterator (patched here),
not by an ``on_batch_begin`` callback, which would switch skae's net to
skorch's per-batch loop. Achieved GFLOP/s counts the matmul and
convolution FLOPs of one training step (``torch.utils.flop_counter``) per
epoch, against the peak of a 2048 x 2048 float32 matmul measured in the same
run with the same threads. Each epoch also counts the process's minor page
faults (``getrusage``): a count, which the load of a shared machine does not
move, of the fresh memory pages a loop's allocations needed (3 us each here).

Interleaved epochs. The runs compared above are up to a few fits apart,
and on a shared machine two runs' ratio scatters more the further apart
they ran (in a 15-repetition run, a median deviation of 4.9% for adjacent
runs and 8.6% three or more apart). So the tutorials' MLP (batch 128 and
256) and digits are also measured in one skae fit of 16 epochs (200 for
digits) in which a callback, after each of skae's epochs, trains one epoch
of each hand loop (in alternating order; inside skae's fit, hence with its
threads and flushing, like the hand loops above): each ratio pairs skae's
epoch with the hand epochs seconds after it, and the headline is the
median over the pairs (the first left out).

Encoding. ``transform`` of all 60,000 rows (float32 rows and uint8 images)
against a raw loop of ``module.encode`` over batches of skae's
``INFERENCE_BATCH_SIZE`` rows (4,096) under
``torch.inference_mode()`` into a preallocated output, and against
``PCA(n_components=3).transform``; a diagnostic row times skae's batched
encoding without ``transform``'s check for NaN and inf (for the MLP it is a
sum of the first layer's output per batch, instead of
scikit-learn's separate pass over the whole float array). For
the convolutional model, on 5,000 images, against raw loops of 128-row
(about the fastest) and 4,096-row batches. Rows per second, medians of
alternating repetitions (41; 5 with ``--quick``). A control times the same
raw loop twice: its ratio (1 on a perfectly steady machine) shows how much
of a ratio is noise.

Subnormal floats. skae flushes subnormal floats to zero while it trains
(the hand loops above do too). Fits of 5 epochs of the tutorials' MLP on
Fashion-MNIST, with skae's flushing and with it switched off (torch's
default IEEE arithmetic, as the tutorials train), alternating, 3
repetitions: the time of every epoch and of all of them.

Memory. One fresh process per case fits one epoch on 60,000 x 784 (uint8
images, float32 rows). After loading the data and a warm-up fit, the peak
resident memory is reset (``/proc/self/clear_refs``; else a thread samples
it) and the table reports the peak during ``fit`` minus the memory before.

Usage
-----
    python benchmarks/bench_speed.py [--quick] [--threads 1 2] [--repeats N]
        [--out-dir DIR]

``--quick`` (about 2 minutes) uses 10,000 Fashion-MNIST rows, 3 repetitions
and fewer epochs; the default run (7 repetitions) takes about 21 minutes on
2 idle cores. The report gives the share of CPU time that other processes
used, and that the hypervisor stole, during the run. Run
it on a quiet machine: other busy processes make timings noisy, and
multi-thread runs then slow down several-fold (OpenMP threads wait for each
other). Outputs in ``benchmarks/results/speed/``: ``speed.md`` (tables and
environment), ``speed.json`` (every figure and every repetition),
``speed.csv`` (one row per measurement); ``--quick`` writes
``speed_quick.*``. ``benchmarks/pool_speed.py`` pools the repetitions of
several reports (one run cannot show a 5% difference on a shared machine).
"""

import argparse
import copy
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # Run as a plain script from a checkout: import the skae next to it.
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from skorch import NeuralNet  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from benchmarks.environment import cpu_model, git_commit, package_version  # noqa: E402
import skae._base  # noqa: E402
import skae._net  # noqa: E402
from skae import AutoencoderTransformer  # noqa: E402
from skae._base import INFERENCE_BATCH_SIZE  # noqa: E402
from skae._net import supports_fused  # noqa: E402
from skae._runtime import flushed_denormals  # noqa: E402

MIB = 2**20
TARGETS = {"fashion": 1.05, "digits": 1.25, "conv": 1.05, "encode": 1.05}
# Room for the model, its optimizer state, one batch's activations and
# torch's per-thread buffers in the memory check.
MEMORY_SLACK_MIB = 64


# ----------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------
def load_fashion(n_rows):
    """(uint8 images (n, 28, 28), source description)."""
    folder = Path(os.environ.get("SKAE_DATA", REPO_ROOT.parent / "shared" / "data"))
    path = folder / "fashion_mnist.npz"
    if path.exists():
        with np.load(path) as data:
            images = np.ascontiguousarray(data["x_train"][:n_rows])
        return images, f"Fashion-MNIST ({path})"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_rows, 28, 28), dtype=np.uint8)
    return images, f"random uint8 images ({path} not found)"


def as_float_rows(images):
    rows = images.reshape(len(images), -1).astype(np.float32)
    rows *= np.float32(1 / 255)
    return rows


# ----------------------------------------------------------------------
# Contenders
# ----------------------------------------------------------------------
def minor_page_faults():
    """Minor page faults of this process so far (all its threads).

    A fault costs about 3 us here (the kernel maps and zeroes a fresh page):
    a loop whose allocations do not fit the blocks its allocator already
    holds takes thousands an epoch. Unlike time, the count does not move
    with the load of a shared machine.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def batch_median_epoch(start, batch_starts, end):
    """An epoch's wall time with its inner steps replaced by their median.

    A step runs from one batch's start to the next batch's start, so it holds
    everything the loop does per batch. The time before the first batch and
    the last step (which holds the epoch's closing work: callbacks, the
    epoch's loss) are kept as measured. A slow spell of a shared machine that
    covers less than half of the epoch's steps does not move the median.
    """
    if len(batch_starts) < 3:
        return end - start
    inner_steps = np.diff(batch_starts)
    return ((batch_starts[0] - start) + len(inner_steps) * float(np.median(inner_steps))
            + (end - batch_starts[-1]))


class EpochClock(Callback):
    """Wall and CPU seconds of every epoch, from on_epoch_begin to on_epoch_end,
    and its time by :func:`batch_median_epoch`.

    The training batches' start times come from :func:`timed_batches`: a
    batch hook (``on_batch_begin``) would itself switch skae's net to
    skorch's per-batch loop (see ``AutoencoderNet.run_single_epoch``).
    """

    batch_starts = []  # shared with timed_batches: one fit runs at a time

    def initialize(self):
        self.epochs_ = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        EpochClock.batch_starts.clear()
        self._start = (time.perf_counter(), time.process_time(), minor_page_faults())

    def on_epoch_end(self, net, **kwargs):
        end = time.perf_counter()
        wall, cpu, faults = self._start
        self.epochs_.append((end - wall, time.process_time() - cpu,
                             batch_median_epoch(wall, EpochClock.batch_starts, end),
                             minor_page_faults() - faults))


class BatchHookEpochClock(EpochClock):
    """:class:`EpochClock` for plain skorch nets: batch start times from ``on_batch_begin``."""

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            EpochClock.batch_starts.append(time.perf_counter())


def timed_batches():
    """Patch skae's training iterator to note when each batch is handed to the loop."""
    iterate = skae._net.BatchIterator.__iter__

    def timed_iter(self):
        for batch in iterate(self):
            if self.shuffle:
                EpochClock.batch_starts.append(time.perf_counter())
            yield batch

    return mock.patch.object(skae._net.BatchIterator, "__iter__", timed_iter)


def timed_fit(fit, clock):
    """Run ``fit()``; return per-epoch (wall, cpu) lists and the fit's totals."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    fitted = fit()
    total = (time.perf_counter() - start_wall, time.process_time() - start_cpu)
    epochs = clock(fitted)
    return {
        "epoch_wall": [e[0] for e in epochs],
        "epoch_cpu": [e[1] for e in epochs],
        "epoch_batch_median": [e[2] for e in epochs],
        "epoch_page_faults": [e[3] for e in epochs],
        "fit_wall": total[0],
        "fit_cpu": total[1],
    }


def skae_estimator(case, n_threads, epochs, **extra):
    return AutoencoderTransformer(
        n_components=case["n_components"], hidden_layer_sizes=case.get("hidden", ()),
        architecture=case.get("architecture", "mlp"), batch_size=case["batch_size"],
        max_iter=epochs, n_iter_no_change=epochs, n_threads=n_threads, device="cpu",
        random_state=0, **extra,
    )


def run_skae(case, X, n_threads, epochs):
    def fit():
        estimator = skae_estimator(case, n_threads, epochs,
                                   callbacks=[("epoch_clock", EpochClock())])
        with timed_batches():
            return estimator.fit(X)

    return timed_fit(fit, lambda est: dict(est.net_.callbacks_)["epoch_clock"].epochs_)


def make_module(case, X):
    """The module skae trains for ``case``, built by skae itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator = skae_estimator(case, 1, 1).fit(X[:256])
    return estimator.net_.module_


def fresh_copy(template, seed):
    module = copy.deepcopy(template)
    torch.manual_seed(seed)
    for layer in module.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return module.train()


class HandLoop:
    """A minimal hand-written loop with fused Adam, trained one epoch at a time.

    Each epoch shuffles the whole float32 tensor once and slices it
    (``gather=False``), or gathers each batch's rows with ``index_select``
    (``gather=True``, which skips writing a shuffled copy of the data).
    """

    def __init__(self, case, X_tensor, template, seed, gather=False):
        self.X_tensor = X_tensor
        self.batch_size = case["batch_size"]
        self.gather = gather
        self.generator = torch.Generator().manual_seed(seed)
        self.module = fresh_copy(template, seed)
        fused = {"fused": True} if supports_fused(torch.optim.Adam, "cpu") else {}
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=1e-3, **fused)

    def epoch(self):
        """Train one epoch; return its (wall s, CPU s, batch-median wall s, page faults)."""
        X_tensor, batch_size, module, optimizer = (self.X_tensor, self.batch_size,
                                                   self.module, self.optimizer)
        n = len(X_tensor)
        start = (time.perf_counter(), time.process_time(), minor_page_faults())
        order = torch.randperm(n, generator=self.generator)
        shuffled = None if self.gather else X_tensor[order]
        total = torch.zeros(())
        batch_starts = []
        for begin in range(0, n, batch_size):
            batch_starts.append(time.perf_counter())
            if self.gather:
                batch = X_tensor.index_select(0, order[begin:begin + batch_size])
            else:
                batch = shuffled[begin:begin + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(module(batch)[0], batch)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
        epoch_loss = float(total) / n  # noqa: F841  (what a real loop would log)
        end = time.perf_counter()
        return (end - start[0], time.process_time() - start[1],
                batch_median_epoch(start[0], batch_starts, end),
                minor_page_faults() - start[2])


def run_hand(case, X_tensor, template, n_threads, epochs, seed, gather=False, flush=True):
    """Fit a :class:`HandLoop` for ``epochs`` epochs.

    With ``flush``, subnormal floats are flushed to zero in every torch
    thread while it trains, as skae does (``flush=False``: IEEE arithmetic,
    torch's default, as in the tutorials).
    """
    torch.set_num_threads(n_threads)

    def fit():
        with flushed_denormals("cpu") if flush else nullcontext():
            loop = HandLoop(case, X_tensor, template, seed, gather)
            return [loop.epoch() for _ in range(epochs)]

    return timed_fit(fit, lambda epoch_times: epoch_times)


class InterleavedHandEpochs(Callback):
    """After each of skae's epochs, one epoch of each hand loop, in alternating order.

    Placed after :class:`EpochClock`, so skae's epoch is timed before the
    hand epochs run; they run inside skae's fit, with its threads and its
    flushing of subnormals (which the hand loops use too). Copies (skae
    copies its callbacks at each fit) share the same loops.
    """

    def __init__(self, loops):
        self.loops = loops

    def __deepcopy__(self, memo):
        return type(self)(self.loops)

    def initialize(self):
        self.epochs_ = {name: [] for name in self.loops}
        return self

    def on_epoch_end(self, net, **kwargs):
        names = list(self.loops)
        if len(net.history) % 2 == 0:
            names.reverse()
        for name in names:
            self.epochs_[name].append(self.loops[name].epoch())


class PlainSkorchAutoencoder(NeuralNet):
    """skorch.NeuralNet as a user would write it: only the loss unpacks the tuple."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return super().get_loss(y_pred[0], y_true, X=X, training=training)


def run_skorch(case, X, template, n_threads, epochs, seed):
    torch.set_num_threads(n_threads)

    def fit():
        net = PlainSkorchAutoencoder(
            fresh_copy(template, seed), criterion=torch.nn.MSELoss,
            optimizer=torch.optim.Adam, lr=1e-3, batch_size=case["batch_size"],
            max_epochs=epochs, train_split=None, iterator_train__shuffle=True,
            callbacks=[("epoch_clock", BatchHookEpochClock())], verbose=0, device="cpu",
        )
        return net.fit(X, X)

    return timed_fit(fit, lambda net: dict(net.callbacks_)["epoch_clock"].epochs_)


# ----------------------------------------------------------------------
# FLOPs
# ----------------------------------------------------------------------
def training_flops_per_row(template, sample_shape, batch_size):
    """Matmul and convolution FLOPs of one training step, per row."""
    from torch.utils.flop_counter import FlopCounterMode

    module = fresh_copy(template, 0)
    batch = torch.rand(batch_size, *sample_shape)
    counter = FlopCounterMode(display=False)
    with counter:
        loss = torch.nn.functional.mse_loss(module(batch)[0], batch)
        loss.backward()
    return counter.get_total_flops() / batch_size


def matmul_peak_gflops(n_threads, size=2048, repeats=7):
    torch.set_num_threads(n_threads)
    a, b = torch.rand(size, size), torch.rand(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


# ----------------------------------------------------------------------
# Training cases
# ----------------------------------------------------------------------
def training_cases(args, fashion_images, fashion_rows):
    digits = (load_digits().data / 16).astype(np.float32)
    conv_images = fashion_images[:args.conv_rows]
    mlp = {"hidden": (128, 64, 12), "n_components": 3}
    e = args.fashion_epochs
    return [
        dict(name="fashion_mlp_b128", group="fashion", X=fashion_rows, X_uint8=fashion_images,
             batch_size=128, epochs=e, skorch=True, interleaved_epochs=args.interleaved_epochs,
             **mlp,
             description=f"Fashion-MNIST {len(fashion_rows)} x 784, MLP 784-128-64-12-3"),
        dict(name="fashion_mlp_b256", group="fashion", X=fashion_rows, batch_size=256,
             epochs=e, interleaved_epochs=args.interleaved_epochs, **mlp,
             description=f"Fashion-MNIST {len(fashion_rows)} x 784, MLP 784-128-64-12-3"),
        dict(name="fashion_wide_b128", group="fashion", X=fashion_rows, batch_size=128,
             epochs=e, hidden=(512, 256), n_components=32,
             description=f"Fashion-MNIST {len(fashion_rows)} x 784, MLP 784-512-256-32"),
        dict(name="digits_mlp_b128", group="digits", X=digits, batch_size=128,
             epochs=args.digits_epochs, skorch=True,
             interleaved_epochs=args.interleaved_digits_epochs, **mlp,
             description="digits 1797 x 64, MLP 64-128-64-12-3"),
        dict(name="conv_b128", group="conv", X=conv_images[:, None].astype(np.float32) / 255,
             batch_size=128, epochs=1, architecture="conv", n_components=3,
             description=f"Fashion-MNIST {len(conv_images)} x 1 x 28 x 28, conv (32, 64, 64)-3"),
    ]


# Candidates for the reference, "the best hand-written loop".
BEST_HAND_LOOPS = ("hand", "hand gather")


def run_order(names, repeat):
    """The contenders in a new random order for each repetition (seeded).

    A fixed rotation would always run the same contender right after the
    same other one, and what ran before (caches, the allocator, clock
    speed) biases a timing by a few percent.
    """
    order = list(names)
    random.Random(repeat).shuffle(order)
    return order


def median(values):
    return float(statistics.median(values))


def summarise(runs, flops_per_row, n_rows, peak):
    """Medians of one contender's repetitions, with achieved GFLOP/s."""
    epoch_wall = [median(r["epoch_wall"]) for r in runs]
    epoch_cpu = [median(r["epoch_cpu"]) for r in runs]
    epoch_batch_median = [median(r["epoch_batch_median"]) for r in runs]
    overhead = [r["fit_wall"] - sum(r["epoch_wall"]) for r in runs]
    summary = {
        "epoch_wall_s": median(epoch_wall),
        "epoch_cpu_s": median(epoch_cpu),
        "fit_overhead_s": median(overhead),
        "fit_wall_per_epoch_s": median([r["fit_wall"] / len(r["epoch_wall"]) for r in runs]),
        "repeats_epoch_wall_s": epoch_wall,
        "repeats_epoch_cpu_s": epoch_cpu,
        "epoch_batch_median_s": median(epoch_batch_median),
        "repeats_epoch_batch_median_s": epoch_batch_median,
        "epoch_page_faults": median([median(r["epoch_page_faults"]) for r in runs]),
    }
    summary["gflops"] = flops_per_row * n_rows / summary["epoch_wall_s"] / 1e9
    summary["fraction_of_peak"] = summary["gflops"] / peak
    return summary


def paired_ratio(runs, reference, key):
    return median([median(r[key]) / median(h[key]) for r, h in zip(runs, reference)])


def add_spread(training, encoding):
    """Add the quartiles of the per-repetition ratios (``ratio_quartiles``) to each result.

    The middle half of the repetitions shows how far one ratio can be
    trusted: on a shared virtual machine single repetitions scatter by
    10-20%. Computed from the stored repetitions, so that an older JSON
    report can be re-rendered with it.
    """
    def quartiles(result, reference, key):
        ratios = [a / b for a, b in zip(result[key], reference[key])]
        return [float(q) for q in np.percentile(ratios, [25, 75])]

    for r in training:
        if r["contender"] in BEST_HAND_LOOPS:
            continue
        hands = [h for h in training if h["n_threads"] == r["n_threads"]
                 and h["case"] == r["case"] and h["contender"] in BEST_HAND_LOOPS]
        best = min(hands, key=lambda h: h["epoch_wall_s"])
        r["ratio_quartiles"] = quartiles(r, best, "repeats_epoch_wall_s")
        if "repeats_epoch_batch_median_s" in r:
            r["batch_median_quartiles"] = quartiles(r, best, "repeats_epoch_batch_median_s")
    for r in encoding:
        reference = next(e for e in encoding if e["n_threads"] == r["n_threads"]
                         and e["contender"] == r["reference"])
        r["ratio_quartiles"] = quartiles(r, reference, "repeats_s")


def _fmt_spread(result, key="ratio_quartiles"):
    quartiles = result.get(key)
    return f"{quartiles[0]:.3f}-{quartiles[1]:.3f}" if quartiles else ""


def min_ratio(runs, reference, key):
    """Ratio of the fastest repetitions: noise on a shared machine only slows runs."""
    return min(median(r[key]) for r in runs) / min(median(h[key]) for h in reference)


def bench_training(args, cases, n_threads, peak, log):
    results = []
    for case in cases:
        X = case["X"]
        template = make_module(case, X)
        X_tensor = torch.from_numpy(X)
        seeds = iter(range(10_000))
        contenders = {
            "hand": lambda: run_hand(case, X_tensor, template, n_threads, case["epochs"],
                                     next(seeds)),
            "hand gather": lambda: run_hand(case, X_tensor, template, n_threads,
                                            case["epochs"], next(seeds), gather=True),
            "skae": lambda: run_skae(case, X, n_threads, case["epochs"]),
        }
        if "X_uint8" in case:
            contenders["skae uint8"] = lambda: run_skae(case, case["X_uint8"], n_threads,
                                                        case["epochs"])
        if case.get("skorch") and not args.quick:
            contenders["hand IEEE"] = lambda: run_hand(case, X_tensor, template, n_threads,
                                                       case["epochs"], next(seeds), gather=True,
                                                       flush=False)
            contenders["skorch"] = lambda: run_skorch(case, X, template, n_threads,
                                                      case["epochs"], next(seeds))
        # Warm-up: lazy imports, allocator pools, the first fused-kernel call.
        small = dict(case, X=X[:512], epochs=1)
        run_hand(small, X_tensor[:512], template, n_threads, 1, 0)
        run_skae(small, X[:512], n_threads, 1)
        runs = {name: [] for name in contenders}
        names = list(contenders)
        for repeat in range(args.repeats):
            for name in run_order(names, repeat):
                runs[name].append(contenders[name]())
        flops_per_row = training_flops_per_row(template, X.shape[1:], case["batch_size"])
        # The reference is the hand loop with the lower median epoch time.
        best_hand = runs[min(BEST_HAND_LOOPS, key=lambda name: median(
            [median(run["epoch_wall"]) for run in runs[name]]))]
        for name in names:
            summary = summarise(runs[name], flops_per_row, len(X), peak)
            summary.update(
                case=case["name"], group=case["group"], description=case["description"],
                contender=name, n_threads=n_threads, batch_size=case["batch_size"],
                epochs_per_fit=case["epochs"], n_rows=len(X),
                ratio_wall=paired_ratio(runs[name], best_hand, "epoch_wall"),
                ratio_cpu=paired_ratio(runs[name], best_hand, "epoch_cpu"),
                ratio_batch_median=paired_ratio(runs[name], best_hand, "epoch_batch_median"),
                ratio_fastest=min_ratio(runs[name], best_hand, "epoch_wall"),
                target=TARGETS[case["group"]] if name.startswith("skae") else None,
            )
            if "hand IEEE" in runs and name.startswith("skae"):
                summary["ratio_to_ieee_hand"] = paired_ratio(runs[name], runs["hand IEEE"],
                                                             "epoch_wall")
            summary["meets_target"] = (None if summary["target"] is None
                                       else summary["ratio_wall"] <= summary["target"])
            results.append(summary)
            log(f"  threads={n_threads} {case['name']:18s} {name:11s} "
                f"epoch {summary['epoch_wall_s']:.3f} s  x{summary['ratio_wall']:.3f} wall "
                f"x{summary['ratio_cpu']:.3f} cpu  x{summary['ratio_batch_median']:.3f} "
                f"batch median  {summary['gflops']:.1f} GFLOP/s  "
                f"{summary['epoch_page_faults']:.0f} page faults")
    return results


def bench_interleaved(args, cases, n_threads, log):
    """skae's epochs against hand epochs run right after each of them, in one fit.

    Runs compared in :func:`bench_training` are up to a few fits apart, and
    on a shared machine the ratio of two runs scatters more the further
    apart they are (in a 15-repetition run: median deviation 4.9% for
    adjacent runs, 8.6% three or more apart). Here each of skae's epochs is
    paired with the hand loops' epochs that follow it (both loops, in
    alternating order), seconds apart. The first pair (lazy set-up) is
    left out.
    """
    results = []
    for case in cases:
        if not case.get("interleaved_epochs"):
            continue
        X = case["X"]
        template = make_module(case, X)
        X_tensor = torch.from_numpy(X)
        loops = {"hand": HandLoop(case, X_tensor, template, seed=1),
                 "hand gather": HandLoop(case, X_tensor, template, seed=2, gather=True)}
        estimator = skae_estimator(
            case, n_threads, case["interleaved_epochs"],
            callbacks=[("epoch_clock", EpochClock()),
                       ("hand_epochs", InterleavedHandEpochs(loops))])
        with timed_batches():
            estimator.fit(X)
        callbacks = dict(estimator.net_.callbacks_)
        epochs = {"skae": callbacks["epoch_clock"].epochs_[1:],
                  **{name: times[1:] for name, times in callbacks["hand_epochs"].epochs_.items()}}
        wall = {name: np.array([e[0] for e in times]) for name, times in epochs.items()}
        batch_median = {name: np.array([e[2] for e in times]) for name, times in epochs.items()}
        reference = min(loops, key=lambda name: np.median(wall[name]))
        ratios = wall["skae"] / wall[reference]
        result = dict(
            case=case["name"], group=case["group"], description=case["description"],
            n_threads=n_threads, batch_size=case["batch_size"], n_rows=len(X),
            n_pairs=len(ratios), reference=reference,
            epoch_wall_s={name: float(np.median(times)) for name, times in wall.items()},
            page_faults_per_epoch={name: float(np.median([e[3] for e in times]))
                                   for name, times in epochs.items()},
            ratio_wall=float(np.median(ratios)),
            ratio_quartiles=[float(q) for q in np.percentile(ratios, [25, 75])],
            ratio_batch_median=float(np.median(batch_median["skae"] / batch_median[reference])),
            ratio_to_each={name: float(np.median(wall["skae"] / wall[name])) for name in loops},
            repeats_epoch_wall_s={name: times.tolist() for name, times in wall.items()},
            target=TARGETS[case["group"]],
        )
        result["meets_target"] = result["ratio_wall"] <= result["target"]
        results.append(result)
        log(f"  threads={n_threads} {case['name']:18s} interleaved, {len(ratios)} pairs: "
            f"skae {result['epoch_wall_s']['skae']:.3f} s, {reference} "
            f"{result['epoch_wall_s'][reference]:.3f} s, x{result['ratio_wall']:.3f} wall "
            f"(middle half {result['ratio_quartiles'][0]:.3f}-"
            f"{result['ratio_quartiles'][1]:.3f}) x{result['ratio_batch_median']:.3f} "
            "batch median")
    return results


# ----------------------------------------------------------------------
# Subnormal floats
# ----------------------------------------------------------------------
def bench_flushing(args, X, n_threads, log):
    """Epoch times of skae fits of several epochs, flushing subnormals or not.

    ``IEEE`` is the same fit with skae's flushing switched off (torch's
    default arithmetic, as in the tutorials' loops). Medians over
    repetitions, alternating in a random order, of each epoch's time.
    """
    case = {"n_components": 3, "hidden": (128, 64, 12), "batch_size": 128}
    ieee = mock.patch.object(skae._base, "flushed_denormals", lambda device: nullcontext())
    epochs = {"flushed": [], "IEEE": []}
    for repeat in range(args.flush_repeats):
        for name in run_order(epochs, repeat):
            with ieee if name == "IEEE" else nullcontext():
                fitted = skae_estimator(case, n_threads, args.flush_epochs).fit(X)
            epochs[name].append([float(t) for t in fitted.net_.history[:, "dur"]])
    result = {"n_threads": n_threads, "n_rows": len(X), "epochs": args.flush_epochs,
              "repeats_epoch_s": epochs}
    for name, runs in epochs.items():
        result[f"{name}_epoch_s"] = [median(column) for column in zip(*runs)]
        result[f"{name}_fit_s"] = median([sum(run) for run in runs])
    result["ieee_over_flushed"] = median(
        [sum(a) / sum(b) for a, b in zip(epochs["IEEE"], epochs["flushed"])])
    log(f"  threads={n_threads} {args.flush_epochs} epochs: flushed "
        f"{result['flushed_fit_s']:.2f} s, IEEE {result['IEEE_fit_s']:.2f} s "
        f"(x{result['ieee_over_flushed']:.2f}); IEEE epochs "
        + " ".join(f"{t:.2f}" for t in result["IEEE_epoch_s"]))
    return result


# ----------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------
def raw_encode(module, X_tensor, n_components, to_float, batch_rows):
    output = torch.empty(len(X_tensor), n_components)
    with torch.inference_mode():
        for start in range(0, len(X_tensor), batch_rows):
            batch = to_float(X_tensor[start:start + batch_rows])
            output[start:start + len(batch)] = module.encode(batch)
    return output.numpy()


def bench_encoding(args, fashion_images, fashion_rows, n_threads, log):
    """transform against raw inference loops and PCA, alternating, rows per second."""
    def fitted(X, **params):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return AutoencoderTransformer(
                n_components=3, max_iter=1, n_threads=n_threads, device="cpu",
                random_state=0, **params).fit(X[:2000])

    mlp = fitted(fashion_rows, hidden_layer_sizes=(128, 64, 12))
    conv_images = fashion_rows[:args.conv_rows].reshape(-1, 1, 28, 28)
    conv = fitted(conv_images, architecture="conv")
    pca = PCA(n_components=3, random_state=0).fit(fashion_rows[:5000])
    rows_tensor = torch.from_numpy(fashion_rows)
    images_tensor = torch.from_numpy(fashion_images.reshape(len(fashion_images), -1))
    conv_tensor = torch.from_numpy(conv_images)

    def raw(estimator, tensor, to_float=lambda batch: batch, batch_rows=INFERENCE_BATCH_SIZE):
        torch.set_num_threads(n_threads)
        module = estimator.net_.module_.eval()
        return raw_encode(module, tensor, 3, to_float, batch_rows)

    # name: (function, rows encoded, the raw loop it is compared with)
    contenders = {
        "raw torch float32": (lambda: raw(mlp, rows_tensor), len(fashion_rows), None),
        # Control: the same raw loop again. Its ratio to the first is the
        # noise of this measurement (it would be 1.000 on a perfect machine).
        "raw torch float32, again (noise)": (lambda: raw(mlp, rows_tensor), len(fashion_rows),
                                             "raw torch float32"),
        "skae float32": (lambda: mlp.transform(fashion_rows), len(fashion_rows),
                         "raw torch float32"),
        # Diagnostic: transform less its input validation and its check for
        # NaN and inf (done on the first layer's output, batch by batch).
        "skae float32 encoding only": (
            lambda: mlp._map_batches(fashion_rows, lambda m, b: m.encode(b), 3),
            len(fashion_rows), "raw torch float32"),
        "raw torch uint8": (lambda: raw(mlp, images_tensor, lambda b: b.float().div_(255)),
                            len(fashion_rows), None),
        "skae uint8": (lambda: mlp.transform(fashion_images), len(fashion_rows),
                       "raw torch uint8"),
        "PCA float32": (lambda: pca.transform(fashion_rows), len(fashion_rows),
                        "raw torch float32"),
        "raw torch conv, 128-row batches": (lambda: raw(conv, conv_tensor, batch_rows=128),
                                            len(conv_images), None),
        f"raw torch conv, {INFERENCE_BATCH_SIZE}-row batches": (
            lambda: raw(conv, conv_tensor), len(conv_images), "raw torch conv, 128-row batches"),
        "skae conv": (lambda: conv.transform(conv_images), len(conv_images),
                      "raw torch conv, 128-row batches"),
    }
    differences = {
        "skae float32": np.abs(mlp.transform(fashion_rows) - raw(mlp, rows_tensor)).max(),
        "skae conv": np.abs(conv.transform(conv_images) - raw(conv, conv_tensor)).max(),
    }
    times = {name: [] for name in contenders}
    names = list(contenders)
    for repeat in range(args.encode_repeats):
        for name in run_order(names, repeat):
            start = time.perf_counter()
            contenders[name][0]()
            times[name].append(time.perf_counter() - start)
    results = []
    for name in names:
        _, n_rows, reference = contenders[name]
        reference = reference or name
        seconds = median(times[name])
        ratio = median([t / r for t, r in zip(times[name], times[reference])])
        fastest = min(times[name]) / min(times[reference])
        is_skae = name.startswith("skae") and not name.endswith("only")
        results.append({
            "contender": name, "reference": reference, "n_threads": n_threads,
            "n_rows": n_rows, "seconds": seconds, "rows_per_s": n_rows / seconds,
            "ratio_to_raw": ratio, "ratio_fastest": fastest, "repeats_s": times[name],
            "target": TARGETS["encode"] if is_skae else None,
            "meets_target": ratio <= TARGETS["encode"] if is_skae else None,
            "max_abs_diff_to_raw": (float(differences[name]) if name in differences
                                    else None),
        })
        log(f"  threads={n_threads} encode {name:33s} {seconds * 1000:8.1f} ms  "
            f"{n_rows / seconds:10.0f} rows/s  x{ratio:.3f}")
    return results


# ----------------------------------------------------------------------
# Memory (one fresh process per case)
# ----------------------------------------------------------------------
def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class PeakMemory:
    """Peak resident memory of a block, in bytes, above the memory before it.

    On Linux the kernel's high-water mark is reset before the block
    (``/proc/self/clear_refs``) and read after it: exact. Elsewhere a thread
    samples psutil's RSS every millisecond.
    """

    def __enter__(self):
        import gc

        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM after clear_refs"
            self.before = _status_kib("VmRSS") * 1024
        except OSError:
            import psutil

            self.method = "psutil sampling every 1 ms"
            self._process = psutil.Process()
            self.before = self._sampled_peak = self._process.memory_info().rss
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._sampled_peak = max(self._sampled_peak, self._process.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc_info):
        if self.method.startswith("VmHWM"):
            self.peak = _status_kib("VmHWM") * 1024
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._sampled_peak, self._process.memory_info().rss)


def memory_child(kind, n_rows, n_threads):
    """Measure one fit in this (fresh) process; print a JSON line."""
    images, source = load_fashion(n_rows)
    X = images if kind == "uint8" else as_float_rows(images)
    del images
    warnings.simplefilter("ignore", ConvergenceWarning)

    def estimator():
        return AutoencoderTransformer(n_components=3, hidden_layer_sizes=(128, 64, 12),
                                      max_iter=1, n_threads=n_threads, device="cpu",
                                      random_state=0)

    estimator().fit(X[:256])  # lazy imports and allocator set-up are not the data's
    with PeakMemory() as memory:
        estimator().fit(X)
    n_features = int(np.prod(X.shape[1:]))
    print(json.dumps({
        "kind": kind, "shape": list(X.shape), "dtype": str(X.dtype), "source": source,
        "input_mib": X.nbytes / MIB, "float32_copy_mib": len(X) * n_features * 4 / MIB,
        "before_mib": memory.before / MIB, "peak_mib": memory.peak / MIB,
        "increase_mib": (memory.peak - memory.before) / MIB, "method": memory.method,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def run_json_child(command, env=None):
    """Run ``command`` in a fresh process; return the JSON of its last output line."""
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_memory(args, n_threads, log):
    results = []
    for kind in ("uint8", "float32"):
        record = run_json_child([sys.executable, __file__, "--memory-child", kind,
                                 "--rows", str(args.rows), "--threads", str(n_threads)])
        copies = 0 if kind == "uint8" else 1
        record["limit_mib"] = copies * record["float32_copy_mib"] + MEMORY_SLACK_MIB
        record["meets_target"] = record["increase_mib"] <= record["limit_mib"]
        record["n_threads"] = n_threads
        results.append(record)
        log(f"  memory {kind:7s} {record['shape']}: +{record['increase_mib']:.1f} MiB "
            f"(limit {record['limit_mib']:.0f} MiB, float32 copy "
            f"{record['float32_copy_mib']:.0f} MiB)")
    return results


# ----------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------
def cpu_counters():
    """Busy, stolen and total jiffies of the whole machine, and this process's CPU seconds.

    Linux ``/proc/stat``; None elsewhere. The process's time includes its
    waited-for children (the memory measurements).
    """
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle, iowait
    steal = fields[7] if len(fields) > 7 else 0
    total = sum(fields[:8])
    times = os.times()
    own = times.user + times.system + times.children_user + times.children_system
    return {"busy": total - idle - steal, "steal": steal, "total": total, "own_s": own}


def cpu_sharing(start, end):
    """Fractions of the machine's CPU time that others used, or the hypervisor stole.

    ``others``: busy time not spent by this benchmark, over all cores'
    time; ``steal``: time a virtual machine's cores waited for the host.
    Either above a few percent means the timings are noisy.
    """
    if start is None or end is None:
        return None
    hertz = os.sysconf("SC_CLK_TCK")
    total = end["total"] - start["total"]
    own = (end["own_s"] - start["own_s"]) * hertz
    return {
        "others": max(0.0, (end["busy"] - start["busy"] - own) / total),
        "steal": (end["steal"] - start["steal"]) / total,
    }


def environment(args, data_source):
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([sys.executable.split("/")[-1], *sys.argv]),
        "git_commit": git_commit(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "load_average_at_start": list(os.getloadavg()),
        "threads": args.threads,
        "repeats": args.repeats,
        "data": data_source,
        "fused_adam": supports_fused(torch.optim.Adam, "cpu"),
        "inference_batch_size": INFERENCE_BATCH_SIZE,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{name: package_version(name) for name in ("torch", "skorch", "scikit-learn",
                                                    "numpy", "skae")},
    }


def _fmt(value, digits=3):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(env, peaks, training, encoding, memory, flushing=(), interleaved=()):
    lines = ["# skae speed against a hand-written PyTorch loop", ""]
    lines += [f"- **{key}**: {value}" for key, value in env.items()]
    sharing = env.get("cpu_time_used_by_others")
    if sharing and (sharing["others"] > 0.03 or sharing["steal"] > 0.02):
        lines += ["", f"**Warning**: other processes used {sharing['others']:.0%} and the "
                  f"hypervisor stole {sharing['steal']:.0%} of the cores' time during the run, "
                  "so single repetitions vary by 10-20% and the ratios by several percent. "
                  "Re-run on a quiet machine."]
    elif env["load_average_at_start"][0] > 0.5:
        lines += ["", f"**Warning**: load average {env['load_average_at_start'][0]:.1f} at the "
                  "start: other processes were running; the ratios may carry several "
                  "percent of noise."]
    lines += ["", "Matmul peak (2048 x 2048 float32, best of 7): " + ", ".join(
        f"{peak:.1f} GFLOP/s with {n} thread(s)" for n, peak in peaks.items()), ""]
    lines += [
        "## Summary: skae against the best hand-written loop", "",
        "Wall-clock ratios, medians of paired repetitions (lower is better; "
        "\"middle half\": quartiles of the per-repetition ratios, the noise of one "
        "ratio; \"fastest\": ratio of each side's fastest repetition; \"batch "
        "median\": the same ratio of epoch times whose inner batch steps are "
        "replaced by their median, which slow spells of a shared machine shorter "
        "than half an epoch do not move; \"met\" is judged on the wall-clock ratio).",
        "",
        "| what | threads | ratio | middle half | fastest | batch median | its middle half "
        "| target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in training:
        if r["target"] is not None:
            lines.append(
                f"| epoch: {r['case']} ({r['contender']}) | {r['n_threads']} | "
                f"{_fmt(r['ratio_wall'])} | {_fmt_spread(r)} | {_fmt(r['ratio_fastest'])} | "
                f"{_fmt(r.get('ratio_batch_median'))} | "
                f"{_fmt_spread(r, 'batch_median_quartiles')} | "
                f"{_fmt(r['target'], 2)} | {_fmt(r['meets_target'])} |")
    for r in interleaved:
        lines.append(
            f"| epoch, interleaved ({r['n_pairs']} adjacent pairs, against `{r['reference']}`): "
            f"{r['case']} (skae) | {r['n_threads']} | {_fmt(r['ratio_wall'])} | "
            f"{_fmt_spread(r)} | | {_fmt(r['ratio_batch_median'])} | | "
            f"{_fmt(r['target'], 2)} | {_fmt(r['meets_target'])} |")
    for r in training:
        if "ratio_to_ieee_hand" in r:
            lines.append(
                f"| epoch: {r['case']} ({r['contender']}) against `hand IEEE`, the "
                f"tutorials' arithmetic | {r['n_threads']} | {_fmt(r['ratio_to_ieee_hand'])} "
                "| | | | | | |")
    for r in encoding:
        if r["target"] is not None or r["contender"].endswith("(noise)"):
            lines.append(
                f"| transform: {r['contender']} | {r['n_threads']} | "
                f"{_fmt(r['ratio_to_raw'])} | {_fmt_spread(r)} | {_fmt(r['ratio_fastest'])} | "
                f"| | {_fmt(r['target'], 2)} | {_fmt(r['meets_target'])} |")
    for r in memory:
        lines.append(
            f"| fit peak memory: {r['dtype']} {tuple(r['shape'])}, +{r['increase_mib']:.1f} MiB "
            f"| {r['n_threads']} | {r['increase_mib'] / r['float32_copy_mib']:.3f} float32 "
            f"copies | | | | | <= {r['limit_mib']:.0f} MiB | {_fmt(r['meets_target'])} |")
    lines.append("")
    lines += [
        "## Training: one epoch", "",
        "Ratios are medians over the repetitions of the paired ratio contender / the "
        "best hand loop (of `hand` and `hand gather`, the one with the lower median "
        "epoch time) in the same repetition. `overhead` is a fit's time outside its "
        "epochs.", "",
        "| threads | case | contender | epoch s | x hand (wall) | x hand (CPU) | "
        "x hand (fastest) | x hand (batch median) | target | met | overhead s | GFLOP/s "
        "| of peak | page faults / epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in training:
        lines.append(
            f"| {r['n_threads']} | {r['description']}, batch {r['batch_size']} | "
            f"{r['contender']} | {_fmt(r['epoch_wall_s'])} | {_fmt(r['ratio_wall'])} | "
            f"{_fmt(r['ratio_cpu'])} | {_fmt(r['ratio_fastest'])} | "
            f"{_fmt(r.get('ratio_batch_median'))} | {_fmt(r['target'], 2)} | "
            f"{_fmt(r['meets_target'])} | "
            f"{_fmt(r['fit_overhead_s'])} | {_fmt(r['gflops'], 1)} | "
            f"{r['fraction_of_peak']:.0%} | {r['epoch_page_faults']:,.0f} |")
    if interleaved:
        lines += [
            "", "## Training: interleaved epochs", "",
            "One skae fit in which, after each of skae's epochs, each hand loop trains "
            "one epoch (the two in alternating order), so that every skae epoch is "
            "compared with hand epochs seconds away; ratios are medians of these "
            "adjacent pairs (the first pair left out). The reference is the hand loop "
            "with the lower median.", "",
            "| threads | case | pairs | skae epoch s | hand epoch s | hand gather epoch s | "
            "x hand | x hand gather | x best (wall) | middle half | x best (batch median) "
            "| page faults / epoch (skae, hand, gather) | target | met |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in interleaved:
            seconds, each, faults = (r["epoch_wall_s"], r["ratio_to_each"],
                                     r["page_faults_per_epoch"])
            lines.append(
                f"| {r['n_threads']} | {r['description']}, batch {r['batch_size']} | "
                f"{r['n_pairs']} | {_fmt(seconds['skae'])} | {_fmt(seconds['hand'])} | "
                f"{_fmt(seconds['hand gather'])} | {_fmt(each['hand'])} | "
                f"{_fmt(each['hand gather'])} | {_fmt(r['ratio_wall'])} | {_fmt_spread(r)} | "
                f"{_fmt(r['ratio_batch_median'])} | "
                + ", ".join(f"{faults[name]:,.0f}" for name in ("skae", "hand", "hand gather"))
                + f" | {_fmt(r['target'], 2)} | {_fmt(r['meets_target'])} |")
    lines += [
        "", "## Subnormal floats: fits of several epochs", "",
        "skae flushes subnormal floats to zero while it trains; `IEEE` is the same fit "
        "(tutorials' MLP, batch 128, Adam) with the flushing switched off, torch's default "
        "arithmetic. Medians over alternating repetitions.", "",
        "| threads | rows | epochs | flushed: all epochs, s | IEEE: all epochs, s | IEEE / flushed | "
        "flushed: epoch s | IEEE: epoch s |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| {r['n_threads']} | {r['n_rows']} | {r['epochs']} | {r['flushed_fit_s']:.2f} | "
          f"{r['IEEE_fit_s']:.2f} | {r['ieee_over_flushed']:.2f} | "
          + " ".join(f"{t:.2f}" for t in r["flushed_epoch_s"]) + " | "
          + " ".join(f"{t:.2f}" for t in r["IEEE_epoch_s"]) + " |" for r in flushing),
        "", "## Encoding: all rows", "",
        "| threads | contender | rows | ms | rows/s | compared with | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in encoding:
        lines.append(
            f"| {r['n_threads']} | {r['contender']} | {r['n_rows']} | "
            f"{r['seconds'] * 1000:.1f} | {r['rows_per_s']:,.0f} | {r['reference']} | "
            f"{_fmt(r['ratio_to_raw'])} | "
            f"{_fmt(r['target'], 2)} | {_fmt(r['meets_target'])} |")
    lines += [
        "", "## Peak memory of `fit` (one epoch, fresh process)", "",
        f"Limit: the float32 copies allowed (none for uint8, one for float32) plus "
        f"{MEMORY_SLACK_MIB} MiB for the model, a batch and torch's buffers.", "",
        "| input | input MiB | float32 copy MiB | before MiB | peak MiB | increase MiB | "
        "limit MiB | met | method |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in memory:
        lines.append(
            f"| {r['dtype']} {tuple(r['shape'])} | {r['input_mib']:.0f} | "
            f"{r['float32_copy_mib']:.0f} | {r['before_mib']:.0f} | {r['peak_mib']:.0f} | "
            f"{r['increase_mib']:.1f} | {r['limit_mib']:.0f} | {_fmt(r['meets_target'])} | "
            f"{r['method']} |")
    return "\n".join(lines) + "\n"


def write_csv(path, training, encoding, memory, interleaved=()):
    import csv

    columns = ["section", "n_threads", "case", "contender", "batch_size", "n_rows",
               "seconds", "ratio", "ratio_cpu", "target", "meets_target", "fit_overhead_s",
               "gflops", "fraction_of_peak", "page_faults_per_epoch", "increase_mib",
               "limit_mib"]
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, columns)
        writer.writeheader()
        for r in training:
            writer.writerow({
                "section": "training_epoch", "n_threads": r["n_threads"], "case": r["case"],
                "contender": r["contender"], "batch_size": r["batch_size"],
                "n_rows": r["n_rows"], "seconds": r["epoch_wall_s"], "ratio": r["ratio_wall"],
                "ratio_cpu": r["ratio_cpu"], "target": r["target"],
                "meets_target": r["meets_target"], "fit_overhead_s": r["fit_overhead_s"],
                "gflops": r["gflops"], "fraction_of_peak": r["fraction_of_peak"],
                "page_faults_per_epoch": r["epoch_page_faults"]})
        for r in interleaved:
            writer.writerow({
                "section": "training_epoch_interleaved", "n_threads": r["n_threads"],
                "case": r["case"], "contender": f"skae against {r['reference']}",
                "batch_size": r["batch_size"], "n_rows": r["n_rows"],
                "seconds": r["epoch_wall_s"]["skae"], "ratio": r["ratio_wall"],
                "target": r["target"], "meets_target": r["meets_target"],
                "page_faults_per_epoch": r["page_faults_per_epoch"]["skae"]})
        for r in encoding:
            writer.writerow({
                "section": "encoding", "n_threads": r["n_threads"],
                "case": f"compared with {r['reference']}", "contender": r["contender"],
                "n_rows": r["n_rows"], "seconds": r["seconds"], "ratio": r["ratio_to_raw"],
                "target": r["target"], "meets_target": r["meets_target"]})
        for r in memory:
            writer.writerow({
                "section": "fit_peak_memory", "n_threads": r["n_threads"],
                "case": f"{r['dtype']} {'x'.join(map(str, r['shape']))}",
                "contender": "skae", "n_rows": r["shape"][0],
                "increase_mib": r["increase_mib"], "limit_mib": r["limit_mib"],
                "meets_target": r["meets_target"]})


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="10,000 rows, 3 repetitions: about 2 minutes")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=None,
                        help="repetitions per contender (default 7, quick 3)")
    parser.add_argument("--out-dir", type=Path,
                        default=REPO_ROOT / "benchmarks" / "results" / "speed")
    # Internal: one memory measurement in a fresh process.
    parser.add_argument("--memory-child", choices=["uint8", "float32"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if args.rows is None:
        args.rows = 10_000 if args.quick else 60_000
    args.conv_rows = 1_000 if args.quick else 5_000
    args.fashion_epochs = 1
    args.digits_epochs = 10 if args.quick else 30
    args.interleaved_epochs = 4 if args.quick else 16
    args.interleaved_digits_epochs = 20 if args.quick else 200
    args.encode_repeats = 5 if args.quick else 41
    args.flush_epochs = 3 if args.quick else 5
    args.flush_repeats = 2 if args.quick else 3
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.rows, args.threads[0])
        return
    warnings.simplefilter("ignore", ConvergenceWarning)
    started = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)

    fashion_images, source = load_fashion(args.rows)
    fashion_rows = as_float_rows(fashion_images)
    env = environment(args, source)
    busy = env["load_average_at_start"][0]
    if busy > 0.5:
        log(f"warning: load average {busy:.1f}: other processes are running; timings "
            "will be noisy and multi-thread runs can slow down several-fold")
    cases = training_cases(args, fashion_images, fashion_rows)
    counters = cpu_counters()
    peaks, training, interleaved, encoding, flushing = {}, [], [], [], []
    for n_threads in args.threads:
        peaks[n_threads] = matmul_peak_gflops(n_threads)
        log(f"threads={n_threads}: matmul peak {peaks[n_threads]:.1f} GFLOP/s")
        training += bench_training(args, cases, n_threads, peaks[n_threads], log)
        interleaved += bench_interleaved(args, cases, n_threads, log)
        encoding += bench_encoding(args, fashion_images, fashion_rows, n_threads, log)
        flushing.append(bench_flushing(args, fashion_rows, n_threads, log))
    memory = bench_memory(args, max(args.threads), log)
    add_spread(training, encoding)
    env["seconds"] = round(time.perf_counter() - started)
    env["load_average_at_end"] = list(os.getloadavg())
    env["cpu_time_used_by_others"] = cpu_sharing(counters, cpu_counters())
    env["matmul_peak_gflops"] = peaks

    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = "speed_quick" if args.quick else "speed"
    (args.out_dir / f"{stem}.md").write_text(markdown(env, peaks, training, encoding, memory,
                                                             flushing, interleaved))
    with open(args.out_dir / f"{stem}.json", "w") as file:
        json.dump({"environment": env, "training": training, "interleaved": interleaved,
                   "encoding": encoding,
                   "memory": memory, "flushing": flushing}, file, indent=1)
    write_csv(args.out_dir / f"{stem}.csv", training, encoding, memory, interleaved)
    log(f"wrote {args.out_dir / stem}.md, .json, .csv")


if __name__ == "__main__":
    main()
