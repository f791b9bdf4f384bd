"""Command line of the benchmark suite.

Usage::

    python -m benchmarks run --profile quick        # make demo, about 2-3 min
    python -m benchmarks run --profile full         # make bench
    python -m benchmarks run --profile quick --datasets wine digits \\
        --methods pca ae_mlp --n-components 2 --max-iter 5 --output-dir /tmp/b
    python -m benchmarks estimate --profile full    # predicted run time
    python -m benchmarks merge PART... --profile full --output-dir benchmarks/results/full
    python -m benchmarks list                       # datasets, methods, profiles

``run`` prints the summary table (markdown) and the goals to stdout, progress
to stderr, and writes ``results.csv``, ``results.md``, ``goals.md``,
``environment.json`` and PNG plots to ``benchmarks/results/<profile>/``.
"""

import argparse
import shlex
import sys

from .data import DATASET_NAMES
from .methods import METHODS
from .profiles import PROFILES


def _parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the suite and write its results")
    run.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    run.add_argument("--datasets", nargs="+", choices=DATASET_NAMES, metavar="NAME",
                     help=f"subset of: {' '.join(DATASET_NAMES)}")
    run.add_argument("--methods", nargs="+", choices=tuple(METHODS), metavar="NAME",
                     help=f"subset of: {' '.join(METHODS)}")
    run.add_argument("--n-components", nargs="+", type=int, metavar="K")
    run.add_argument("--seeds", nargs="+", type=int, metavar="SEED")
    run.add_argument("--max-iter", type=int, help="epochs of every skae network")
    run.add_argument("--n-threads", type=int, help="threads (default: every core)")
    run.add_argument("--output-dir", help="default: benchmarks/results/<profile>/")
    run.add_argument("--no-plots", action="store_true")

    estimate = commands.add_parser("estimate", help="predict a profile's run time")
    estimate.add_argument("--profile", choices=sorted(PROFILES), default="full")
    estimate.add_argument("--n-threads", type=int, help="threads (default: every core)")

    merge = commands.add_parser("merge", help="merge the results of a run made in parts")
    merge.add_argument("parts", nargs="+", help="output folders of the parts' runs")
    merge.add_argument("--profile", choices=sorted(PROFILES), default="full")
    merge.add_argument("--output-dir", required=True)

    commands.add_parser("list", help="list datasets, methods and profiles")
    return parser


def _command_line(argv):
    return "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "list":
        print("datasets:", " ".join(DATASET_NAMES))
        for name, method in METHODS.items():
            print(f"method {name}: {method.description}")
        for name, profile in PROFILES.items():
            print(f"profile {name}: sizes {profile.n_components}, seeds {profile.seeds}, "
                  f"methods {' '.join(profile.methods)}")
        return 0
    if args.command == "estimate":
        from .estimate import estimate, format_estimate

        print(format_estimate(estimate(args.profile, n_threads=args.n_threads)))
        return 0

    from .report import goals_markdown

    if args.command == "merge":
        from .merge import merge

        results = merge(args.parts, args.profile, args.output_dir, _command_line(argv))
        print(goals_markdown(results.goals, args.profile))
        return 0

    from .suite import run

    results = run(
        args.profile, datasets=args.datasets, methods=args.methods,
        n_components=args.n_components, seeds=args.seeds, max_iter=args.max_iter,
        n_threads=args.n_threads, output_dir=args.output_dir, plots=not args.no_plots,
        command=_command_line(argv),
    )
    print(results.table)
    print()
    print(goals_markdown(results.goals, args.profile))
    print(f"\nWritten to {results.output_dir} in "
          f"{results.environment['wall_seconds']} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
