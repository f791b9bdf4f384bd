"""How much of a convolutional CPU epoch goes to the memory allocator?

Fits AutoencoderTransformer on Fashion-MNIST (the conv model on 5,000 images,
the tutorials' MLP on 60,000 rows) in fresh processes with and without
torch's THP_MEM_ALLOC_ENABLE and glibc's MALLOC_MMAP_THRESHOLD_ /
MALLOC_TRIM_THRESHOLD_ (both read once at start-up), alternating; reports
epoch time, minor page faults and peak RSS. Method: docs/benchmarks.rst.

Usage: python benchmarks/bench_allocator.py [--quick]; writes
benchmarks/results/allocator/allocator.{csv,json,md}.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_speed import as_float_rows, load_fashion, median, run_skae  # noqa: E402
from benchmarks.report import markdown_table, write_results  # noqa: E402

THP = {"THP_MEM_ALLOC_ENABLE": "1"}
GLIBC_KEEP = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
              "MALLOC_TRIM_THRESHOLD_": str(4 * 2**30)}
CONFIGURATIONS = {
    "default": {},
    "THP_MEM_ALLOC_ENABLE=1": THP,
    "glibc keeps freed memory": GLIBC_KEEP,
    "both": {**THP, **GLIBC_KEEP},
}
CASES = {
    "conv": dict(architecture="conv", n_components=3, batch_size=128,
                 description="conv (32, 64, 64)-3, 5,000 Fashion-MNIST images, batch 128"),
    "mlp": dict(hidden=(128, 64, 12), n_components=3, batch_size=128,
                description="MLP 784-128-64-12-3, 60,000 Fashion-MNIST rows, batch 128"),
}


def child(case_name, n_threads, epochs, conv_rows):
    """One fit in this fresh process; print a JSON line."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)
    case = CASES[case_name]
    if case_name == "conv":
        images, _ = load_fashion(conv_rows)
        X = images[:, None].astype(np.float32) / 255
    else:
        images, _ = load_fashion(60_000)
        X = as_float_rows(images)
    run_skae(case, X[:256], n_threads, 1)  # lazy imports, first kernels
    run = run_skae(case, X, n_threads, epochs)
    print(json.dumps({
        # The first epoch also warms the allocator up; the later ones are
        # what a longer fit repeats.
        "epoch_s": median(run["epoch_wall"][1:] or run["epoch_wall"]),
        "page_faults": median(run["epoch_page_faults"][1:] or run["epoch_page_faults"]),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def run_json_child(command, env):
    """Run ``command`` in a fresh process; return the JSON of its last output line."""
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(args, case_name, n_threads, configuration):
    command = [sys.executable, __file__, "--child", case_name, "--threads", str(n_threads),
               "--epochs", str(args.epochs), "--conv-rows", str(args.conv_rows)]
    env = {name: value for name, value in os.environ.items()
           if name not in {*THP, *GLIBC_KEEP}}
    env.update(CONFIGURATIONS[configuration])
    return run_json_child(command, env)


def bench(args, log):
    results = []
    for n_threads in args.threads:
        for case_name in args.cases:
            runs = {name: [] for name in CONFIGURATIONS}
            for repeat in range(args.repeats):
                names = list(CONFIGURATIONS)
                random.Random(repeat).shuffle(names)
                for name in names:
                    runs[name].append(run_child(args, case_name, n_threads, name))
            default = runs["default"]
            for name, configuration_runs in runs.items():
                result = {
                    "case": case_name, "description": CASES[case_name]["description"],
                    "n_threads": n_threads, "configuration": name,
                    "environment": CONFIGURATIONS[name],
                    "epoch_s": median([r["epoch_s"] for r in configuration_runs]),
                    "ratio_to_default": median([r["epoch_s"] / d["epoch_s"] for r, d
                                                in zip(configuration_runs, default)]),
                    "page_faults_per_epoch": median([r["page_faults"]
                                                     for r in configuration_runs]),
                    "peak_rss_mib": median([r["peak_rss_mib"] for r in configuration_runs]),
                    "repeats_epoch_s": [r["epoch_s"] for r in configuration_runs],
                }
                results.append(result)
                log(f"threads={n_threads} {case_name:4s} {name:26s} epoch "
                    f"{result['epoch_s']:.3f} s  x{result['ratio_to_default']:.3f}  "
                    f"{result['page_faults_per_epoch']:,.0f} page faults  "
                    f"peak RSS {result['peak_rss_mib']:.0f} MiB")
    return results


def markdown(results):
    return markdown_table(
        ["threads", "case", "configuration", "epoch s", "x default", "page faults / epoch",
         "peak RSS MiB"],
        [[str(r["n_threads"]), r["description"], r["configuration"], f"{r['epoch_s']:.3f}",
          f"{r['ratio_to_default']:.3f}", f"{r['page_faults_per_epoch']:,.0f}",
          f"{r['peak_rss_mib']:.0f}"] for r in results])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 thread, the conv case, 2 repetitions: about 4 minutes")
    parser.add_argument("--threads", type=int, nargs="+", default=None)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--conv-rows", type=int, default=5000)
    parser.add_argument("--out-dir", type=Path,
                        default=REPO_ROOT / "benchmarks" / "results" / "allocator")
    parser.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.threads = args.threads or ([1] if args.quick else [1, 2])
    args.cases = args.cases or (["conv"] if args.quick else list(CASES))
    args.repeats = args.repeats or (2 if args.quick else 3)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        child(args.child, args.threads[0], args.epochs, args.conv_rows)
        return
    started = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)

    _, source = load_fashion(1)
    results = bench(args, log)
    write_results(
        args.out_dir, "allocator_quick" if args.quick else "allocator", results,
        markdown(results), title="Allocator settings and CPU training speed",
        notes=("Each configuration in a fresh process, alternating; `x default`: median over "
               "repetitions of the paired ratio of epoch times (an epoch after the first). "
               "Lower is better. Environments: " + "; ".join(
                   f"{name}: `{' '.join(f'{k}={v}' for k, v in config.items()) or '(none)'}`"
                   for name, config in CONFIGURATIONS.items())),
        environment={"data": source, "epochs_per_fit": args.epochs,
                     "seconds": round(time.perf_counter() - started)})
    log(f"wrote {args.out_dir}")


if __name__ == "__main__":
    main()
