"""Does encoding a dask array with skae.transform_dask keep memory flat as rows grow?

Encodes lazy 64-column arrays of 200,000 and 1,000,000 rows chunk by chunk and
writes the codes with dask.array.to_npy_stack, each size in a fresh process,
sampling its RSS; checks the codes against ae.transform on numpy rows.
Method: docs/benchmarks.rst.

Usage: python benchmarks/bench_dask_memory.py [--rows 200000 1000000]
[--chunk-rows 100000] [--workers N] [--out-dir DIR] [--seed S]; writes
benchmarks/results/dask/memory.{md,json}. Needs skae[dask,benchmarks].
"""

import argparse
import datetime
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # Run as a plain script from a checkout: import the skae next to it.
    sys.path.insert(0, str(REPO_ROOT))

N_FEATURES = 64
N_COMPONENTS = 8
N_FIT_ROWS = 20_000
N_CHECK_ROWS = 1_000
MIB = 2**20


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None,
                        help="dask threads (default: one per core)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path,
                        default=REPO_ROOT / "benchmarks" / "results" / "dask")
    # Internal: one measurement in a fresh process.
    parser.add_argument("--child", choices=["dask", "numpy"], help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def lazy_data(n_rows, chunk_rows, seed):
    import dask.array as da

    return da.random.default_rng(seed).standard_normal(
        (n_rows, N_FEATURES), chunks=(chunk_rows, N_FEATURES), dtype=np.float32)


class PeakRSS:
    """Sample this process's resident memory in a thread; keep the maximum."""

    def __init__(self, interval=0.005):
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self.start = self._process.memory_info().rss

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def measure(args, n_rows):
    """One measurement (in a child process): encode n_rows, return the figures."""
    import dask
    import dask.array as da

    from skae import transform_dask

    with open(args.model, "rb") as file:
        ae = pickle.load(file)
    X = lazy_data(n_rows, args.chunk_rows, args.seed)
    record = {"mode": args.child, "rows": n_rows, "chunk_rows": args.chunk_rows,
              "input_mib": n_rows * N_FEATURES * 4 / MIB}
    scheduler = {"scheduler": "threads", "num_workers": args.workers}
    started = time.perf_counter()
    if args.child == "dask":
        codes = transform_dask(ae, X)
        folder = args.scratch / f"codes-{n_rows}"
        with dask.config.set(**scheduler), PeakRSS() as rss:
            da.to_npy_stack(str(folder), codes, axis=0)
        record["seconds"] = time.perf_counter() - started
        written = da.from_npy_stack(str(folder))
        record["written_shape"] = list(written.shape)
    else:
        with PeakRSS() as rss:
            in_memory = ae.transform(X.compute(**scheduler))
        record["seconds"] = time.perf_counter() - started
        written = da.from_array(in_memory, chunks=args.chunk_rows)
    record.update(rss_before_mib=rss.start / MIB, rss_peak_mib=rss.peak / MIB,
                  rss_increase_mib=(rss.peak - rss.start) / MIB,
                  rows_per_second=n_rows / record["seconds"])

    rows = np.sort(np.random.default_rng(args.seed).choice(n_rows, N_CHECK_ROWS, replace=False))
    expected = ae.transform(X[rows].compute(**scheduler))
    got = written[rows].compute(scheduler="threads")
    record["check_rows"] = N_CHECK_ROWS
    record["check_max_abs_diff"] = float(np.abs(got - expected).max())
    record["codes_std"] = float(got.std())
    return record


def fit_model(args, path):
    from skae import AutoencoderTransformer

    X_fit = lazy_data(N_FIT_ROWS, args.chunk_rows, args.seed)[:N_FIT_ROWS].compute()
    ae = AutoencoderTransformer(
        n_components=N_COMPONENTS, hidden_layer_sizes=(32,), max_iter=5,
        batch_size=256, device="cpu", random_state=args.seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 5 epochs do not converge; that is fine here
        ae.fit(X_fit)
    with open(path, "wb") as file:
        pickle.dump(ae, file)


def run_child(args, mode, n_rows, model, scratch):
    command = [sys.executable, __file__, "--child", mode, "--rows", str(n_rows),
               "--chunk-rows", str(args.chunk_rows), "--seed", str(args.seed),
               "--model", str(model), "--scratch", str(scratch)]
    if args.workers:
        command += ["--workers", str(args.workers)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def environment(args):
    import dask
    import joblib
    import torch

    import skae

    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "cpu_count": joblib.cpu_count(),
        "dask_threads": args.workers or joblib.cpu_count(),
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "skae": skae.__version__, "dask": dask.__version__, "torch": torch.__version__,
        "numpy": np.__version__,
    }


def write_report(records, env, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    dask_records = [r for r in records if r["mode"] == "dask"]
    growth = dask_records[-1]["rss_increase_mib"] - dask_records[0]["rss_increase_mib"]
    summary = {
        "rss_increase_growth_mib": growth,
        "rows_ratio": dask_records[-1]["rows"] / dask_records[0]["rows"],
        "all_checks_pass": all(r["check_max_abs_diff"] < 1e-5 and r["codes_std"] > 0
                               for r in records),
    }
    (out_dir / "memory.json").write_text(json.dumps(
        {"environment": env, "summary": summary, "runs": records}, indent=2) + "\n")
    lines = [
        "# transform_dask: peak memory against the number of rows",
        "",
        f"X: standard-normal float32, {N_FEATURES} columns, generated lazily in "
        f"{records[0]['chunk_rows']:,}-row chunks; AutoencoderTransformer 64 -> 32 -> "
        f"{N_COMPONENTS}. RSS sampled every 5 ms in a fresh process per run.",
        "",
        "| how | rows | X in memory (MiB) | RSS before (MiB) | RSS peak (MiB) "
        "| increase (MiB) | seconds | rows/s | max abs diff on 1,000 rows |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        how = ("transform_dask + to_npy_stack" if r["mode"] == "dask"
               else "X.compute() + transform (numpy)")
        lines.append(
            f"| {how} | {r['rows']:,} | {r['input_mib']:.0f} | {r['rss_before_mib']:.0f} | "
            f"{r['rss_peak_mib']:.0f} | {r['rss_increase_mib']:.0f} | {r['seconds']:.1f} | "
            f"{r['rows_per_second']:,.0f} | {r['check_max_abs_diff']:.1e} |")
    lines += [
        "",
        f"From {dask_records[0]['rows']:,} to {dask_records[-1]['rows']:,} rows "
        f"({summary['rows_ratio']:.0f}x), the peak increase of transform_dask changed by "
        f"{growth:+.0f} MiB. Codes written match numpy transform: "
        f"{summary['all_checks_pass']}.",
        "",
        "Seconds are wall time on the machine described below (other jobs may share "
        "it) and include generating X; they are not a speed benchmark. The numpy "
        "run encodes in one call with every core (skae's default in the main "
        "process), transform_dask with one torch thread per chunk task.",
        "",
        "Environment: " + ", ".join(f"{k}={v}" for k, v in env.items()),
        "",
    ]
    (out_dir / "memory.md").write_text("\n".join(lines))
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(args, args.rows[0])))
        return
    with tempfile.TemporaryDirectory(prefix="skae-bench-dask-") as scratch:
        scratch = Path(scratch)
        model = scratch / "model.pkl"
        fit_model(args, model)
        records = [run_child(args, "dask", n_rows, model, scratch)
                   for n_rows in sorted(args.rows)]
        records.append(run_child(args, "numpy", max(args.rows), model, scratch))
    print(write_report(records, environment(args), args.out_dir))


if __name__ == "__main__":
    main()
