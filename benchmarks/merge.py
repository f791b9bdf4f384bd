"""Merge the results of one profile run in parts into one results folder.

A full run takes hours on two cores; it can run as several ``run`` calls
(each with its own ``--output-dir``), merged afterwards::

    python -m benchmarks merge PART_DIR [PART_DIR ...] --profile full \\
        --output-dir benchmarks/results/full

Rows of a later part replace those of an earlier one for the same dataset,
method, size and seed. The merged folder gets the usual results.csv,
results.md, goals.md and metric plots, the parts' 2-D code plots, and an
environment.json listing each part's environment.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from . import data
from .methods import get_method
from .profiles import get_profile
from .report import write_all
from .suite import COLUMNS

ROW_KEYS = ["dataset", "method", "n_components", "seed"]


def _data_variance(dataset_name, profile):
    """Mean per-feature variance of a dataset's scaled test rows (for rows that lack it)."""
    dataset = data.load(dataset_name, profile.fashion_rows)
    scaler = dataset.make_scaler().fit(dataset.X_train)
    return float(np.var(np.asarray(scaler.transform(dataset.X_test)), axis=0).mean())


def merge(parts, profile="full", output_dir=None, command=None):
    """Merge the ``results.csv`` of each folder in ``parts``; return the Results."""
    profile = get_profile(profile)
    parts = [Path(part) for part in parts]
    frame = pd.concat([pd.read_csv(part / "results.csv") for part in parts],
                      ignore_index=True)
    frame = frame.drop_duplicates(subset=ROW_KEYS, keep="last").reindex(columns=COLUMNS)
    for name in frame["dataset"].unique():
        rows = (frame["dataset"] == name) & frame["data_variance"].isna()
        if rows.any():
            frame.loc[rows, "data_variance"] = _data_variance(name, profile)
    environments = [json.loads((part / "environment.json").read_text()) for part in parts]
    environment = {**environments[-1], "command": command or "python -m benchmarks merge",
                   "wall_seconds": round(sum(e.get("wall_seconds", 0) for e in environments), 1),
                   "parts": environments}
    output_dir = Path(output_dir)
    method_list = [get_method(name) for name in dict.fromkeys(frame["method"])]
    results = write_all(frame, {}, environment, profile, method_list, [], output_dir)
    for part in parts:
        for plot in part.glob("latent2d_*.png"):
            shutil.copy(plot, output_dir / plot.name)
    return results
