"""How much closer to clean Fashion-MNIST does a DenoisingAutoencoder get than PCA and a plain AE?

Per noise kind and level, test images corrupted once are compared (MSE, PSNR) with the
clean ones: as they are, through PCA and an AutoencoderTransformer fitted on clean
images, and through DenoisingAutoencoders trained with that noise (the defaults,
and preserve_clean=False); every code is 32-wide. Data: fashion_mnist.npz from
$SKAE_DATA (benchmarks.data), 20,000 / 2,000 images, or 5,000 / 1,000 and 3 epochs
with --quick. Methods: docs/benchmarks.rst.

Usage: python benchmarks/bench_denoising.py [--quick] [--threads N] [--seed S]
[--out-dir DIR]; writes denoising.{csv,json,md}, denoising.png and denoising_kinds.png
to benchmarks/results/denoising/ (its quick/ with --quick).
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks.data import load_fashion_mnist  # noqa: E402
from benchmarks.report import command_line, markdown_table, write_results  # noqa: E402
from skae import AutoencoderTransformer, DenoisingAutoencoder  # noqa: E402
from skae._noise import NOISE_KINDS, Corruption  # noqa: E402

NOISE_LEVELS = (0.1, 0.2, 0.4)
LABELS = {"clean": "clean", "noisy": "noisy", "pca": "PCA", "ae": "AE", "dae": "DAE",
          "dae_free": "DAE free"}
METHODS = ("noisy", "pca", "ae", "dae", "dae_free")
DAES = {"dae": {}, "dae_free": {"preserve_clean": False}}
N_EXAMPLES = 6  # the first test images, shown in the figures
MSE_FLOOR = 1e-10  # so that an untouched image has a finite PSNR (100 dB)
PROFILES = {"default": {"n_train": 20_000, "n_test": 2_000, "max_iter": 15},
            "quick": {"n_train": 5_000, "n_test": 1_000, "max_iter": 3}}
MODEL_PARAMS = {"n_components": 32, "hidden_layer_sizes": (512, 256), "batch_size": 256,
                "learning_rate_init": 1e-3, "early_stopping": True,
                "validation_fraction": 0.1,
                "device": "cpu"}
NOTES = """Test images corrupted once with `skae._noise.Corruption` (seeded, no clipping);
MSE over pixels in [0, 1], PSNR = 10 log10(1 / MSE) per image, averaged.
All models have a 32-wide code. PCA and AE are fitted on clean
training images; each DAE is trained with the row's noise kind and level,
"DAE" with the defaults and "DAE free" with `preserve_clean=False` (selected
by the denoising loss alone). DAE/noisy, DAE/PCA and free/PCA are ratios of
MSE (below 1: the DAE is better); "clean" columns are each DAE's MSE on the
clean test images, the price of denoising."""


def corrupt(X, kind, level, low, high, seed):
    """X corrupted by the code the DAE trains with, from a seeded generator."""
    corruption = Corruption(kind, level, low=low, high=high, clip=None)
    return corruption(torch.from_numpy(X), torch.Generator().manual_seed(seed)).numpy()


def errors(clean, estimate):
    """Per-image MSE and PSNR (peak 1.0) of ``estimate`` against ``clean``."""
    mse = np.mean((np.asarray(estimate, dtype=np.float64) - clean) ** 2, axis=1)
    return mse, 10.0 * np.log10(1.0 / np.maximum(mse, MSE_FLOOR))


def fit(model, X):
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The epoch budget is deliberately small; n_iter records what ran.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return {"fit_seconds": round(time.perf_counter() - start, 2), "n_iter": int(model.n_iter_),
            "best_valid_loss": round(float(-max(model.validation_scores_)), 6)}


def run(profile, seed, n_threads):
    """One row per noise setting, the images shown, and the clean-image fits."""
    data = load_fashion_mnist(profile["n_train"], profile["n_test"])
    X_train, X_test = (X.astype(np.float32) / 255.0 for X in (data.X_train, data.X_test))
    low, high = float(X_train.min()), float(X_train.max())
    params = {**MODEL_PARAMS, "max_iter": profile["max_iter"], "n_threads": n_threads,
              "random_state": seed}
    start = time.perf_counter()
    pca = PCA(n_components=MODEL_PARAMS["n_components"], random_state=seed).fit(X_train)
    fits = {"pca": {"fit_seconds": round(time.perf_counter() - start, 2),
                    "explained_variance": round(float(pca.explained_variance_ratio_.sum()), 4)}}
    ae = AutoencoderTransformer(**params)
    fits["ae"] = fit(ae, X_train)
    fitted_clean = {"pca": lambda X: pca.inverse_transform(pca.transform(X)),
                    "ae": ae.reconstruct}
    fits["clean_mse"] = {method: round(float(errors(X_test, apply(X_test))[0].mean()), 6)
                         for method, apply in fitted_clean.items()}
    print(f"fitted PCA and AE: {fits}", flush=True)

    rows, examples = [], {}
    settings = [(kind, level) for kind in NOISE_KINDS for level in NOISE_LEVELS]
    noise_seeds = np.random.SeedSequence(seed).generate_state(len(settings))
    for (kind, level), noise_seed in zip(settings, noise_seeds):
        noisy = corrupt(X_test, kind, level, low, high, int(noise_seed))
        outputs = {"noisy": noisy, **{m: apply(noisy) for m, apply in fitted_clean.items()}}
        row, dae_fits = {"noise": kind, "level": level}, {}
        for name, extra in DAES.items():
            dae = DenoisingAutoencoder(noise=kind, noise_level=level, **params, **extra)
            dae_fits[name] = fit(dae, X_train)
            outputs[name] = dae.denoise(noisy)
            row[f"clean_mse_{name}"] = float(errors(X_test, dae.reconstruct(X_test))[0].mean())
            row[f"{name}_epochs"] = dae_fits[name]["n_iter"]
        for method, output in outputs.items():
            mse, psnr = errors(X_test, output)
            row[f"mse_{method}"], row[f"psnr_{method}"] = float(mse.mean()), float(psnr.mean())
        row["mse_ratio_dae_noisy"] = row["mse_dae"] / row["mse_noisy"]
        row["mse_ratio_dae_pca"] = row["mse_dae"] / row["mse_pca"]
        row["mse_ratio_dae_free_pca"] = row["mse_dae_free"] / row["mse_pca"]
        rows.append({**row, "dae_fits": dae_fits})  # the fits' details stay in the JSON
        examples[kind, level] = {name: images[:N_EXAMPLES].reshape(-1, *data.image_shape)
                                 for name, images in {"clean": X_test, **outputs}.items()}
        print(f"{kind:>15} {level:.1f}: MSE DAE {row['mse_dae']:.4f}, free "
              f"{row['mse_dae_free']:.4f}, PCA {row['mse_pca']:.4f} "
              f"({dae_fits['dae']['fit_seconds']} s, {dae_fits['dae_free']['fit_seconds']} s)",
              flush=True)
    return rows, examples, fits


def table(rows):
    header = (["noise", "level"] + [f"MSE {LABELS[m]}" for m in METHODS]
              + [f"PSNR {LABELS[m]} (dB)" for m in METHODS]
              + ["DAE/noisy MSE", "DAE/PCA MSE", "free/PCA MSE"]
              + [f"clean MSE {LABELS[m]}" for m in DAES])
    return markdown_table(header, [
        [row["noise"], f"{row['level']:.1f}"] + [f"{row[f'mse_{m}']:.4f}" for m in METHODS]
        + [f"{row[f'psnr_{m}']:.2f}" for m in METHODS]
        + [f"{row['mse_ratio_dae_noisy']:.3f}", f"{row['mse_ratio_dae_pca']:.3f}",
           f"{row['mse_ratio_dae_free_pca']:.3f}"]
        + [f"{row[f'clean_mse_{m}']:.4f}" for m in DAES]
        for row in rows])


def plot_grid(panels, row_labels, title, path):
    """One image per cell: ``panels[r][c]`` is a 2-D image, clipped to [0, 1] for display."""
    n_rows, n_cols = len(panels), len(panels[0])
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False,
                             figsize=(1.3 * n_cols + 0.8, 1.3 * n_rows + 0.4))
    for r, (images, label) in enumerate(zip(panels, row_labels)):
        for ax, image in zip(axes[r], images):
            ax.imshow(np.clip(image, 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set(xticks=[], yticks=[])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_examples(examples, rows, out_dir, level=0.2):
    """Every method at gaussian noise ``level``, and noisy/PCA/DAE per noise kind."""
    row = next(r for r in rows if (r["noise"], r["level"]) == ("gaussian", level))
    shown = examples["gaussian", level]
    plot_grid([list(shown[m]) for m in LABELS],
              ["clean"] + [f"{LABELS[m]}\nMSE {row[f'mse_{m}']:.4f}" for m in METHODS],
              f"Fashion-MNIST test images, gaussian noise {level} "
              "(MSE over the whole test subset)", out_dir / "denoising.png")
    settings = [(kind, m) for kind in NOISE_KINDS for m in ("noisy", "pca", "dae")]
    panels = [list(shown["clean"])] + [list(examples[kind, level][m]) for kind, m in settings]
    labels = ["clean"] + [f"{kind}\n{LABELS[m]}" for kind, m in settings]
    plot_grid(panels, labels, f"Each noise kind at level {level}: noisy, PCA, DAE",
              out_dir / "denoising_kinds.png")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="5,000 / 1,000 images and 3 epochs (a smoke run)")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument("--seed", type=int, default=0, help="seeds the test noise and models")
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads={args.threads} must be at least 1.")
    args.out_dir = args.out_dir or (REPO_ROOT / "benchmarks" / "results" / "denoising"
                                    / ("quick" if args.quick else ""))
    return args


def main(argv=None):
    args = parse_args(argv)
    profile_name = "quick" if args.quick else "default"
    profile = PROFILES[profile_name]
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        rows, examples, fits = run(profile, args.seed, args.threads)
    notes = (f"{NOTES}\n\nReconstruction MSE of the clean test images (the floor without "
             f"noise): PCA {fits['clean_mse']['pca']:.4f}, AE {fits['clean_mse']['ae']:.4f}. "
             "DAE epochs: `dae_epochs` and `dae_free_epochs` in the CSV. "
             f"Figures: the first {N_EXAMPLES} test images.")
    write_results(
        args.out_dir, "denoising", rows, table(rows),
        title="Denoising Fashion-MNIST: noisy vs PCA vs autoencoder vs denoising autoencoder",
        notes=notes, n_threads=args.threads,
        environment={"profile": profile_name, **profile, "seed": args.seed,
                     "model": MODEL_PARAMS, "fits": fits,
                     "seconds": round(time.perf_counter() - started)},
        command=command_line("benchmarks/bench_denoising.py", argv))
    plot_examples(examples, rows, args.out_dir)
    print(table(rows))
    print(f"done in {time.perf_counter() - started:.0f} s; results in {args.out_dir}")
    return rows


if __name__ == "__main__":
    main()
