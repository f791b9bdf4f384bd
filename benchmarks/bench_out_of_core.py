"""Does a fit from an array on disk keep memory flat and time close to memory?

Fits AutoencoderTransformer (1 epoch) on N million rows x 64 float32 features
held in an np.memmap (and a zarr array when zarr is installed), and on the
same rows in memory. Each run is a fresh process, one at a time; it samples
RssAnon (anonymous memory, not the file pages a memmap maps) from
/proc/self/status during the fit and reports the peak over the memory before
the fit, and the fit's time with the page cache warm (a second read). The
data files go to --dir and are deleted at the end.

Usage: python benchmarks/bench_out_of_core.py --millions 2 4 8 --dir /tmp/ooc
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

N_FEATURES = 64
RESULTS = Path(__file__).parent / "results" / "out_of_core"


def rss_anon_mib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def make_data(directory, n_rows):
    """A memmap (and a zarr array) of low-rank rows plus noise, written in blocks."""
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(8, N_FEATURES)).astype(np.float32)
    path = directory / f"X_{n_rows}.dat"
    out = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_rows, N_FEATURES))
    for start in range(0, n_rows, 2**18):
        stop = min(start + 2**18, n_rows)
        out[start:stop] = (rng.normal(size=(stop - start, 8)).astype(np.float32) @ basis
                           + 0.1 * rng.normal(size=(stop - start, N_FEATURES)))
    out.flush()
    try:
        import zarr
    except ImportError:
        return path, None
    zpath = directory / f"X_{n_rows}.zarr"
    z = zarr.open_array(str(zpath), mode="w", shape=out.shape, chunks=(2**16, N_FEATURES),
                        dtype="f4")
    for start in range(0, n_rows, 2**18):
        z[start:start + 2**18] = out[start:start + 2**18]
    return path, zpath


def run_one(kind, path, n_rows):
    """In a child process: one 1-epoch fit; prints a JSON line."""
    from skae import AutoencoderTransformer

    if kind == "zarr":
        import zarr
        X = zarr.open_array(path, mode="r")
    else:
        X = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, N_FEATURES))
        if kind == "memory":
            X = np.array(X)
    est = AutoencoderTransformer(8, max_iter=1, early_stopping=False, batch_size=1024,
                                 random_state=0)
    before, peak, done = rss_anon_mib(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon_mib())
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    est.fit(X)
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    peak[0] = max(peak[0], rss_anon_mib())
    # skorch's per-epoch duration: the epoch alone, without validating X or the PCA start.
    print(json.dumps({"kind": kind, "n_rows": n_rows, "fit_s": seconds,
                      "epoch_s": float(est.net_.history[-1, "dur"]),
                      "rss_anon_before_mib": before, "rss_anon_growth_mib": peak[0] - before}))


def child(kind, path, n_rows):
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(n_rows)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def drop_cache(path):
    """Evict ``path`` from the page cache (cold read) where the OS allows it."""
    for file in ([path] if path.is_file() else path.rglob("*")):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--millions", type=float, nargs="+", default=[2, 4, 8])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/skae_out_of_core"))
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        return run_one(args.child[0], args.child[1], int(args.child[2]))
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for millions in args.millions:
            n_rows = int(millions * 1e6)
            path, zpath = make_data(args.dir, n_rows)
            for kind, source in (("memmap", path), ("zarr", zpath)):
                if source is None:
                    continue
                drop_cache(source)
                rows.append({**child(kind, source, n_rows), "cache": "cold"})
                rows.append({**child(kind, source, n_rows), "cache": "warm"})
            rows.append({**child("memory", path, n_rows), "cache": "warm"})
            for file in (path, zpath):
                if file is not None:
                    shutil.rmtree(file) if file.is_dir() else file.unlink()
            print(json.dumps(rows[-5:]), flush=True)
    finally:
        shutil.rmtree(args.dir, ignore_errors=True)
    write_report(rows, " ".join(sys.argv))


def write_report(rows, command):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(rows, indent=1))
    memory = {r["n_rows"]: r for r in rows if r["kind"] == "memory"}
    lines = [f"Command: `{command}`", "",
             "| rows | source | cache | fit s | fit / in memory | epoch s "
             "| epoch / in memory | RssAnon growth MiB |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = memory[r["n_rows"]]
        lines.append(f"| {r['n_rows']:,} | {r['kind']} | {r['cache']} | {r['fit_s']:.1f} | "
                     f"{r['fit_s'] / base['fit_s']:.2f}x | {r['epoch_s']:.1f} | "
                     f"{r['epoch_s'] / base['epoch_s']:.2f}x | "
                     f"{r['rss_anon_growth_mib']:.0f} |")
    (RESULTS / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
