"""Are skae's defaults never worse than PCA on tables the suite has never seen?

Data: numeric tables shipped inside PyPI packages (no download): vega_datasets'
``cars`` (rows with a missing value dropped) and statsmodels' ``star98``
(exogenous columns) and ``fair``. Each is split 75/25 (``random_state=0``) and
standardized on the training rows. Each estimator runs with its defaults
(``random_state=0``) at k = 2, half the columns and all but one; the table
gives its test reconstruction MSE as a multiple of ``PCA(k)``'s.

Usage: ``pip install statsmodels vega_datasets`` then
``python benchmarks/bench_unseen_tables.py`` (about a minute on 2 cores);
writes ``benchmarks/results/unseen/unseen.md``.
"""
import warnings
from pathlib import Path
import numpy as np
warnings.simplefilter("ignore")
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from skae import AutoencoderTransformer, DenoisingAutoencoder, VAETransformer
import statsmodels.api as sm
from vega_datasets import data as vega

tables = {
    "vega cars": vega.cars()[["Miles_per_Gallon", "Cylinders", "Displacement", "Horsepower", "Weight_in_lbs", "Acceleration"]].dropna().to_numpy(float),
    "statsmodels star98": sm.datasets.star98.load_pandas().exog.to_numpy(float),
    "statsmodels fair": sm.datasets.fair.load_pandas().data.to_numpy(float),
}
lines = ["| table | k | PCA MSE | AutoencoderTransformer | DenoisingAutoencoder | VAETransformer |",
         "|---|---:|---:|---:|---:|---:|"]
for name, X in tables.items():
    Xtr, Xte = train_test_split(X, test_size=0.25, random_state=0)
    sc = StandardScaler().fit(Xtr)
    Xtr, Xte = sc.transform(Xtr).astype(np.float32), sc.transform(Xte).astype(np.float32)
    p = X.shape[1]
    for k in sorted({2, p // 2, p - 1}):
        pca = PCA(k).fit(Xtr)
        base = np.mean((pca.inverse_transform(pca.transform(Xte)) - Xte) ** 2)
        cells = []
        for cls in (AutoencoderTransformer, DenoisingAutoencoder, VAETransformer):
            m = cls(k, random_state=0, n_threads=None).fit(Xtr)
            mse = np.mean((m.inverse_transform(m.transform(Xte)) - Xte) ** 2)
            cells.append(f"{mse / base:.3f}")
        lines.append(f"| {name} ({X.shape[0]} x {p}) | {k} | {base:.4f} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
out = Path(__file__).resolve().parent / "results" / "unseen" / "unseen.md"
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text("# Defaults on unseen tables: test MSE / PCA's\n\nFrom `python benchmarks/bench_unseen_tables.py`.\n\n" + "\n".join(lines) + "\n")
