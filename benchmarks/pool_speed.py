"""Pool the repetitions of several ``bench_speed.py`` reports into one estimate per row.

Question
--------
One run of ``bench_speed.py`` cannot tell 1.00 from 1.05 on a shared
virtual machine: single epochs scatter by 10-20%, the median of 15 paired
ratios has a standard error of about 2.5%, and with some twenty rows
against a target of 1.05 a run where one of them lands above it is likely
even when none is really slower. Every report keeps each repetition
(``speed.json``); pooling the paired ratios of several runs gives each row
an estimate whose error is smaller than the difference the targets ask
about.

Method
------
For every skae row (case, threads, contender) the paired ratios of every
repetition of every report are pooled: skae's epoch over each hand loop's
epoch in the same repetition (``hand``: pre-shuffled slices, ``hand
gather``: per-batch gathers), and, for the interleaved epochs, over the hand
epochs that followed skae's. The reference is the hand loop with the lower
pooled geometric-mean time ratio, i.e. the loop that is faster over all the
runs (choosing the faster loop separately in each run, as a single report
does, picks the one that happened to be lucky and biases the reference
low). Encoding rows pool their ratios to the raw loop. Each estimate is the
median of the pooled ratios with a 95% bootstrap interval (4,000
resamples, seeded). Reports of different commits may be pooled; say which
in the text that cites the result.

Usage
-----
    python benchmarks/pool_speed.py REPORT.json [REPORT.json ...] [--out FILE]

Writes a markdown table to ``--out`` (default: standard output).
"""

import argparse
import collections
import json
from pathlib import Path

import numpy as np

HAND_LOOPS = ("hand", "hand gather")


def paired_ratios(report):
    """``{row: {reference: ratios}}`` of one report, and each row's target.

    A row is ``(kind, case, contender, n_threads)``; ``kind`` is "epoch",
    "epoch, interleaved" or "transform".
    """
    ratios = collections.defaultdict(dict)
    targets = {}
    training = report["training"]
    for result in training:
        if result.get("target") is None:
            continue
        row = ("epoch", result["case"], result["contender"], result["n_threads"])
        for name in HAND_LOOPS:
            hand = next(h for h in training if h["contender"] == name
                        and h["case"] == result["case"]
                        and h["n_threads"] == result["n_threads"])
            ratios[row][name] = (np.asarray(result["repeats_epoch_wall_s"])
                                 / np.asarray(hand["repeats_epoch_wall_s"]))
        targets[row] = result["target"]
    for result in report.get("interleaved", ()):
        row = ("epoch, interleaved", result["case"], "skae", result["n_threads"])
        epochs = {name: np.asarray(times)
                  for name, times in result["repeats_epoch_wall_s"].items()}
        for name in HAND_LOOPS:
            ratios[row][name] = epochs["skae"] / epochs[name]
        targets[row] = result["target"]
    encoding = report["encoding"]
    for result in encoding:
        if result.get("target") is None:
            continue
        row = ("transform", "all rows", result["contender"], result["n_threads"])
        raw = next(e for e in encoding if e["n_threads"] == result["n_threads"]
                   and e["contender"] == result["reference"])
        ratios[row]["raw torch"] = (np.asarray(result["repeats_s"])
                                    / np.asarray(raw["repeats_s"]))
        targets[row] = result["target"]
    return ratios, targets


def pool(reports):
    """The pooled ratios ``{row: {reference: ratios}}``, the targets and the run counts."""
    pooled = collections.defaultdict(lambda: collections.defaultdict(list))
    targets, n_runs = {}, collections.Counter()
    for report in reports:
        ratios, report_targets = paired_ratios(report)
        for row, by_reference in ratios.items():
            n_runs[row] += 1
            for reference, values in by_reference.items():
                pooled[row][reference].extend(values.tolist())
        targets.update(report_targets)
    return pooled, targets, n_runs


def median_interval(values, rng, n_resamples=4000):
    """Median of ``values`` and its 95% bootstrap interval."""
    values = np.asarray(values)
    resampled = np.median(rng.choice(values, size=(n_resamples, len(values))), axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return float(np.median(values)), float(low), float(high)


def summarise(reports, seed=0):
    """One dict per row: the pooled estimates against each reference and the verdict."""
    pooled, targets, n_runs = pool(reports)
    rng = np.random.default_rng(seed)
    rows = []
    for row in sorted(pooled, key=lambda r: (r[0] != "epoch", r[0], r[3], r[1], r[2])):
        by_reference = pooled[row]
        # The faster reference over all runs: the lowest geometric mean of skae's ratios
        # to it is the highest, so take the reference that maximises it.
        reference = max(by_reference, key=lambda name: np.mean(np.log(by_reference[name])))
        estimates = {name: median_interval(values, rng)
                     for name, values in by_reference.items()}
        ratio = estimates[reference][0]
        kind, case, contender, n_threads = row
        rows.append(dict(kind=kind, case=case, contender=contender, n_threads=n_threads,
                         n_runs=n_runs[row], n_ratios=len(by_reference[reference]),
                         estimates=estimates, reference=reference, ratio=ratio,
                         target=targets[row], meets_target=ratio <= targets[row]))
    return rows


def markdown(rows, sources):
    lines = [
        "# skae speed, pooled over several runs of bench_speed.py", "",
        "Reports: " + ", ".join(sources), "",
        "Medians of the pooled paired ratios skae / reference, with 95% bootstrap "
        "intervals; \"against the faster\" uses the reference that is faster over all "
        "the runs (`benchmarks/pool_speed.py`).", "",
        "| what | threads | runs | ratios | x hand (transform: x raw torch) | x hand gather "
        "| against the faster | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(estimate):
        return f"{estimate[0]:.3f} [{estimate[1]:.3f}-{estimate[2]:.3f}]" if estimate else ""

    for row in rows:
        estimates = row["estimates"]
        if row["kind"] == "transform":
            what = f"transform: {row['contender']} (against raw torch)"
            hand, gather = estimates["raw torch"], None
        else:
            what = f"{row['kind']}: {row['case']} ({row['contender']})"
            hand, gather = estimates["hand"], estimates["hand gather"]
        lines.append(
            f"| {what} | {row['n_threads']} | {row['n_runs']} | {row['n_ratios']} | "
            f"{cell(hand)} | {cell(gather)} | {row['ratio']:.3f} (`{row['reference']}`) | "
            f"{row['target']:.2f} | {'yes' if row['meets_target'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", type=Path, nargs="+", help="speed.json files")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.reports]
    sources = [f"`{path}` ({report['environment'].get('command', '?')} at "
               f"{str(report['environment'].get('git_commit', '?'))[:7]})"
               for path, report in zip(args.reports, reports)]
    text = markdown(summarise(reports), sources)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
