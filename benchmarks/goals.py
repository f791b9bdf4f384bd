"""The goals issue 6 sets for skae, checked against a run's summary (never tuned for).

On Fashion-MNIST test images, the best skae method at each size:
- reconstruction MSE at most 0.55 x PCA's (n_components 2..64);
- 1-NN accuracy at 2-D of at least 0.70;
- KMeans NMI at 2-D above PCA's.
On the tables (breast_cancer, wine, diabetes), with default settings, the
best skae method's reconstruction MSE is never more than 5% above PCA's at
equal size; each skae method that is worse than that is named.
"""

import math

PASS, SHORT, NOT_RUN = "PASS", "FALL SHORT", "NOT RUN"
MSE_RATIO_IMAGES = 0.55
KNN1_2D = 0.70
MSE_TOLERANCE_TABLES = 1.05
TABLES = ("breast_cancer", "wine", "diabetes")
SKAE = "skae"


def _ok(summary, dataset):
    rows = summary[(summary["dataset"] == dataset) & (summary["n_ok"] > 0)]
    return rows


def _best_skae(rows, metric, k, lowest):
    candidates = rows[(rows["family"] == SKAE) & (rows["n_components"] == k)]
    candidates = candidates[candidates[metric].notna()]
    if candidates.empty:
        return None
    best = candidates.loc[candidates[metric].idxmin() if lowest else candidates[metric].idxmax()]
    return best["method"], float(best[metric])


def _pca(rows, metric, k):
    pca = rows[(rows["method"] == "pca") & (rows["n_components"] == k)]
    return None if pca.empty or math.isnan(pca[metric].iloc[0]) else float(pca[metric].iloc[0])


def _goal(goal, scope, status, detail):
    return {"goal": goal, "scope": scope, "status": status, "detail": detail}


def _fashion_goals(summary):
    rows = _ok(summary, "fashion_mnist")
    mse_goal = f"best skae recon MSE <= {MSE_RATIO_IMAGES} x PCA"
    if rows.empty:
        return [_goal("Fashion-MNIST goals", "-", NOT_RUN, "fashion_mnist was not in this run")]
    goals = []
    for k in sorted(k for k in rows["n_components"].unique() if 2 <= k <= 64):
        best, pca = _best_skae(rows, "recon_mse", k, lowest=True), _pca(rows, "recon_mse", k)
        if best is None or pca is None:
            goals.append(_goal(mse_goal, f"fashion_mnist k={k}", NOT_RUN,
                               "needs PCA and a skae method at this size"))
            continue
        ratio = best[1] / pca
        goals.append(_goal(
            mse_goal, f"fashion_mnist k={k}", PASS if ratio <= MSE_RATIO_IMAGES else SHORT,
            f"{best[0]} {best[1]:.4f} vs PCA {pca:.4f}: ratio {ratio:.2f}",
        ))
    best = _best_skae(rows, "knn1_acc", 2, lowest=False)
    goals.append(_goal(
        f"best skae 1-NN accuracy at 2-D >= {KNN1_2D}", "fashion_mnist k=2",
        NOT_RUN if best is None else PASS if best[1] >= KNN1_2D else SHORT,
        "no skae method at k=2" if best is None else f"{best[0]} {best[1]:.3f}",
    ))
    best, pca = _best_skae(rows, "kmeans_nmi", 2, lowest=False), _pca(rows, "kmeans_nmi", 2)
    if best is None or pca is None:
        goals.append(_goal("best skae KMeans NMI at 2-D > PCA", "fashion_mnist k=2",
                           NOT_RUN, "needs PCA and a skae method at k=2"))
    else:
        goals.append(_goal(
            "best skae KMeans NMI at 2-D > PCA", "fashion_mnist k=2",
            PASS if best[1] > pca else SHORT, f"{best[0]} {best[1]:.3f} vs PCA {pca:.3f}",
        ))
    return goals


def _table_goals(summary):
    goal = f"best skae recon MSE <= {MSE_TOLERANCE_TABLES} x PCA (default settings)"
    goals = []
    for dataset in TABLES:
        rows = _ok(summary, dataset)
        if rows.empty:
            goals.append(_goal(goal, dataset, NOT_RUN, f"{dataset} was not in this run"))
            continue
        for k in sorted(rows["n_components"].unique()):
            best, pca = _best_skae(rows, "recon_mse", k, lowest=True), _pca(rows, "recon_mse", k)
            if best is None or pca is None:
                continue
            skae_rows = rows[(rows["family"] == SKAE) & (rows["n_components"] == k)]
            worse = [f"{r.method} x{r.recon_mse / pca:.2f}" for r in skae_rows.itertuples()
                     if r.recon_mse > MSE_TOLERANCE_TABLES * pca]
            ratio = best[1] / pca
            detail = f"{best[0]} {best[1]:.4f} vs PCA {pca:.4f}: ratio {ratio:.2f}"
            if worse:
                detail += "; worse than PCA by more than 5%: " + ", ".join(worse)
            goals.append(_goal(goal, f"{dataset} k={k}",
                               PASS if ratio <= MSE_TOLERANCE_TABLES else SHORT, detail))
    return goals


def check_goals(summary):
    """List of ``{goal, scope, status, detail}`` dicts for a run's summary.

    ``summary`` has one row per (dataset, method, n_components) with the mean
    of each metric over seeds, ``family`` and ``n_ok`` (successful seeds).
    """
    return _fashion_goals(summary) + _table_goals(summary)
