"""Are skae's defaults never worse than PCA on tables the suite has never seen?

Data: numeric tables shipped inside PyPI packages (no download): vega_datasets'
``cars`` (rows with a missing value dropped) and statsmodels' ``star98``
(exogenous columns) and ``fair``. Each is split 75/25 (``random_state=0``) and
standardized on the training rows. Each estimator runs with its defaults
(``random_state=0``) at k = 2, half the columns and all but one; the table
gives its test reconstruction MSE as a multiple of ``PCA(k)``'s.

Usage: ``pip install statsmodels vega_datasets`` then
``python -m benchmarks.bench_unseen_tables`` (about a minute on 2 cores);
writes ``benchmarks/results/unseen/unseen.{csv,json,md}``.
"""

import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from benchmarks.report import markdown_table, write_results
from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer

ESTIMATORS = (AutoencoderTransformer, DenoisingAutoencoder, VAETransformer)


def tables():
    import statsmodels.api as sm
    from vega_datasets import data as vega

    cars = vega.cars()[["Miles_per_Gallon", "Cylinders", "Displacement", "Horsepower",
                        "Weight_in_lbs", "Acceleration"]].dropna()
    return {
        "vega cars": cars.to_numpy(float),
        "statsmodels star98": sm.datasets.star98.load_pandas().exog.to_numpy(float),
        "statsmodels fair": sm.datasets.fair.load_pandas().data.to_numpy(float),
    }


def main():
    warnings.simplefilter("ignore")
    rows = []
    for name, X in tables().items():
        X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
        scaler = StandardScaler().fit(X_train)
        X_train = scaler.transform(X_train).astype(np.float32)
        X_test = scaler.transform(X_test).astype(np.float32)
        p = X.shape[1]
        for k in sorted({2, p // 2, p - 1}):
            pca = PCA(k).fit(X_train)
            base = float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))
            row = {"table": f"{name} ({X.shape[0]} x {p})", "k": k, "pca_mse": base}
            for cls in ESTIMATORS:
                model = cls(k, random_state=0, n_threads=None).fit(X_train)
                mse = np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2)
                row[cls.__name__] = float(mse / base)
            rows.append(row)
            print(row, flush=True)
    table = markdown_table(
        ["table", "k", "PCA MSE", *(cls.__name__ for cls in ESTIMATORS)],
        [[r["table"], str(r["k"]), f"{r['pca_mse']:.4f}",
          *(f"{r[cls.__name__]:.3f}" for cls in ESTIMATORS)] for r in rows])
    write_results(Path(__file__).resolve().parent / "results" / "unseen", "unseen", rows,
                  table, title="Defaults on unseen tables: test MSE / PCA's")


if __name__ == "__main__":
    main()
