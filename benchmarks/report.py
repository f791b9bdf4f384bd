"""Turn the suite's rows into a summary, markdown, goals, a CSV and PNG plots.

:func:`write_results` is the report writer of the standalone ``bench_*.py``
scripts: CSV and JSON rows plus one markdown table, with the command line and
the machine.
"""

import json
import math
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import metrics, profiles
from .environment import describe_environment
from .goals import check_goals

KEYS = ["dataset", "method", "n_components"]
# (column, header, format) of the summary table, mean +- std over seeds.
SUMMARY_COLUMNS = [
    ("recon_mse", "recon MSE", "{:.4f}"),
    ("knn1_acc", "1-NN", "{:.3f}"),
    ("knn5_acc", "5-NN", "{:.3f}"),
    ("kmeans_nmi", "NMI", "{:.3f}"),
    ("kmeans_ari", "ARI", "{:.3f}"),
    ("trustworthiness", "trust", "{:.3f}"),
    ("log_likelihood", "log-lik", "{:.2f}"),
    ("fit_seconds", "fit s", "{:.1f}"),
    ("best_epoch", "best epoch", "{:.0f}"),
    ("epochs_to_pca", "epochs to PCA", "{:.0f}"),
    ("transform_rows_per_s", "rows/s", "{:,.0f}"),
    ("peak_fit_mem_mb", "peak MB", "{:.0f}"),
    ("data_variance", "variance", "{:.4f}"),
]
PLOTTED = [("recon_mse", "reconstruction MSE (test)"), ("knn1_acc", "1-NN accuracy"),
           ("kmeans_nmi", "KMeans NMI"), ("trustworthiness", "trustworthiness (k=5)")]
PLOT_PATTERNS = ("metrics_*.png", "latent2d_*.png")


@dataclass
class Results:
    """What a run returns: its rows, summary, goals, markdown, and where they went."""

    frame: pd.DataFrame
    summary: pd.DataFrame
    goals: list
    markdown: str
    output_dir: Path
    skipped: list
    environment: dict

    @property
    def table(self):
        """The summary table in markdown (what the command line prints)."""
        return summary_table(self.summary)


def summarize(frame):
    """One row per (dataset, method, n_components): mean and std over ok seeds."""
    if frame.empty:
        columns = [*KEYS, "family", "n_ok", "n_runs", "error"]
        return pd.DataFrame(columns=columns + [c for c, _, _ in SUMMARY_COLUMNS])
    groups = frame.groupby(KEYS, sort=False)
    ok = frame[frame["status"] == "ok"]
    metric_names = [c for c, _, _ in SUMMARY_COLUMNS]
    means = ok.groupby(KEYS, sort=False)[metric_names].mean()
    stds = ok.groupby(KEYS, sort=False)[metric_names].std(ddof=1).add_suffix("_std")
    summary = pd.DataFrame({
        "family": groups["family"].first(),
        "n_ok": groups["status"].apply(lambda s: int((s == "ok").sum())),
        "n_runs": groups.size(),
        "error": groups["error"].apply(lambda s: next((e for e in s if e), "")),
    })
    summary = summary.join(means).join(stds)
    if "train_rows" in frame:  # which split a goal was measured on
        summary["train_rows"] = groups["train_rows"].max()
    return summary.reset_index()


def _cell(mean, std, fmt):
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    text = fmt.format(mean)
    if std is not None and not math.isnan(std):
        text += " ± " + fmt.format(std)
    return text


def markdown_table(header, rows):
    """A GitHub markdown table from a header and rows of strings."""
    escape = [[str(cell).replace("|", "\\|") for cell in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in escape]
    return "\n".join(lines)


def summary_table(summary):
    header = ["dataset", "method", "k", "seeds"] + [h for _, h, _ in SUMMARY_COLUMNS] + ["error"]
    rows = []
    for record in summary.to_dict("records"):
        cells = [record["dataset"], record["method"], str(record["n_components"]),
                 f"{record['n_ok']}/{record['n_runs']}"]
        for column, _, fmt in SUMMARY_COLUMNS:
            cells.append(_cell(record.get(column), record.get(column + "_std"), fmt))
        cells.append(record["error"])
        rows.append(cells)
    return markdown_table(header, rows)


def goals_markdown(goals, profile_name):
    lines = ["## Goals", ""]
    if profile_name != "full":
        lines += [f"Profile {profile_name!r}: subsets and short training budgets, so "
                  "these checks are indicative only; the full profile is the reference.", ""]
    lines.append(markdown_table(["goal", "scope", "status", "numbers"],
                                [[g["goal"], g["scope"], g["status"], g["detail"]]
                                 for g in goals]))
    counts = {status: sum(g["status"] == status for g in goals)
              for status in ("PASS", "FALL SHORT", "NOT RUN", "TARGET MET", "TARGET OPEN")}
    lines += ["", f"{counts['PASS']} PASS, {counts['FALL SHORT']} FALL SHORT, "
                  f"{counts['NOT RUN']} NOT RUN; targets not counted: "
                  f"{counts['TARGET MET']} met, {counts['TARGET OPEN']} open."]
    return "\n".join(lines)


def _environment_markdown(environment):
    return markdown_table(["", ""], [[key, str(value)] for key, value in environment.items()])


def _notes_markdown(frame, profile, method_list, skipped):
    lines = ["## How to read this", ""]
    lines.append(
        "Every number is on the held-out test rows. One row per (dataset, method, k); "
        "skae methods are repeated over seeds (mean ± standard deviation; `seeds` "
        "counts successful/attempted), the other methods run once. `results.csv` "
        "has one row per seed with the settings and epochs run."
    )
    lines += ["", metrics.__doc__.strip().split("\n\n", 1)[1], ""]
    lines += [" ".join(profiles.__doc__.split("\n\n")[1].split()), ""]
    lines += ["Threads: torch (`torch.set_num_threads` and each estimator's `n_threads`), "
              "BLAS and OpenMP (threadpoolctl) are pinned to `n_threads` above.", ""]
    lines.append("Datasets:")
    for name, group in frame.groupby("dataset", sort=False):
        dataset_note = DATASET_NOTES.get(name, "")
        lines.append(f"- {name}: {int(group['train_rows'].max())} train / "
                     f"{int(group['test_rows'].iloc[0])} test rows, "
                     f"{int(group['n_features'].iloc[0])} features. {dataset_note}")
    lines += ["", "Methods:"]
    for method in method_list:
        ran = frame[(frame["method"] == method.name) & (frame["status"] == "ok")]
        settings = "; ".join(f"{name}: {text}" for name, text in
                             ran.groupby("dataset", sort=False)["settings"].first().items())
        lines.append(f"- {method.name}: {method.description}."
                     + (f" Settings ({settings})." if method.family == "skae" and settings
                        else ""))
    if skipped:
        lines += ["", "Skipped:"] + [f"- {s}" for s in skipped]
    return "\n".join(lines)


DATASET_NOTES = {
    "fashion_mnist": "Pixels / 255; labels: the 10 classes. ae_conv sees (n, 28, 28) "
                     "images, the rest flat rows.",
    "digits": "Pixels / 16; labels: the 10 digits. ae_conv sees (n, 8, 8) images.",
    "breast_cancer": "StandardScaler fitted on train; labels: malignant/benign.",
    "wine": "StandardScaler fitted on train; labels: the 3 cultivars.",
    "diabetes": "StandardScaler fitted on train; labels: the regression target "
                "binned into 3 classes at the train terciles (for kNN and KMeans only).",
}


def render_markdown(summary, goals, environment, profile, method_list, frame, skipped):
    parts = [
        f"# skae benchmark: profile {profile.name}", "",
        _environment_markdown(environment), "",
        "## Results", "", summary_table(summary), "",
        goals_markdown(goals, profile.name), "",
        _notes_markdown(frame, profile, method_list, skipped), "",
    ]
    return "\n".join(parts)


def plot_metrics(frame, path, dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = frame[(frame["dataset"] == dataset) & (frame["status"] == "ok")]
    method_names = list(dict.fromkeys(ok["method"]))
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(method_names)}
    sizes = sorted(ok["n_components"].unique())
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    handles = {}
    for ax, (column, title) in zip(axes.ravel(), PLOTTED):
        for method, group in ok.groupby("method", sort=False):
            stats = group.groupby("n_components")[column].agg(["mean", "std"]).dropna(
                subset=["mean"])
            if stats.empty:
                continue
            handles[method] = ax.errorbar(
                stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o",
                capsize=3, color=colors[method], label=method)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(k) for k in sizes])
        ax.minorticks_off()
        ax.set_xlabel("n_components")
        ax.set_title(title)
        if column == "recon_mse":
            ax.set_yscale("log")
    fig.legend([handles[m] for m in method_names if m in handles],
               [m for m in method_names if m in handles], loc="outside right center")
    fig.suptitle(f"{dataset}: test-set metrics vs code size (mean ± std over seeds)")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_latents(codes, path, dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [(method, Z, y) for (name, method), (Z, y) in codes.items() if name == dataset]
    n_cols = min(4, len(entries))
    n_rows = math.ceil(len(entries) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 3.4 * n_rows),
                             squeeze=False, constrained_layout=True)
    for ax, (method, Z, y) in zip(axes.ravel(), entries):
        scatter = ax.scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=3, alpha=0.7)
        ax.set_title(method)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(entries):]:
        ax.axis("off")
    fig.colorbar(scatter, ax=axes.ravel().tolist(), shrink=0.6, label="class")
    fig.suptitle(f"{dataset}: 2-D test codes coloured by class")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_plots(frame, codes, output_dir):
    written = []
    for dataset in frame.loc[frame["status"] == "ok", "dataset"].unique():
        path = output_dir / f"metrics_{dataset}.png"
        plot_metrics(frame, path, dataset)
        written.append(path)
        if any(name == dataset for name, _ in codes):
            path = output_dir / f"latent2d_{dataset}.png"
            plot_latents(codes, path, dataset)
            written.append(path)
    return written


def write_all(frame, codes, environment, profile, method_list, skipped, output_dir,
              plots=True):
    """Write results.csv, results.md, goals.md, environment.json and plots."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for pattern in PLOT_PATTERNS:
        for stale in output_dir.glob(pattern):
            stale.unlink()
    frame.to_csv(output_dir / "results.csv", index=False)
    summary = summarize(frame)
    goals = check_goals(summary)
    markdown = render_markdown(summary, goals, environment, profile, method_list, frame,
                               skipped)
    (output_dir / "results.md").write_text(markdown)
    (output_dir / "goals.md").write_text(
        f"# skae goals, profile {profile.name}\n\n"
        f"From `{environment['command']}` at commit {environment['git_commit']}.\n\n"
        + goals_markdown(goals, profile.name).split("\n", 2)[2] + "\n")
    (output_dir / "environment.json").write_text(json.dumps(environment, indent=2) + "\n")
    if plots and not frame.empty:
        write_plots(frame, codes, output_dir)
    return Results(frame=frame, summary=summary, goals=goals, markdown=markdown,
                   output_dir=output_dir, skipped=skipped, environment=environment)



def command_line(script=None, argv=None):
    """The command running now as one would type it, or ``script`` run with ``argv``."""
    if argv is None:
        return shlex.join(["python", *sys.orig_argv[1:]])
    return shlex.join(["python", script, *argv])


def write_results(output_dir, name, rows, table, *, title, notes="", n_threads=None,
                  environment=None, command=None):
    """Write a standalone benchmark's ``name.csv``, ``name.json`` and ``name.md``.

    Parameters
    ----------
    output_dir : path
        Folder for the three files, created if needed.
    name : str
        Stem of the file names.
    rows : list of dict
        One per measurement; the JSON keeps them whole, the CSV keeps the
        columns of plain values (lists such as per-repetition times stay in the
        JSON).
    table : str
        The one markdown table of the report.
    title, notes : str
        The report's heading, and what to read the table with (markdown).
    n_threads : int or None
        torch threads of the run, for the environment.
    environment : dict or None
        Entries added to :func:`~benchmarks.environment.describe_environment`'s.
    command : str or None
        The command that made the results; None: this process's command line.

    Returns
    -------
    environment : dict
        What the report says the run ran on.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    environment = {**describe_environment(n_threads, command or command_line()),
                   "load_average": [round(load, 2) for load in os.getloadavg()],
                   **(environment or {})}
    frame = pd.DataFrame(rows)
    plain = [column for column in frame.columns
             if not frame[column].map(lambda v: isinstance(v, (list, dict, tuple))).any()]
    frame[plain].to_csv(output_dir / f"{name}.csv", index=False)
    (output_dir / f"{name}.json").write_text(
        json.dumps({"environment": environment, "rows": rows}, indent=1, default=str) + "\n")
    lines = [f"# {title}", "", f"`{environment['command']}` at {environment['git_commit']}",
             "", table, ""]
    if notes:
        lines += [notes, ""]
    lines += ["Environment: " + "; ".join(f"{key} {value}" for key, value in environment.items()
                                          if key not in ("command", "git_commit")), ""]
    (output_dir / f"{name}.md").write_text("\n".join(lines))
    return environment
