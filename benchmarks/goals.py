"""The goals set for skae (issues 6 and 17), checked against a run's summary (never tuned for).

On Fashion-MNIST test images of the official split (60,000 training rows;
a run on a subset, such as the quick profile's, reports these NOT RUN), at
each size 2..64:
- the best skae method's reconstruction MSE at most 0.55 x PCA's, and
  ``ae_mlp`` (AutoencoderTransformer with its MLP defaults) at most 0.65 x;
- at 2-D an MSE of 0.0244 or lower, at 64-D 0.0054 or lower (the marks of
  the Parametric UMAP paper's autoencoder, Sainburg et al. 2021);
- KMeans NMI at 2-D above PCA's.
On every dataset, every skae method at every size: test MSE at most 1.02 x
PCA's plus 0.001 of the data's variance (the mean per-feature variance of
the scaled test rows: sizes where PCA is nearly lossless need that slack).
On the tables: the best skae method under 0.9 x PCA at k=2, and the VAE's
mean test bound (nats per row) at least PCA's probabilistic log-likelihood.

The 1-NN accuracy at 2-D of at least 0.70 is reported as a TARGET (a later
issue's, for a neighbourhood-preserving model): it is not counted among the
PASS and FALL SHORT goals.
"""

import math

PASS, SHORT, NOT_RUN, TARGET_MET, TARGET_OPEN = (
    "PASS", "FALL SHORT", "NOT RUN", "TARGET MET", "TARGET OPEN")
MSE_RATIO_IMAGES = 0.55
MSE_RATIO_AE_MLP = 0.65
FASHION_MARKS = {2: 0.0244, 64: 0.0054}
FASHION_TRAIN_ROWS = 60000
KNN1_2D = 0.70
NEVER_WORSE_RATIO = 1.02
NEVER_WORSE_SLACK = 0.001
TABLE_GAIN_2D = 0.9
TABLES = ("digits", "breast_cancer", "wine", "diabetes")
STANDARDIZED_TABLES = ("breast_cancer", "wine", "diabetes")
SKAE = "skae"
LOG_LIKELIHOOD_RTOL = 1e-5


def _ok(summary, dataset):
    return summary[(summary["dataset"] == dataset) & (summary["n_ok"] > 0)]


def _value(rows, method, k, metric):
    row = rows[(rows["method"] == method) & (rows["n_components"] == k)]
    if row.empty or metric not in row or math.isnan(row[metric].iloc[0]):
        return None
    return float(row[metric].iloc[0])


def _best_skae(rows, metric, k, lowest):
    candidates = rows[(rows["family"] == SKAE) & (rows["n_components"] == k)]
    candidates = candidates[candidates[metric].notna()]
    if candidates.empty:
        return None
    best = candidates.loc[candidates[metric].idxmin() if lowest else candidates[metric].idxmax()]
    return best["method"], float(best[metric])


def _goal(goal, scope, status, detail):
    return {"goal": goal, "scope": scope, "status": status, "detail": detail}


def _sizes(rows):
    return sorted(int(k) for k in rows["n_components"].unique())


def _fashion_goals(summary):
    rows = _ok(summary, "fashion_mnist")
    if rows.empty:
        return [_goal("Fashion-MNIST goals", "-", NOT_RUN, "fashion_mnist was not in this run")]
    goals = []
    train_rows = int(rows["train_rows"].max()) if "train_rows" in rows else FASHION_TRAIN_ROWS
    for k in (k for k in _sizes(rows) if 2 <= k <= 64):
        scope = f"fashion_mnist k={k}"
        if train_rows != FASHION_TRAIN_ROWS:
            goals.append(_goal(
                "Fashion-MNIST MSE goals and marks", scope, NOT_RUN,
                f"set on the official split ({FASHION_TRAIN_ROWS:,} training rows); this "
                f"run trained on {train_rows:,} (make bench checks them)"))
            continue
        pca = _value(rows, "pca", k, "recon_mse")
        best = _best_skae(rows, "recon_mse", k, lowest=True)
        for goal, candidate, limit in (
                (f"best skae recon MSE <= {MSE_RATIO_IMAGES} x PCA", best, MSE_RATIO_IMAGES),
                (f"ae_mlp recon MSE <= {MSE_RATIO_AE_MLP} x PCA",
                 ("ae_mlp", _value(rows, "ae_mlp", k, "recon_mse")), MSE_RATIO_AE_MLP)):
            if pca is None or candidate is None or candidate[1] is None:
                goals.append(_goal(goal, scope, NOT_RUN, "needs PCA and the skae method"))
                continue
            ratio = candidate[1] / pca
            goals.append(_goal(goal, scope, PASS if ratio <= limit else SHORT,
                               f"{candidate[0]} {candidate[1]:.4f} vs PCA {pca:.4f}: "
                               f"ratio {ratio:.2f}"))
        if k in FASHION_MARKS and best is not None:
            mark = FASHION_MARKS[k]
            goals.append(_goal(f"best skae recon MSE <= {mark} (Sainburg et al. 2021)", scope,
                               PASS if best[1] <= mark else SHORT, f"{best[0]} {best[1]:.4f}"))
    best = _best_skae(rows, "knn1_acc", 2, lowest=False)
    goals.append(_goal(
        f"best skae 1-NN accuracy at 2-D >= {KNN1_2D} (a later issue's target)",
        "fashion_mnist k=2",
        NOT_RUN if best is None else TARGET_MET if best[1] >= KNN1_2D else TARGET_OPEN,
        "no skae method at k=2" if best is None else f"{best[0]} {best[1]:.3f}",
    ))
    best, pca = _best_skae(rows, "kmeans_nmi", 2, lowest=False), _value(rows, "pca", 2,
                                                                          "kmeans_nmi")
    if best is None or pca is None:
        goals.append(_goal("best skae KMeans NMI at 2-D > PCA", "fashion_mnist k=2",
                           NOT_RUN, "needs PCA and a skae method at k=2"))
    else:
        goals.append(_goal(
            "best skae KMeans NMI at 2-D > PCA", "fashion_mnist k=2",
            PASS if best[1] > pca else SHORT, f"{best[0]} {best[1]:.3f} vs PCA {pca:.3f}",
        ))
    return goals


def _never_worse_goals(summary):
    goal = (f"every skae method's recon MSE <= {NEVER_WORSE_RATIO} x PCA + "
            f"{NEVER_WORSE_SLACK} x variance")
    goals = []
    for dataset in summary["dataset"].unique():
        rows = _ok(summary, dataset)
        for k in _sizes(rows):
            pca = _value(rows, "pca", k, "recon_mse")
            skae_rows = rows[(rows["family"] == SKAE) & (rows["n_components"] == k)
                             & rows["recon_mse"].notna()]
            if pca is None or skae_rows.empty:
                continue
            variance = _value(rows, "pca", k, "data_variance")
            slack = NEVER_WORSE_SLACK * (variance if variance is not None else 1.0)
            limit = NEVER_WORSE_RATIO * pca + slack
            ratios = [f"{r.method} x{r.recon_mse / pca:.3f}" for r in skae_rows.itertuples()]
            worse = [f"{r.method} {r.recon_mse:.4f}" for r in skae_rows.itertuples()
                     if r.recon_mse > limit]
            detail = f"PCA {pca:.4f}, limit {limit:.4f}: " + ", ".join(ratios)
            if worse:
                detail += "; above the limit: " + ", ".join(worse)
            goals.append(_goal(goal, f"{dataset} k={k}", SHORT if worse else PASS, detail))
    return goals


def _table_goals(summary):
    goals = []
    for dataset in TABLES:
        rows = _ok(summary, dataset)
        if rows.empty:
            goals.append(_goal("table goals", dataset, NOT_RUN, f"{dataset} was not in this run"))
            continue
        best, pca = _best_skae(rows, "recon_mse", 2, lowest=True), _value(rows, "pca", 2,
                                                                          "recon_mse")
        if best is not None and pca is not None:
            ratio = best[1] / pca
            goals.append(_goal(
                f"best skae recon MSE < {TABLE_GAIN_2D} x PCA at k=2", f"{dataset} k=2",
                PASS if ratio < TABLE_GAIN_2D else SHORT,
                f"{best[0]} {best[1]:.4f} vs PCA {pca:.4f}: ratio {ratio:.2f}"))
        if dataset not in STANDARDIZED_TABLES:
            continue
        for k in _sizes(rows):
            vae = _value(rows, "vae", k, "log_likelihood")
            pca = _value(rows, "pca", k, "log_likelihood")
            if vae is None or pca is None:
                continue
            # Equal to float32 precision counts: the start is PPCA itself.
            goals.append(_goal(
                "VAE mean test bound >= PCA log-likelihood (nats/row)", f"{dataset} k={k}",
                PASS if vae >= pca - LOG_LIKELIHOOD_RTOL * abs(pca) else SHORT,
                f"vae {vae:.4f} vs PCA {pca:.4f}"))
    return goals


def check_goals(summary):
    """List of ``{goal, scope, status, detail}`` dicts for a run's summary.

    ``summary`` has one row per (dataset, method, n_components) with the mean
    of each metric over seeds, ``family`` and ``n_ok`` (successful seeds).
    """
    for column in ("log_likelihood", "data_variance"):
        if column not in summary:
            summary = summary.assign(**{column: float("nan")})
    return _fashion_goals(summary) + _never_worse_goals(summary) + _table_goals(summary)
