"""Imputation on mixed tables: does AutoencoderImputer fill cells better than scikit-learn's imputers?

Data: vega_datasets' cars (missing values, categorical Origin) and
seattle-weather (categorical weather and month), statsmodels' fair and anes96
(categorical-coded columns as categories), scikit-learn's diabetes.
Each table: 70/30 row split; the imputers are fitted on the training rows;
20% of the observed cells of the held-out rows are masked completely at
random, with 3 seeds. Scores: RMSE on masked numeric cells in units of the
training standard deviation, accuracy on masked categorical cells.
Baselines: SimpleImputer (mean / most_frequent), KNNImputer and
IterativeImputer on the numeric columns (most_frequent on categorical ones).

``--tables unseen`` runs the same protocol on tables that played no part in
choosing the imputer's defaults: scikit-learn's wine and breast_cancer,
statsmodels' grunfeld (categorical firm), star98 (exogenous columns) and
randhie (2,000 rows), and vega_datasets' airports (categorical state and
country, 2,000 rows).

Usage: python -m benchmarks.bench_mixed_tables [--seeds 3] [--max-iter 200] [--tables unseen]
"""

import argparse
import pathlib

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_diabetes
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

from benchmarks.report import write_results
from skae import AutoencoderImputer

OUT = pathlib.Path(__file__).parent / "results" / "mixed"


def tables():
    from statsmodels.datasets import anes96, fair
    from vega_datasets import data

    cars = data.cars().drop(columns=["Name", "Year"])
    affairs = fair.load_pandas().data
    for c in ["rate_marriage", "religious", "occupation", "occupation_husb"]:
        affairs[c] = affairs[c].astype(int).astype(str).astype("category")
    votes = anes96.load_pandas().data.drop(columns=["logpopul"])
    for c in ["PID", "educ", "income", "vote"]:
        votes[c] = votes[c].astype(int).astype(str).astype("category")
    weather = data.seattle_weather()
    weather["month"] = weather.pop("date").dt.month.astype(str).astype("category")
    diabetes = load_diabetes(as_frame=True).data
    return {"cars": cars, "fair": affairs.sample(1500, random_state=0), "anes96": votes,
            "seattle": weather, "diabetes": diabetes}


def unseen_tables():
    import statsmodels.api as sm
    from sklearn.datasets import load_breast_cancer, load_wine
    from vega_datasets import data

    airports = data.airports()[["state", "country", "latitude", "longitude"]]
    for c in ["state", "country"]:
        airports[c] = airports[c].astype("category")
    grunfeld = sm.datasets.grunfeld.load_pandas().data
    grunfeld["firm"] = grunfeld["firm"].astype("category")
    return {"wine": load_wine(as_frame=True).data,
            "breast_cancer": load_breast_cancer(as_frame=True).data,
            "grunfeld": grunfeld, "star98": sm.datasets.star98.load_pandas().exog,
            "randhie": sm.datasets.randhie.load_pandas().data.sample(2000, random_state=0),
            "airports": airports.sample(2000, random_state=0)}


def baseline(kind, train, test, numeric):
    out = test.copy()
    categorical = [c for c in train.columns if c not in numeric]
    if categorical:
        mode = SimpleImputer(strategy="most_frequent").fit(train[categorical].astype(object))
        out[categorical] = mode.transform(test[categorical].astype(object))
    model = {"mean": SimpleImputer(), "knn": KNNImputer(),
             "iterative": IterativeImputer(random_state=0)}[kind]
    out[numeric] = model.fit(train[numeric]).transform(test[numeric])
    return out


def score(filled, truth, mask, numeric, scale):
    sq, hits, n_cat = [], 0, 0
    for j, c in enumerate(truth.columns):
        rows = mask[:, j]
        if not rows.any():
            continue
        if c in numeric:
            d = (filled[c].to_numpy(float)[rows] - truth[c].to_numpy(float)[rows]) / scale[c]
            sq.extend(d ** 2)
        else:
            hits += (filled[c].astype(str).to_numpy()[rows]
                     == truth[c].astype(str).to_numpy()[rows]).sum()
            n_cat += rows.sum()
    return float(np.sqrt(np.mean(sq))), (hits / n_cat if n_cat else float("nan"))


def run(seeds, max_iter, frames):
    rows = []
    for name, frame in frames.items():
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        for seed in range(seeds):
            rng = np.random.RandomState(seed)
            order = rng.permutation(len(frame))
            cut = int(0.7 * len(frame))
            train, truth = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
            mask = truth.notna().to_numpy() & (rng.rand(*truth.shape) < 0.2)
            test = truth.mask(mask)
            scale = train[numeric].std()
            methods = {k: baseline(k, train, test, numeric) for k in ["mean", "knn", "iterative"]}
            methods["autoencoder"] = AutoencoderImputer(
                max_iter=max_iter, random_state=seed).fit(train).transform(test)
            for method, filled in methods.items():
                rmse, acc = score(filled, truth, mask, numeric, scale)
                rows.append(dict(table=name, seed=seed, method=method, rmse=rmse, accuracy=acc))
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--out-dir", type=pathlib.Path, default=OUT)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--tables", choices=["seen", "unseen"], default="seen")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    unseen = args.tables == "unseen"
    results = run(args.seeds, args.max_iter, unseen_tables() if unseen else tables())
    table = results.groupby(["table", "method"], as_index=False)[["rmse", "accuracy"]].mean()
    # The goal: the autoencoder's RMSE against the best baseline of each table.
    rmse = table.pivot(index="table", columns="method", values="rmse")
    best = rmse.drop(columns="autoencoder").min(axis=1)
    goal = pd.DataFrame({"autoencoder": rmse["autoencoder"], "best baseline": best,
                         "ratio": rmse["autoencoder"] / best})
    goal.loc["mean"] = goal.mean()
    write_results(
        args.out_dir, "imputation_unseen" if unseen else "imputation", results.to_dict("records"),
        table.to_markdown(index=False, floatfmt=".3f")
        + "\n\nRMSE of the autoencoder against the best baseline of each table:\n\n"
        + goal.to_markdown(floatfmt=".3f"),
        title=(f"Imputation of masked cells{' on unseen tables' if unseen else ''} "
               f"(mean over {args.seeds} seeds)"),
        notes=("`rmse`: on masked numeric cells, in training standard deviations (lower is "
               "better); `accuracy`: on masked categorical cells (higher is better; nan "
               "where a table has none)."),
        environment={"seeds": args.seeds, "max_iter": args.max_iter, "tables": args.tables})


if __name__ == "__main__":
    main()
