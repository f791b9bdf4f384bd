"""How much better does a denoising autoencoder clean noisy images than PCA?

Question
--------
Given Fashion-MNIST test images corrupted by gaussian noise, masking noise or
salt-and-pepper noise at levels 0.1, 0.2 and 0.4, how close to the clean
images (MSE and PSNR, images scaled to [0, 1]) do we get with

- no denoising at all (the noisy images themselves),
- PCA with ``n_components=32`` fitted on clean training images:
  ``pca.inverse_transform(pca.transform(noisy))``,
- a plain :class:`skae.AutoencoderTransformer` of the same size fitted on
  clean training images, applied to the noisy images (``reconstruct``),
- a :class:`skae.DenoisingAutoencoder` trained with that noise kind and level
  (``denoise``)?

Data
----
``fashion_mnist.npz`` (x_train, x_test as uint8 arrays of shape (n, 28, 28))
from ``$SKAE_DATA``, else ``../shared/data`` next to the repository root.
Images are scaled to [0, 1] float32. A seeded random subset of the training
and test images is used (see the profiles below). The test images are
corrupted once, with :class:`skae._noise.Corruption` (the very code the
denoising autoencoder trains with, no clipping, as the estimator's default
``clip=None``) and a seeded ``torch.Generator`` per noise setting, so every
method sees the same noisy pixels and reruns see the same noise.

Both autoencoders are MLPs with hidden layers (512, 256), a 32-wide code, a
sigmoid output, batch size 256, Adam at 1e-3, and early stopping on 10 % of
the training rows. PSNR is ``10 * log10(1 / MSE)`` of each image (peak 1.0),
averaged over images; MSE is averaged over pixels and images.

Profiles
--------
default : 20,000 train / 2,000 test images, at most 15 epochs
          (5.6 minutes measured on one thread of a shared 2-core AMD
          EPYC; up to about 15 minutes when the machine is heavily loaded).
--quick : 5,000 train / 1,000 test images, 3 epochs (about 1 minute): a
          smoke run, too short for the autoencoders to learn much.

torch and BLAS are pinned to ``--threads`` threads, 1 by default: on a
2-core machine shared with other jobs, two torch threads ran this MLP 5 to 7
times slower than one (about 400 against 2,700 rows per second for a training
step), because each parallel region waits for the thread that is descheduled.
Pass ``--threads 2`` (or more) on a quiet machine.

Usage
-----
    python benchmarks/bench_denoising.py [--quick] [--threads N]
        [--data-dir DIR] [--out-dir DIR] [--seed S]

Outputs (in ``benchmarks/results/denoising/``, or ``.../denoising/quick/``
for ``--quick``): ``denoising.md`` (the table and the run's environment),
``denoising.csv`` (one row per noise setting), ``denoising.png`` (clean /
noisy / PCA / AE / DAE for six test images, gaussian noise 0.2),
``denoising_kinds.png`` (the same at level 0.2 for each noise kind) and
``run_info.json`` (environment, timings and epochs of every fit).
"""

import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # Run as a plain script from a checkout: import the skae next to it.
    sys.path.insert(0, str(REPO_ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import sklearn  # noqa: E402
import skorch  # noqa: E402
import torch  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import skae  # noqa: E402
from skae import AutoencoderTransformer, DenoisingAutoencoder  # noqa: E402
from skae._noise import NOISE_KINDS, Corruption  # noqa: E402

NOISE_LEVELS = (0.1, 0.2, 0.4)
N_COMPONENTS = 32
METHODS = ("noisy", "pca", "ae", "dae")
METHOD_LABELS = {"clean": "clean", "noisy": "noisy", "pca": "PCA", "ae": "AE",
                 "dae": "DAE"}
# The images shown in the figures: fixed positions in the test subset.
N_EXAMPLES = 6
# Per-image MSE floor, so an untouched image gives a finite PSNR (100 dB).
MSE_FLOOR = 1e-10

PROFILES = {
    "default": {"n_train": 20_000, "n_test": 2_000, "max_iter": 15},
    "quick": {"n_train": 5_000, "n_test": 1_000, "max_iter": 3},
}
MODEL_PARAMS = {
    "n_components": N_COMPONENTS,
    "hidden_layer_sizes": (512, 256),
    "batch_size": 256,
    "learning_rate_init": 1e-3,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 3,
    "tol": 1e-5,
    "device": "cpu",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help="5,000 / 1,000 images and 3 epochs (a smoke run).")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and BLAS threads (default: 1; see above).")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder of fashion_mnist.npz (default: $SKAE_DATA, "
                             "else ../shared/data next to the repository).")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where results go (default: benchmarks/results/"
                             "denoising, or its quick/ subfolder with --quick).")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the subsets, the test noise and the models.")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads={args.threads} must be at least 1.")
    return args


# -- data ------------------------------------------------------------------
def resolve_data_path(data_dir):
    if data_dir is None:
        env = os.environ.get("SKAE_DATA")
        data_dir = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    path = Path(data_dir).resolve() / "fashion_mnist.npz"
    if not path.is_file():
        sys.exit(
            f"error: Fashion-MNIST not found at {path}. Put fashion_mnist.npz "
            "(x_train, x_test as uint8 arrays of shape (n, 28, 28)) there, set "
            "SKAE_DATA to its folder, or pass --data-dir."
        )
    return path


def load_images(path, n_train, n_test, seed):
    """Seeded random subsets of train and test images, flat float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    with np.load(path) as data:
        x_train, x_test = data["x_train"], data["x_test"]
    train_rows = np.sort(rng.choice(len(x_train), size=min(n_train, len(x_train)),
                                    replace=False))
    test_rows = np.sort(rng.choice(len(x_test), size=min(n_test, len(x_test)),
                                   replace=False))

    def scale(images):
        return (images.reshape(len(images), -1).astype(np.float32) / 255.0)

    return scale(x_train[train_rows]), scale(x_test[test_rows]), x_train.shape[1:]


def corrupt(X, kind, level, low, high, seed):
    """X corrupted by skae's own ``Corruption`` with a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    corruption = Corruption(kind, level, low=low, high=high, clip=None)
    return corruption(torch.from_numpy(X), generator).numpy()


def per_image_errors(clean, estimate):
    """Per-image MSE and PSNR (peak 1.0) of ``estimate`` against ``clean``."""
    mse = np.mean((np.asarray(estimate, dtype=np.float64) - clean) ** 2, axis=1)
    psnr = 10.0 * np.log10(1.0 / np.maximum(mse, MSE_FLOOR))
    return mse, psnr


# -- models ------------------------------------------------------------------
def fit_timed(model, X):
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The epoch budget is deliberately small; n_iter_ records what ran.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return {"fit_seconds": round(time.perf_counter() - start, 2),
            "n_iter": int(model.n_iter_),
            "best_valid_loss": float(-max(model.validation_scores_))}


def run(args, profile):
    data_path = resolve_data_path(args.data_dir)
    X_train, X_test, image_shape = load_images(
        data_path, profile["n_train"], profile["n_test"], args.seed)
    low, high = float(X_train.min()), float(X_train.max())
    model_params = {**MODEL_PARAMS, "max_iter": profile["max_iter"],
                    "n_threads": args.threads, "random_state": args.seed}
    fits = {}
    print(f"data: {len(X_train)} train / {len(X_test)} test images from {data_path}",
          flush=True)

    start = time.perf_counter()
    pca = PCA(n_components=N_COMPONENTS, random_state=args.seed).fit(X_train)
    fits["pca"] = {"fit_seconds": round(time.perf_counter() - start, 2),
                   "explained_variance": float(pca.explained_variance_ratio_.sum())}
    ae = AutoencoderTransformer(**model_params)
    fits["ae"] = fit_timed(ae, X_train)
    print(f"fitted PCA and AE: {fits['ae']}", flush=True)

    clean_reference = {
        "pca": float(np.mean(per_image_errors(
            X_test, pca.inverse_transform(pca.transform(X_test)))[0])),
        "ae": float(np.mean(per_image_errors(X_test, ae.reconstruct(X_test))[0])),
    }

    rows, examples = [], {}
    seeds = np.random.SeedSequence(args.seed).generate_state(
        len(NOISE_KINDS) * len(NOISE_LEVELS))
    settings = [(kind, level) for kind in NOISE_KINDS for level in NOISE_LEVELS]
    for (kind, level), noise_seed in zip(settings, seeds):
        noisy = corrupt(X_test, kind, level, low, high, int(noise_seed))
        dae = DenoisingAutoencoder(noise=kind, noise_level=level, **model_params)
        fits[f"dae_{kind}_{level}"] = fit_timed(dae, X_train)
        outputs = {
            "noisy": noisy,
            "pca": pca.inverse_transform(pca.transform(noisy)),
            "ae": ae.reconstruct(noisy),
            "dae": dae.denoise(noisy),
        }
        row = {"noise": kind, "level": level}
        for method in METHODS:
            mse, psnr = per_image_errors(X_test, outputs[method])
            row[f"mse_{method}"] = float(mse.mean())
            row[f"psnr_{method}"] = float(psnr.mean())
        row["mse_ratio_dae_noisy"] = row["mse_dae"] / row["mse_noisy"]
        row["mse_ratio_dae_pca"] = row["mse_dae"] / row["mse_pca"]
        row["dae_epochs"] = fits[f"dae_{kind}_{level}"]["n_iter"]
        rows.append(row)
        examples[(kind, level)] = {
            name: values[:N_EXAMPLES].reshape(-1, *image_shape)
            for name, values in {"clean": X_test, **outputs}.items()
        }
        print(f"{kind:>15} {level:.1f}: MSE noisy {row['mse_noisy']:.4f} "
              f"PCA {row['mse_pca']:.4f} AE {row['mse_ae']:.4f} "
              f"DAE {row['mse_dae']:.4f} ({fits[f'dae_{kind}_{level}']['fit_seconds']} s)",
              flush=True)
    data_info = {"path": str(data_path), "n_train": len(X_train),
                 "n_test": len(X_test), "low": low, "high": high}
    return rows, examples, fits, clean_reference, data_info


# -- environment -------------------------------------------------------------
def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state():
    def git(*command):
        return subprocess.run(["git", *command], cwd=REPO_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    try:
        return {"commit": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}


def environment(args, profile_name):
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "profile": profile_name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skae": skae.__version__,
        "skorch": skorch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "git": git_state(),
        "seed": args.seed,
    }


# -- outputs -----------------------------------------------------------------
def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})


def markdown_table(rows):
    header = (["noise", "level"]
              + [f"MSE {METHOD_LABELS[m]}" for m in METHODS]
              + [f"PSNR {METHOD_LABELS[m]} (dB)" for m in METHODS]
              + ["DAE/noisy MSE", "DAE/PCA MSE"])
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for row in rows:
        cells = ([row["noise"], f"{row['level']:.1f}"]
                 + [f"{row[f'mse_{m}']:.4f}" for m in METHODS]
                 + [f"{row[f'psnr_{m}']:.2f}" for m in METHODS]
                 + [f"{row['mse_ratio_dae_noisy']:.3f}", f"{row['mse_ratio_dae_pca']:.3f}"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown(rows, fits, clean_reference, data_info, env, wall_seconds, path):
    dae_fits = [fit for name, fit in fits.items() if name.startswith("dae_")]
    text = f"""# Denoising Fashion-MNIST: noisy vs PCA vs autoencoder vs denoising autoencoder

Test images corrupted once with `skae._noise.Corruption` (seeded, no clipping);
MSE over pixels in [0, 1], PSNR = 10 log10(1 / MSE) per image, averaged.
All models have a {N_COMPONENTS}-wide code. PCA and AE are fitted on clean
training images; each DAE is trained with the row's noise kind and level.
DAE/noisy and DAE/PCA are ratios of MSE (below 1: the DAE is better).

{markdown_table(rows)}

Reconstruction MSE of the clean test images (the floor without noise):
PCA {clean_reference['pca']:.4f}, AE {clean_reference['ae']:.4f}.

## Setup

- Data: `{data_info['path']}`, {data_info['n_train']} training and {data_info['n_test']} test images (seeded random subsets), pixel range [{data_info['low']:g}, {data_info['high']:g}].
- Autoencoders: MLP, hidden layers {MODEL_PARAMS['hidden_layer_sizes']}, sigmoid output, batch {MODEL_PARAMS['batch_size']}, Adam lr {MODEL_PARAMS['learning_rate_init']}, at most {env['max_iter']} epochs, early stopping on {MODEL_PARAMS['validation_fraction']:.0%} of the training rows (patience {MODEL_PARAMS['n_iter_no_change']}, tol {MODEL_PARAMS['tol']:g}), best weights restored.
- Fits: PCA {fits['pca']['fit_seconds']} s (explained variance {fits['pca']['explained_variance']:.3f}); AE {fits['ae']['n_iter']} epochs in {fits['ae']['fit_seconds']} s; DAEs {min(f['n_iter'] for f in dae_fits)}-{max(f['n_iter'] for f in dae_fits)} epochs, {sum(f['fit_seconds'] for f in dae_fits):.0f} s in all. Whole run {wall_seconds:.0f} s.
- Figures (`denoising.png`, `denoising_kinds.png`): the first {N_EXAMPLES} test images; values are clipped to [0, 1] for display only.

## Environment

- Command: `{env['command']}` (profile `{env['profile']}`), {env['date']}
- Threads: {env['threads']} (torch and BLAS pinned) on {env['logical_cpus']} logical CPUs, {env['cpu_model']}
- Versions: skae {env['skae']}, torch {env['torch']}, skorch {env['skorch']}, scikit-learn {env['sklearn']}, numpy {env['numpy']}, Python {env['python']}
- Git commit: `{env['git']['commit']}`{' (with uncommitted changes)' if env['git']['dirty'] else ''}
"""
    Path(path).write_text(text)


def plot_grid(panels, row_labels, title, path):
    """One image per cell: ``panels[r][c]`` is a 2-D image in [0, 1]."""
    n_rows, n_cols = len(panels), len(panels[0])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.3 * n_cols + 0.8, 1.3 * n_rows + 0.4),
                             squeeze=False)
    for r, (images, label) in enumerate(zip(panels, row_labels)):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(np.clip(image, 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_examples(examples, rows, out_dir):
    mse = {(row["noise"], row["level"]): row for row in rows}
    kind, level = "gaussian", 0.2
    shown = examples[(kind, level)]
    methods = ("clean", "noisy", "pca", "ae", "dae")
    labels = [METHOD_LABELS[m] if m == "clean"
              else f"{METHOD_LABELS[m]}\nMSE {mse[(kind, level)][f'mse_{m}']:.4f}"
              for m in methods]
    plot_grid([list(shown[m]) for m in methods], labels,
              f"Fashion-MNIST test images, {kind} noise {level} "
              "(MSE over the whole test subset)",
              out_dir / "denoising.png")

    level = 0.2
    panels = [list(examples[(NOISE_KINDS[0], level)]["clean"])]
    labels = ["clean"]
    for kind in NOISE_KINDS:
        for m in ("noisy", "pca", "dae"):
            panels.append(list(examples[(kind, level)][m]))
            labels.append(f"{kind}\n{METHOD_LABELS[m]}")
    plot_grid(panels, labels, f"Each noise kind at level {level}: noisy, PCA, DAE",
              out_dir / "denoising_kinds.png")


def main(argv=None):
    args = parse_args(argv)
    profile_name = "quick" if args.quick else "default"
    profile = PROFILES[profile_name]
    out_dir = args.out_dir or REPO_ROOT / "benchmarks" / "results" / "denoising"
    if args.quick and args.out_dir is None:
        out_dir = out_dir / "quick"
    resolve_data_path(args.data_dir)  # fail before creating any output
    out_dir.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with threadpool_limits(limits=args.threads):
        rows, examples, fits, clean_reference, data_info = run(args, profile)
    wall_seconds = time.perf_counter() - start

    env = {**environment(args, profile_name), "max_iter": profile["max_iter"]}
    write_csv(rows, out_dir / "denoising.csv")
    write_markdown(rows, fits, clean_reference, data_info, env, wall_seconds,
                   out_dir / "denoising.md")
    plot_examples(examples, rows, out_dir)
    info = {"environment": env, "data": data_info, "model_params": {
        **MODEL_PARAMS, "hidden_layer_sizes": list(MODEL_PARAMS["hidden_layer_sizes"]),
        "max_iter": profile["max_iter"]}, "fits": fits,
        "clean_reconstruction_mse": clean_reference, "wall_seconds": round(wall_seconds, 1)}
    (out_dir / "run_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(markdown_table(rows))
    print(f"done in {wall_seconds:.0f} s; results in {out_dir}")


if __name__ == "__main__":
    main()
