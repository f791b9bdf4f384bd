"""What share of an epoch does each of skae's overrides of skorch's loop save?

``AutoencoderNet`` overrides four skorch methods the customization guide calls
unsafe (``run_single_epoch``, ``notify``, ``train_step``, ``infer``). A variant
puts back skorch's own method for one of them (or all four). Each fit of a small
MLP AutoencoderTransformer switches variant every epoch, in rounds forwards and
backwards (ABC...CBA); an epoch is skorch's ``dur`` and a ratio pairs it with the
all-overrides epoch of its round (median over rounds and fits). A method skae
no longer overrides leaves its variant the same as "all overrides"; the results
in benchmarks/results/overrides/ were measured when it overrode all four.

Usage: python benchmarks/bench_overrides.py [--repeats 5] [--rounds 4] [--cases ...]
[--threads 1] [--out-dir DIR]; writes overrides.{csv,json,md}.
"""

import argparse
import contextlib
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
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from benchmarks.bench_speed import (as_float_rows, load_fashion, median,  # noqa: E402
                                    skae_estimator)
from benchmarks.report import command_line, markdown_table, write_results  # noqa: E402
from skae._net import AutoencoderNet  # noqa: E402

OVERRIDES = ("run_single_epoch", "notify", "train_step", "infer")
# Variant name -> the overrides it hands back to skorch.
VARIANTS = {"all overrides": (), **{f"skorch {name}": (name,) for name in OVERRIDES},
            "only run_single_epoch kept": OVERRIDES[1:], "plain skorch": OVERRIDES}


@contextlib.contextmanager
def skorch_methods(names):
    """AutoencoderNet (and its subclasses) with skorch's own ``names`` while inside."""
    kept = {name: AutoencoderNet.__dict__[name] for name in names
            if name in AutoencoderNet.__dict__}
    for name in kept:
        setattr(AutoencoderNet, name, getattr(NeuralNet, name))
    try:
        yield
    finally:
        for name, method in kept.items():
            setattr(AutoencoderNet, name, method)


def synthetic_table(n_rows, n_features, seed=0):
    """Rows near an 8-dimensional subspace, standardised, float32."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 8)) @ rng.normal(size=(8, n_features))
    X += 0.3 * rng.normal(size=X.shape)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32)


def make_cases(names, fashion_rows):
    table = synthetic_table(20_000, 64)
    small = {"hidden": (32,), "n_components": 4}
    cases = {f"table b{b}": dict(X=table, batch_size=b, **small,
                                 description=f"table 20000 x 64, MLP 64-32-4, batch {b}")
             for b in (64, 256)}
    # A callback that listens to batches sends every pass through skorch's own loop.
    cases["table b256 listened"] = dict(
        cases["table b256"], listener=True,
        description="table 20000 x 64, MLP 64-32-4, batch 256, a no-op on_batch_end callback")
    if any(name.startswith("fashion") for name in names):
        images, source = load_fashion(fashion_rows)
        rows = as_float_rows(images)
        for b in (64, 256):
            cases[f"fashion b{b}"] = dict(
                X=rows, batch_size=b, hidden=(128, 64, 12), n_components=3, source=source,
                description=f"Fashion-MNIST {len(rows)} x 784, MLP 784-128-64-12-3, batch {b}")
    return {name: cases[name] for name in names}


class SwitchOverrides(Callback):
    """Before each epoch, hands back to skorch the methods of that epoch's variant.

    Also keeps each epoch's CPU seconds of this thread (``cpu_s_``), which the
    other processes of a shared machine disturb less than wall time.
    """

    def __init__(self, schedule):
        self.schedule = schedule

    def initialize(self):
        self.cpu_s_ = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self._exit()
        self._context = skorch_methods(VARIANTS[self.schedule[len(net.history) - 1]])
        self._context.__enter__()
        self._cpu_start = time.thread_time()

    def on_epoch_end(self, net, **kwargs):
        self.cpu_s_.append(time.thread_time() - self._cpu_start)

    def _exit(self):
        context, self._context = getattr(self, "_context", None), None
        if context is not None:
            context.__exit__(None, None, None)

    def on_train_end(self, net, **kwargs):
        self._exit()


class ListenToBatchEnds(Callback):
    def on_batch_end(self, net, **kwargs):
        pass


def listeners(case):
    return [("listener", ListenToBatchEnds())] if case.get("listener") else []


def loss_curve(case, variant, n_threads, epochs):
    """(train_loss, valid_loss) of every epoch of a fit with ``variant`` throughout."""
    with skorch_methods(VARIANTS[variant]):
        estimator = skae_estimator(case, n_threads, epochs,
                                   callbacks=listeners(case)).fit(case["X"])
    return [(epoch["train_loss"], epoch.get("valid_loss")) for epoch in estimator.net_.history]


def bench_case(name, case, n_threads, rounds, repeats, log):
    # Warm-up of every variant's path, and a check that each trains the same.
    small = dict(case, X=case["X"][:2048])
    curves = {variant: loss_curve(small, variant, n_threads, 2) for variant in VARIANTS}
    times = {variant: [] for variant in VARIANTS}
    for repeat in range(repeats):
        # Epoch 1 warms up; then rounds of every variant, forwards and backwards (ABBA...).
        schedule = ["all overrides"] + [
            variant for r in range(rounds)
            for variant in (list(VARIANTS) if (r + repeat) % 2 == 0 else list(VARIANTS)[::-1])]
        callbacks = [("switch", SwitchOverrides(schedule)), *listeners(case)]
        net = skae_estimator(case, n_threads, len(schedule),
                             callbacks=callbacks).fit(case["X"]).net_
        epochs = list(zip(net.history[:, "dur"], dict(net.callbacks_)["switch"].cpu_s_))
        per_round = len(VARIANTS)
        for r in range(rounds):
            begin = 1 + r * per_round
            rounds_epochs = dict(zip(schedule[begin:begin + per_round],
                                     epochs[begin:begin + per_round]))
            for variant, seconds in rounds_epochs.items():
                times[variant].append((*seconds, *rounds_epochs["all overrides"]))
        log(f"{name} fit {repeat + 1}/{repeats}: " + ", ".join(
            f"{v} {median([p[0] for p in t]) * 1e3:.1f} ms" for v, t in times.items()))
    rows = []
    for variant, pairs in times.items():
        ratios = [wall / reference for wall, _, reference, _ in pairs]
        cpu_ratios = [cpu / reference for _, cpu, _, reference in pairs]
        ratio = median(ratios)
        rows.append(dict(
            case=name, description=case["description"], n_threads=n_threads,
            variant=variant, skorch_methods=",".join(VARIANTS[variant]),
            batch_size=case["batch_size"], n_pairs=len(pairs),
            epoch_s=median([pair[0] for pair in pairs]), ratio=ratio,
            ratio_q1=float(np.percentile(ratios, 25)),
            ratio_q3=float(np.percentile(ratios, 75)), share_saved=1 - 1 / ratio,
            cpu_ratio=median(cpu_ratios), cpu_share_saved=1 - 1 / median(cpu_ratios),
            same_curve=curves[variant] == curves["all overrides"],
            pairs_s=pairs))
    return rows


def markdown(rows):
    cases = list(dict.fromkeys(r["description"] for r in rows))
    by = {(r["description"], r["variant"]): r for r in rows}

    def cell(r):
        return (f"{r['ratio']:.3f} ({r['ratio_q1']:.3f}-{r['ratio_q3']:.3f}), "
                f"{100 * r['share_saved']:+.1f}%; CPU {r['cpu_ratio']:.3f}")

    return markdown_table(
        ["variant", *cases],
        [[variant, *(cell(by[case, variant]) for case in cases)] for variant in VARIANTS
         if variant != "all overrides"]
        + [["all overrides: epoch ms", *(f"{1e3 * by[case, 'all overrides']['epoch_s']:.1f}"
                                         for case in cases)]])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fits per case")
    parser.add_argument("--rounds", type=int, default=4,
                        help="epochs of each variant per fit")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fashion-rows", type=int, default=10_000)
    names = ["table b64", "table b256", "table b256 listened", "fashion b64", "fashion b256"]
    parser.add_argument("--cases", nargs="+", default=names, choices=names)
    parser.add_argument("--out-dir", type=Path,
                        default=REPO_ROOT / "benchmarks" / "results" / "overrides")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"skae\.")

    def log(message):
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)

    cases = make_cases(args.cases, args.fashion_rows)
    rows = [row for name, case in cases.items()
            for row in bench_case(name, case, args.threads, args.rounds, args.repeats, log)]
    write_results(
        args.out_dir, "overrides", rows, markdown(rows),
        title="What each of skae's overrides of skorch's loop saves of an epoch",
        notes=("Each cell: median over rounds and fits of the paired ratio of the variant's "
               "epoch (skorch's `dur`) to the all-overrides epoch of the same round, the "
               "quartiles of those ratios in brackets, then the share of the variant's epoch the "
               "override(s) save (1 - 1/ratio), and the same ratio of the epochs' CPU seconds "
               "of the training thread. `skorch X`: only X is skorch's own method; "
               "`plain skorch`: all four are. `same_curve` in the CSV: the variant's loss "
               "curve equals the one with all overrides."),
        n_threads=args.threads,
        environment={"data": next((c["source"] for c in cases.values() if "source" in c),
                                  "synthetic"),
                     "fits": args.repeats, "rounds": args.rounds,
                     "seconds": round(time.perf_counter() - started)},
        command=command_line("benchmarks/bench_overrides.py", argv))
    log(f"wrote {args.out_dir}")
    return rows


if __name__ == "__main__":
    main()
