"""How long is one epoch of skae against a hand-written PyTorch loop, skorch and pyod?

Per dataset (Fashion-MNIST rows and uint8 images, digits, a conv model on 5,000
images), each contender trains the same module with Adam at lr 1e-3 and the same
batch size and threads (pyod's AutoEncoder, when installed, the same MLP widths);
contenders alternate in a new random order each repetition. The reference is the faster of two hand loops (pre-shuffled slices,
or per-batch gathers); ratios are medians of the paired per-repetition ratios.

Usage: python benchmarks/bench_speed.py [--quick] [--threads 1 2] [--repeats N]
[--cases ...] [--out-dir DIR]; writes speed.{csv,json,md} (speed_quick.* with --quick).
"""

import argparse
import copy
import importlib.util
import os
import random
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from skorch import NeuralNet  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from benchmarks.report import command_line, markdown_table, write_results  # noqa: E402
from skae import AutoencoderTransformer  # noqa: E402
from skae._net import supports_fused  # noqa: E402
from skae._runtime import flushed_denormals  # noqa: E402

# Issue 7's targets: skae's epoch over the best hand loop's.
TARGETS = {"fashion": 1.05, "digits": 1.25, "conv": 1.05}
HAND_LOOPS = ("hand", "hand gather")


def median(values):
    return float(statistics.median(values))


def load_fashion(n_rows):
    """(uint8 images (n, 28, 28), source); random images of that shape without the file."""
    folder = Path(os.environ.get("SKAE_DATA", REPO_ROOT.parent / "shared" / "data"))
    path = folder / "fashion_mnist.npz"
    if path.exists():
        with np.load(path) as data:
            return np.ascontiguousarray(data["x_train"][:n_rows]), f"Fashion-MNIST ({path})"
    images = np.random.default_rng(0).integers(0, 256, size=(n_rows, 28, 28), dtype=np.uint8)
    return images, f"random uint8 images ({path} not found)"


def as_float_rows(images):
    return images.reshape(len(images), -1).astype(np.float32) * np.float32(1 / 255)


def minor_page_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class EpochClock(Callback):
    """Wall seconds and minor page faults of every epoch, on_epoch_begin to on_epoch_end."""

    def initialize(self):
        self.epochs_ = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self._start = (time.perf_counter(), minor_page_faults())

    def on_epoch_end(self, net, **kwargs):
        self.epochs_.append((time.perf_counter() - self._start[0],
                             minor_page_faults() - self._start[1]))


def _timed(epochs):
    return {"epoch_wall": [e[0] for e in epochs], "epoch_page_faults": [e[1] for e in epochs]}


def skae_estimator(case, n_threads, epochs, **extra):
    return AutoencoderTransformer(
        n_components=case["n_components"], hidden_layer_sizes=case.get("hidden", ()),
        architecture=case.get("architecture", "mlp"), batch_size=case["batch_size"],
        # A patience past max_iter: stopping early would skip the clock's last epoch end.
        max_iter=epochs, n_iter_no_change=epochs + 1, n_threads=n_threads, device="cpu",
        random_state=0, **extra)


def run_skae(case, X, n_threads, epochs):
    estimator = skae_estimator(case, n_threads, epochs,
                               callbacks=[("epoch_clock", EpochClock())]).fit(X)
    return _timed(dict(estimator.net_.callbacks_)["epoch_clock"].epochs_)


def make_module(case, X):
    """The module skae trains for ``case``, built by skae itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return skae_estimator(case, 1, 1).fit(X[:256]).net_.module_


def fresh_copy(template, seed):
    module = copy.deepcopy(template)
    torch.manual_seed(seed)
    for layer in module.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return module.train()


def run_hand(case, X_tensor, template, n_threads, epochs, seed, gather=False):
    """A minimal loop with fused Adam and subnormals flushed, as skae trains.

    Each epoch shuffles the whole tensor once and slices it, or (``gather``)
    gathers each batch's rows with ``index_select``.
    """
    torch.set_num_threads(n_threads)
    module = fresh_copy(template, seed)
    fused = {"fused": True} if supports_fused(torch.optim.Adam, "cpu") else {}
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, **fused)
    generator = torch.Generator().manual_seed(seed)
    n, batch_size, times = len(X_tensor), case["batch_size"], []
    with flushed_denormals("cpu"):
        for _ in range(epochs):
            start = (time.perf_counter(), minor_page_faults())
            order = torch.randperm(n, generator=generator)
            shuffled = None if gather else X_tensor[order]
            total = torch.zeros(())
            for begin in range(0, n, batch_size):
                batch = (X_tensor.index_select(0, order[begin:begin + batch_size]) if gather
                         else shuffled[begin:begin + batch_size])
                optimizer.zero_grad(set_to_none=True)
                loss = torch.nn.functional.mse_loss(module(batch)[0], batch)
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(batch)
            float(total)  # the epoch's loss, read once as a real loop would log it
            times.append((time.perf_counter() - start[0], minor_page_faults() - start[1]))
    return _timed(times)


class PlainSkorchAutoencoder(NeuralNet):
    """skorch.NeuralNet as a user would write it: only the loss unpacks the tuple."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return super().get_loss(y_pred[0], y_true, X=X, training=training)


def run_skorch(case, X, template, n_threads, epochs, seed):
    torch.set_num_threads(n_threads)
    net = PlainSkorchAutoencoder(
        fresh_copy(template, seed), criterion=torch.nn.MSELoss, optimizer=torch.optim.Adam,
        lr=1e-3, batch_size=case["batch_size"], max_epochs=epochs, train_split=None,
        iterator_train__shuffle=True, callbacks=[("epoch_clock", EpochClock())], verbose=0,
        device="cpu",
    ).fit(X, X)
    return _timed(dict(net.callbacks_)["epoch_clock"].epochs_)


def pyod_installed():
    return importlib.util.find_spec("pyod") is not None


def run_pyod(case, X, n_threads, epochs):
    """pyod's AutoEncoder on the MLP's widths, no preprocessing, batch norm or dropout.

    Its fit also builds the model and scores the training rows, so an epoch is
    the difference between fits of ``epochs + 1`` epochs and of one, over ``epochs``.
    """
    from pyod.models.auto_encoder import AutoEncoder

    torch.set_num_threads(n_threads)

    def fit_seconds(n_epochs):
        start = time.perf_counter()
        AutoEncoder(hidden_neuron_list=[*case["hidden"], case["n_components"]],
                    epoch_num=n_epochs, batch_size=case["batch_size"], lr=1e-3,
                    optimizer_params={}, preprocessing=False, batch_norm=False,
                    dropout_rate=0.0, device="cpu", verbose=0).fit(X)
        return time.perf_counter() - start

    epoch = (fit_seconds(epochs + 1) - fit_seconds(1)) / epochs
    return {"epoch_wall": [epoch] * epochs}


def training_cases(args):
    images, source = load_fashion(args.fashion_rows if {"fashion", "conv"} & set(args.cases)
                                  else 1)
    rows = as_float_rows(images)
    digits = (load_digits().data / 16).astype(np.float32)
    conv = images[:args.conv_rows, None].astype(np.float32) / 255
    mlp = {"hidden": (128, 64, 12), "n_components": 3, "batch_size": 128}
    cases = {
        "fashion": dict(group="fashion", X=rows, X_uint8=images, epochs=args.epochs,
                        skorch=True, **mlp,
                        description=f"Fashion-MNIST {len(rows)} x 784, MLP 784-128-64-12-3"),
        "digits": dict(group="digits", X=digits, epochs=5 * args.epochs, skorch=True, **mlp,
                       description="digits 1797 x 64, MLP 64-128-64-12-3"),
        "conv": dict(group="conv", X=conv, epochs=1, architecture="conv", n_components=3,
                     batch_size=128,
                     description=f"Fashion-MNIST {len(conv)} x 1 x 28 x 28, conv (32, 64, 64)-3"),
    }
    return {name: dict(cases[name], name=name) for name in args.cases}, source


def bench_case(case, n_threads, repeats, log):
    X, epochs = case["X"], case["epochs"]
    template, X_tensor, seeds = make_module(case, X), torch.from_numpy(X), iter(range(10**6))
    contenders = {
        "hand": lambda: run_hand(case, X_tensor, template, n_threads, epochs, next(seeds)),
        "hand gather": lambda: run_hand(case, X_tensor, template, n_threads, epochs,
                                        next(seeds), gather=True),
        "skae": lambda: run_skae(case, X, n_threads, epochs),
    }
    if "X_uint8" in case:
        contenders["skae uint8"] = lambda: run_skae(case, case["X_uint8"], n_threads, epochs)
    if case.get("skorch"):
        contenders["skorch"] = lambda: run_skorch(case, X, template, n_threads, epochs,
                                                  next(seeds))
        if pyod_installed():
            contenders["pyod"] = lambda: run_pyod(case, X, n_threads, epochs)
    # Warm-up: lazy imports, allocator pools, the first fused-kernel call.
    run_hand(dict(case, X=X[:512]), X_tensor[:512], template, n_threads, 1, 0)
    run_skae(case, X[:512], n_threads, 1)
    if "pyod" in contenders:
        run_pyod(case, X[:512], n_threads, 1)
    runs = {name: [] for name in contenders}
    for repeat in range(repeats):
        # A new random order each repetition: what ran just before biases a timing.
        order = list(contenders)
        random.Random(repeat).shuffle(order)
        for name in order:
            runs[name].append(median(contenders[name]()["epoch_wall"]))
    best = min(HAND_LOOPS, key=lambda name: median(runs[name]))
    rows = []
    for name, times in runs.items():
        ratios = [t / h for t, h in zip(times, runs[best])]
        target = TARGETS[case["group"]] if name.startswith("skae") else None
        rows.append(dict(
            case=case["name"], description=case["description"], n_threads=n_threads,
            contender=name, reference=best, epochs_per_fit=epochs, epoch_s=median(times),
            ratio=median(ratios), ratio_q1=float(np.percentile(ratios, 25)),
            ratio_q3=float(np.percentile(ratios, 75)), target=target,
            meets_target=None if target is None else median(ratios) <= target,
            repeats_epoch_s=times))
        log(f"threads={n_threads} {case['name']:8s} {name:11s} epoch {rows[-1]['epoch_s']:.3f} s"
            f"  x{rows[-1]['ratio']:.3f} {best}")
    return rows


def markdown(rows):
    def cell(value, fmt):
        return "" if value is None else fmt.format(value)

    return markdown_table(
        ["threads", "case", "contender", "epoch s", "x best hand loop", "middle half",
         "target", "met"],
        [[str(r["n_threads"]), r["description"], r["contender"], f"{r['epoch_s']:.3f}",
          f"{r['ratio']:.3f}", f"{r['ratio_q1']:.3f}-{r['ratio_q3']:.3f}",
          cell(r["target"], "{:.2f}"), {True: "yes", False: "NO"}.get(r["meets_target"], "")]
         for r in rows])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="10,000 Fashion-MNIST rows, 1 epoch, 3 repetitions")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--cases", nargs="+", choices=["fashion", "digits", "conv"],
                        default=["fashion", "digits", "conv"])
    parser.add_argument("--out-dir", type=Path,
                        default=REPO_ROOT / "benchmarks" / "results" / "speed")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.fashion_rows = 10_000 if args.quick else 60_000
    args.epochs = 1 if args.quick else 2
    args.conv_rows = 1_000 if args.quick else 5_000
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    # Fits of a few epochs stop short of convergence, or of the PCA start, by design.
    warnings.simplefilter("ignore", ConvergenceWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"skae\.")

    def log(message):
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)

    cases, source = training_cases(args)
    rows = [row for n_threads in args.threads for case in cases.values()
            for row in bench_case(case, n_threads, args.repeats, log)]
    write_results(
        args.out_dir, "speed_quick" if args.quick else "speed", rows, markdown(rows),
        title="skae's epoch against hand-written PyTorch loops, skorch and pyod",
        notes=("Lower is better. `x best hand loop`: median over repetitions of the paired "
               "ratio contender / the faster hand loop (`reference` in the CSV); `middle "
               "half`: the quartiles of those ratios, the noise of one ratio. pyod's epoch "
               "comes from fits of different lengths (see `run_pyod`)."),
        environment={"data": source, "repeats": args.repeats, "threads": args.threads,
                     "fused_adam": supports_fused(torch.optim.Adam, "cpu"),
                     "seconds": round(time.perf_counter() - started)},
        command=command_line("benchmarks/bench_speed.py", argv))
    log(f"wrote {args.out_dir}")
    return rows


if __name__ == "__main__":
    main()
