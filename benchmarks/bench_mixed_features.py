"""Features of mixed tables: are skae's codes as useful downstream as PCA's?

Each table has numeric and categorical columns and a class to predict; 10%
of its feature cells are also hidden completely at random (seeded), so that
every table has missing cells (cars has its own besides). Each method turns
the frame into k features, then ``StandardScaler`` and
``LogisticRegression`` predict the class; the score is the 5-fold
stratified cross-validated accuracy, all methods on the same folds.

- ``pca``: the usual scikit-learn preprocessing (median imputation and
  scaling of numeric columns, most-frequent imputation and one-hot encoding of
  categorical ones) then ``PCA(k)``.
- ``autoencoder``, ``vae``: ``AutoencoderTransformer(k)`` and
  ``VAETransformer(k)`` with default settings on the frame as it is.
- ``all columns``: the preprocessed columns without reduction, for scale.

Usage: python -m benchmarks.bench_mixed_features [--ks 2 4 8]
"""

import argparse
import json
import pathlib
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from skae import AutoencoderTransformer, VAETransformer

OUT = pathlib.Path(__file__).parent / "results" / "mixed"
MISSING = 0.10


def tables():
    """(features, target) of each table, feature cells hidden at random."""
    from statsmodels.datasets import anes96, fair
    from vega_datasets import data

    cars = data.cars().drop(columns=["Name", "Year"])
    cars["Cylinders"] = cars["Cylinders"].astype(str).astype("category")
    affairs = fair.load_pandas().data
    for c in ["rate_marriage", "religious", "occupation", "occupation_husb"]:
        affairs[c] = affairs[c].astype(int).astype(str).astype("category")
    affairs["affairs"] = affairs["affairs"] > 0
    votes = anes96.load_pandas().data.drop(columns=["logpopul"])
    for c in ["PID", "educ", "income"]:
        votes[c] = votes[c].astype(int).astype(str).astype("category")
    weather = data.seattle_weather()
    weather["month"] = weather.pop("date").dt.month.astype(str).astype("category")
    out = {}
    for name, frame, target in [("cars", cars, "Origin"), ("fair", affairs, "affairs"),
                                ("anes96", votes, "vote"), ("seattle", weather, "weather")]:
        X, y = frame.drop(columns=[target]), frame[target].astype(str).to_numpy()
        hidden = np.random.RandomState(0).rand(*X.shape) < MISSING
        out[name] = (X.mask(hidden), y)
    return out


def preprocessing(X):
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    as_object = lambda frame: frame.astype(object).where(frame.notna(), np.nan)  # noqa: E731
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(
            FunctionTransformer(as_object), SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical),
    ])


def methods(X, k):
    classifier = lambda: (StandardScaler(), LogisticRegression(max_iter=2000))  # noqa: E731
    return {
        "pca": make_pipeline(preprocessing(X), PCA(k, random_state=0), *classifier()),
        "autoencoder": make_pipeline(AutoencoderTransformer(k, random_state=0), *classifier()),
        "vae": make_pipeline(VAETransformer(k, random_state=0), *classifier()),
    }


def run(ks):
    rows = []
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for name, (X, y) in tables().items():
        full = make_pipeline(preprocessing(X), LogisticRegression(max_iter=2000))
        reference = cross_val_score(full, X, y, cv=folds).mean()
        for k in ks:
            for method, model in methods(X, k).items():
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    accuracy = cross_val_score(model, X, y, cv=folds).mean()
                rows.append(dict(table=name, n_rows=len(X), k=k, method=method,
                                 accuracy=accuracy, all_columns=reference,
                                 seconds=time.perf_counter() - start))
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; one keeps a shared machine's timings apart")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    results = run(args.ks)
    results.to_csv(OUT / "features.csv", index=False)
    table = results.pivot_table(index=["table", "k"], columns="method", values="accuracy")
    table["all columns"] = results.groupby(["table", "k"])["all_columns"].first()
    for method in ("autoencoder", "vae"):
        table[f"{method} - pca"] = table[method] - table["pca"]
    means = table.mean().to_frame("mean over tables and k").T
    (OUT / "features.md").write_text(
        "# Codes of mixed tables in a downstream classifier\n\n"
        f"`python -m benchmarks.bench_mixed_features --ks {' '.join(map(str, args.ks))}`\n\n"
        "5-fold cross-validated accuracy of StandardScaler + LogisticRegression on k "
        f"features; {MISSING:.0%} of feature cells hidden at random. Higher is better.\n\n"
        + table.to_markdown(floatfmt=".3f") + "\n\n" + means.to_markdown(floatfmt=".3f")
        + "\n")
    (OUT / "features_run_info.json").write_text(json.dumps(vars(args)))


if __name__ == "__main__":
    main()
