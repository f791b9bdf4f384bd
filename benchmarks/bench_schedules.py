"""Which ``learning_rate`` schedule should be the default?

Fits ``AutoencoderTransformer`` (defaults otherwise, code width 2) with each
schedule on three quick-profile tables from scikit-learn (digits, wine,
breast cancer; standardised, 75/25 split) over a few seeds, and reports the
test reconstruction MSE relative to PCA's, and the epochs run.

Usage: ``python -m benchmarks.bench_schedules [--seeds 2] [--max-iter 100]``
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from benchmarks.report import write_results
from skae import AutoencoderTransformer
from skae._base import LEARNING_RATES

OUT = Path(__file__).resolve().parent / "results" / "schedules"
DATASETS = {"digits": load_digits, "wine": load_wine, "breast_cancer": load_breast_cancer}


def mse(model, X):
    return float(np.mean((model.inverse_transform(model.transform(X)) - X) ** 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--out-dir", type=Path, default=OUT)
    args = parser.parse_args()
    rows = []
    for name, loader in DATASETS.items():
        X, _ = loader(return_X_y=True)
        X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
        scaler = StandardScaler().fit(X_train)
        X_train = scaler.transform(X_train).astype(np.float32)
        X_test = scaler.transform(X_test).astype(np.float32)
        pca = PCA(2).fit(X_train)
        pca_mse = float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))
        for schedule in LEARNING_RATES:
            for seed in range(args.seeds):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = AutoencoderTransformer(
                        2, learning_rate=schedule, max_iter=args.max_iter, n_threads=1,
                        random_state=seed).fit(X_train)
                rows.append(dict(dataset=name, schedule=schedule, seed=seed,
                                 test_mse_vs_pca=mse(model, X_test) / pca_mse,
                                 epochs=model.n_iter_, seconds=time.perf_counter() - start))
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    table = frame.groupby(["dataset", "schedule"], as_index=False)[
        ["test_mse_vs_pca", "epochs"]].mean()
    write_results(
        args.out_dir, "schedules", rows, table.round(3).to_markdown(index=False),
        title="Learning-rate schedules", n_threads=1,
        notes="Test MSE / PCA's (lower is better) and epochs run, means over seeds.",
        environment={"seeds": args.seeds, "max_iter": args.max_iter})


if __name__ == "__main__":
    main()
