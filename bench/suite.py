"""Run every selected benchmark under every runner, interleaved by round."""

import datetime
import glob
import os
import platform
import shutil
import sys
import tempfile
from collections import defaultdict

from . import build, measure, memory, micro, report, runners, workloads

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# Workloads whose peak RSS is reported (the whole tracer tree's footprint).
MEMORY_BENCHES = ["true", "py_import", "sqlite_io"]


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _select_benches(only):
    names = {n.strip() for n in (only or "").split(",") if n.strip()}
    known = set(micro.CASES) | {w.name for w in workloads.WORKLOADS} | {"micro", "workloads"}
    if names - known:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(names - known))}; "
                         f"known: {', '.join(sorted(known))}")
    if not names:
        return list(micro.CASES), workloads.WORKLOADS
    cases = [c for c in micro.CASES if c in names or "micro" in names]
    wls = [w for w in workloads.WORKLOADS if w.name in names or "workloads" in names]
    return cases, wls


def run(opts):
    cases, wls = _select_benches(opts.only)
    built, build_errors = build.build_all()
    for name, err in build_errors.items():
        _log(f"build {name}: {err}")
    if "launch" not in built:
        raise SystemExit("cannot run anything: bench/c/launch.c did not build")
    if cases and not {"micro", "tiny"} <= built.keys():
        _log("microbenchmarks skipped: their C programs did not build")
        cases = []

    # Inputs here (readable by every runner); outputs at /tmp/<same name>*.
    workdir = tempfile.mkdtemp(prefix="sentry-bench-", dir="/var/tmp")
    out = os.path.join("/tmp", os.path.basename(workdir))
    try:
        workloads.setup(workdir)
        micro.setup(workdir)
        chosen = runners.select(runners.all_runners(built, opts.sentry_python, opts.sentry_base), opts.runners)
        # every sentry runner's run is a new interpreter: its modules compiled first
        sentries = {r.name for r in chosen if r.name.startswith("sentry")}
        if sentries - {"sentry-py", "sentry-base"}:
            runners.byte_compile(None, runners.REPO_ROOT)
        if "sentry-py" in sentries:
            runners.byte_compile(opts.sentry_python, runners.REPO_ROOT)
        if "sentry-base" in sentries:
            runners.byte_compile(None, opts.sentry_base)
        for r in chosen:
            runners.probe(r, built["launch"], workdir)
            _log(f"runner {r.name}: " + ("ok" if r.available else f"unavailable ({r.reason})"))
        active = [r for r in chosen if r.available]
        cpu = opts.cpu if opts.cpu is not None else (1 if (os.cpu_count() or 1) > 1 else 0)
        modes = {"pinned": cpu, "unpinned": None}
        samples, errors = _time_rounds(opts, cases, wls, active, modes, built, workdir, out)
        mem_wls = [w for w in wls if w.name in MEMORY_BENCHES]
        mem = _memory_pass(opts, mem_wls, active, built, workdir, out, errors)
    finally:
        _remove_outputs(out)
        shutil.rmtree(workdir, ignore_errors=True)

    doc = _document(opts, cases, wls, chosen, cpu, modes, samples, mem, mem_wls, errors)
    print(report.render(doc))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for path in report.write(doc, RESULTS_DIR, stamp):
        _log(f"wrote {os.path.relpath(path)}")
    return 0


def _document(opts, cases, wls, chosen, cpu, modes, samples, mem, mem_wls, errors):
    """Everything the report shows, JSON-ready."""
    units = {c: micro.UNIT for c in cases}
    units.update({w.name: "s" for w in wls})
    names = [r.name for r in chosen if r.available]
    return {
        "meta": {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                 "host": f"{platform.node()} {platform.release()} {os.cpu_count()} cpus",
                 "rounds": opts.rounds, "quick": opts.quick, "budget_ms": opts.budget_ms,
                 "pin_note": f"runner and guest on CPU {cpu}, as with taskset -c {cpu}"},
        "modes": list(modes),
        "runners": {r.name: {"available": r.available, "reason": r.reason, "install": r.install,
                             "command": r.prefix} for r in chosen},
        "summary": report.summarize(samples, units, names, modes),
        "memory": report.summarize_memory(mem, [w.name for w in mem_wls], names),
        "errors": [f"{b} under {r} ({m}): {e}" for (m, b, r), e in sorted(errors.items())],
    }


def _remove_outputs(out):
    for path in glob.glob(out + "*"):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def _time_rounds(opts, cases, wls, active, modes, built, workdir, out):
    """Round by round, every bench under every runner and mode in turn, so
    slow drift (thermal, page cache, noisy neighbours) hits all alike."""
    samples, errors = defaultdict(list), {}
    launch = built["launch"]
    micro_cmd = micro.command(built, cases, opts.budget_ms, opts.reps) if cases else None
    for rnd in range(1, opts.rounds + 1):
        if micro_cmd:
            _log(f"round {rnd}/{opts.rounds}: micro")
            for mode, cpu in modes.items():
                for r in active:
                    if (mode, "micro", r.name) in errors:
                        continue
                    res = measure.run(r.command(micro_cmd), launch, workdir, opts.timeout, cpu)
                    got = micro.parse(res.stdout)
                    for case in cases:
                        if case in got:
                            samples[(mode, case, r.name)].append(got[case])
                    if not res.ok:
                        errors[(mode, "micro", r.name)] = res.error
        for w in wls:
            _log(f"round {rnd}/{opts.rounds}: {w.name}")
            for mode, cpu in modes.items():
                for r in active:
                    if (mode, w.name, r.name) in errors:
                        continue  # failed once: don't spend more time on it
                    _remove_outputs(out)
                    res = measure.run(r.command(w.argv(workdir, out)), launch, workdir,
                                      opts.timeout, cpu)
                    if res.ok:
                        samples[(mode, w.name, r.name)].append(res.wall_s)
                    else:
                        errors[(mode, w.name, r.name)] = res.error
    return samples, errors


def _memory_pass(opts, wls, active, built, workdir, out, errors):
    """Untimed, unpinned runs that sample the tree's memory (sampling would
    perturb the timed rounds).  Returns {(bench, runner): [(pss, rss)]}."""
    mem = defaultdict(list)
    for rnd in range(1, min(opts.rounds, 3) + 1):
        for w in wls:
            _log(f"memory {rnd}: {w.name}")
            for r in active:
                if ("unpinned", w.name, r.name) in errors:
                    continue
                sampler = memory.PeakSampler()
                _remove_outputs(out)
                res = measure.run(r.command(w.argv(workdir, out)), built["launch"], workdir,
                                  opts.timeout, poll=sampler)
                if res.ok:
                    mem[(w.name, r.name)].append((sampler.peak_kb, res.maxrss_kb))
    return mem
