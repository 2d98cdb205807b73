"""python3 -m bench: compare sentry with native and other sandboxes."""

import argparse
import sys

from . import suite


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="few rounds and short per-case budgets (smoke test)")
    p.add_argument("--only", metavar="NAME,...",
                   help="benchmarks to run: micro case or workload names, or 'micro'/'workloads'")
    p.add_argument("--runners", metavar="NAME,...",
                   help="runners to compare (native is always included as the baseline)")
    p.add_argument("--rounds", type=int, help="interleaved rounds per figure (default 5, quick 3)")
    p.add_argument("--budget-ms", type=float,
                   help="time per microbenchmark case per process (default 200, quick 30)")
    p.add_argument("--reps", type=int, default=3, help="timed batches per case; median is kept")
    p.add_argument("--cpu", type=int, help="CPU for the pinned figures (default 1)")
    p.add_argument("--timeout", type=float, default=600, help="seconds before one run is killed")
    p.add_argument("--sentry-python", metavar="PYTHON",
                   help="also run sentry (default root) with this interpreter, as the runner "
                        "sentry-py: e.g. a venv of the distribution's /usr/bin/python3 with sentry "
                        "installed, whose start-up is what users see (the `true` workload)")
    p.add_argument("--sentry-base", metavar="DIR",
                   help="also run sentry from the checkout DIR (its native module built), as the "
                        "runner sentry-base: figures before and after a change from one run, e.g. "
                        "git archive main | tar -x -C DIR && (cd DIR && python3 setup.py build_ext --inplace)")
    opts = p.parse_args(argv)
    if opts.rounds is None:
        opts.rounds = 3 if opts.quick else 5
    if opts.budget_ms is None:
        opts.budget_ms = 30 if opts.quick else 200
    return suite.run(opts)


if __name__ == "__main__":
    sys.exit(main())
