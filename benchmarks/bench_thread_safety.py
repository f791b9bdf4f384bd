"""What does drawing from fit-owned generators (issue 18) cost a training epoch?

skae 0.2 builds its weights under a generator of the fit's own (a torch
function mode around the module's construction) and draws dropout masks from
the net's generator instead of torch's process-wide one. This script times
the same fits both ways, interleaved in one run so that load on the machine
hits both alike: the previous construction (``torch.random.fork_rng`` and
``torch.manual_seed``) against the new one, and ``torch.nn.Dropout`` against
``SeededDropout``. It reports the median per-epoch time of each and their ratio.

    python -m benchmarks.bench_thread_safety [--repeats 7] [--out-dir DIR]
"""

import argparse
import contextlib
import statistics
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

import skae._base
from skae import AutoencoderTransformer
from skae._modules import SeededDropout

from benchmarks.data import load_fashion_mnist
from benchmarks.report import markdown_table, write_results


@contextlib.contextmanager
def _global_seeded(seed):
    """skae 0.1's construction: fork torch's global generator and seed it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _previous_dropout(self, x):
    return torch.nn.functional.dropout(x, self.p, self.training)


def _epoch_time(X, dropout, previous):
    patches = [mock.patch.object(skae._base, "seeded_torch", _global_seeded),
               mock.patch.object(SeededDropout, "forward", _previous_dropout)] if previous else []
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        start = time.perf_counter()
        model = AutoencoderTransformer(n_components=16, dropout=dropout, max_iter=3,
                                       early_stopping=False, random_state=0).fit(X)
        return (time.perf_counter() - start) / model.n_iter_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/results/threads"))
    args = parser.parse_args()
    X = load_fashion_mnist(n_train=args.rows, n_test=1).X_train.astype(np.float32) / 255.0
    rows = []
    for dropout in (0.0, 0.2):
        times = {"previous": [], "owned generators": []}
        for _ in range(args.repeats):
            for name, previous in (("previous", True), ("owned generators", False)):
                times[name].append(_epoch_time(X, dropout, previous))
        medians = {name: statistics.median(values) for name, values in times.items()}
        rows.append({"dropout": dropout, **{f"{k} s/epoch": v for k, v in medians.items()},
                     "ratio": medians["owned generators"] / medians["previous"]})
    table = markdown_table(
        ["dropout", "previous s/epoch", "owned generators s/epoch", "ratio"],
        [[str(r["dropout"]), f"{r['previous s/epoch']:.3f}",
          f"{r['owned generators s/epoch']:.3f}", f"{r['ratio']:.3f}"] for r in rows])
    write_results(
        args.out_dir, "thread_safety", rows, table, title="Fit-owned generators: epoch time",
        notes=(f"Fashion-MNIST, {args.rows} rows, n_components=16, 3 epochs, median of "
               f"{args.repeats} interleaved fits each."),
        n_threads=torch.get_num_threads(), environment={"rows": args.rows,
                                                        "repeats": args.repeats})
    print(table)


if __name__ == "__main__":
    main()
