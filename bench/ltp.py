"""Run Linux Test Project (LTP) syscall tests natively and inside sentry.

    python3 -m bench.ltp [--ltp-root /opt/ltp] [--list FILE] [--timeout SEC]
                         [--out DIR] [--only native|sentry] [--sentry CMD] [--gaps FILE]

The list is in LTP runtest format (``name command args``); by default it is
``../shared/ltp/public.txt`` next to this checkout.  Every test runs once per
runner, each in a fresh TMPDIR, and gets one of PASS FAIL CONF BROK TIMEOUT.
Results go to OUT/native.tsv and OUT/sentry.tsv (``name<TAB>RESULT<TAB>secs``),
the combined output of each run to OUT/logs/<runner>/<name>.log, and the
summary (also printed) to OUT/summary.txt, where each differing test gets its
known cause from bench/ltp-gaps.txt and those no cause explains are listed.

The native run is root on this machine: a test killed at its timeout does not
put back what it changed (the clock, sysctls, mounts, loop devices), so a
native run refuses a timeout below NATIVE_MIN_TIMEOUT.

LTP itself is not part of this repository; build it separately (see
../shared/ltp/README.md) and point --ltp-root at its install prefix.
"""

import argparse
import gzip
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_LIST = REPO.parent / "shared" / "ltp" / "public.txt"
DEFAULT_OUT = REPO / "bench" / "results" / "ltp"
DEFAULT_GAPS = REPO / "bench" / "ltp-gaps.txt"
NATIVE_MIN_TIMEOUT = 60     # seconds: LTP's own per-test limits are about this
RUNNERS = ("native", "sentry")

# LTP exit codes are bit flags (new library ORs them together; old library
# uses the same values): TFAIL=1, TBROK=2, TWARN=4, TCONF=32.
TFAIL, TBROK, TWARN, TCONF = 1, 2, 4, 32

# Worst first: when two sources of evidence disagree the worse one wins.
SEVERITY = ["TIMEOUT", "BROK", "FAIL", "CONF", "PASS"]

# New-library tests end with "Summary:" followed by these counters.
SUMMARY_RE = re.compile(r"^(passed|failed|broken|skipped|warnings)\s+(\d+)\s*$", re.M)
# Old-library tests print one "name  N  TPASS  :  msg" line per check instead.
OLDSTYLE_RE = re.compile(r"\bT(PASS|FAIL|BROK|CONF|WARN)\b")


def read_list(path):
    """Parse a runtest file into [(name, shell command)]."""
    tests = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)          # runtest files separate with tabs too
        name, cmd = parts[0], parts[1] if len(parts) > 1 else ""
        tests.append((name, cmd.strip() or name))
    return tests


def status_from_counts(passed, failed, broken, skipped, warnings):
    if broken:
        return "BROK"
    # A warning means the test (usually its cleanup) misbehaved; natively
    # these tests have none, so under the sandbox it is a divergence to see.
    if failed or warnings:
        return "FAIL"
    if passed:
        return "PASS"
    if skipped:
        return "CONF"
    return None  # printed nothing countable


def status_from_output(out):
    """Status from the test's own report, or None if it printed none."""
    found = dict((k, int(v)) for k, v in SUMMARY_RE.findall(out))  # last wins
    if found:
        return status_from_counts(found.get("passed", 0), found.get("failed", 0),
                                  found.get("broken", 0), found.get("skipped", 0),
                                  found.get("warnings", 0))
    tags = OLDSTYLE_RE.findall(out)
    return status_from_counts(tags.count("PASS"), tags.count("FAIL"),
                              tags.count("BROK"), tags.count("CONF"),
                              tags.count("WARN"))


def status_from_exit(rc):
    if rc == 0:
        return "PASS"
    if rc < 0 or rc & ~(TFAIL | TBROK | TWARN | TCONF):
        return "BROK"  # killed by a signal, or not an LTP code (127, 139...)
    if rc & TBROK:
        return "BROK"
    if rc & (TFAIL | TWARN):
        return "FAIL"
    return "CONF"


def classify(out, rc):
    """The summary is the primary evidence; the exit code can only make it
    worse (e.g. a crash after the summary, or a launcher that lost the code)."""
    by_exit = status_from_exit(rc)
    by_out = status_from_output(out)
    if by_out is None:
        # A test that fails says what failed; a nonzero exit with no report
        # means it never ran (launcher error, crash during startup).
        return by_exit if rc == 0 else "BROK"
    return min(by_out, by_exit, key=SEVERITY.index)


def run_one(argv, env, timeout, log_path):
    """Run argv with a timeout; return (result, seconds)."""
    tmpdir = tempfile.mkdtemp(prefix="ltp-")
    env = dict(env, TMPDIR=tmpdir)
    start = time.monotonic()
    # Output goes to a file, not a pipe: a leftover grandchild holding the
    # pipe open would otherwise block us after the timeout kill.
    with open(log_path, "w+b") as log:
        # A new session gives the test its own process group, so a timeout
        # kills every process it forked, not just the top one.
        proc = subprocess.Popen(argv, env=env, cwd=tmpdir, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # also reap stragglers
        except ProcessLookupError:
            pass
        proc.wait()
        secs = time.monotonic() - start
        log.seek(0)
        out = log.read().decode("utf-8", "replace")
    shutil.rmtree(tmpdir, ignore_errors=True)
    return ("TIMEOUT" if timed_out else classify(out, rc)), secs


def run_all(runner, tests, prefix, env, timeout, out_dir):
    logs = out_dir / "logs" / runner
    logs.mkdir(parents=True, exist_ok=True)
    results = {}
    with open(out_dir / f"{runner}.tsv", "w") as tsv:
        for i, (name, cmd) in enumerate(tests, 1):
            if runner == "native":
                argv = ["/bin/sh", "-c", cmd]
            else:
                # New-style LTP tests refuse to run as pid 1, so the test is
                # a child of a shell; "; exit $?" stops the shell from exec'ing
                # the last command in place of itself.
                # the sandbox's /tmp is its own: the test's TMPDIR is made inside
                argv = prefix + ["/bin/sh", "-c",
                                 f'mkdir -p "$TMPDIR" && cd "$TMPDIR" && {{ {cmd}; }}; exit $?']
            res, secs = run_one(argv, env, timeout, logs / f"{name}.log")
            results[name] = res
            tsv.write(f"{name}\t{res}\t{secs:.2f}\n")
            tsv.flush()  # partial results survive an interrupted run
            print(f"[{i}/{len(tests)}] {runner} {name} {res} {secs:.2f}s", flush=True)
    return results


def read_tsv(path):
    if not path.exists():
        return None
    return dict(line.split("\t")[:2] for line in path.read_text().splitlines() if line)


def summary(runner, results):
    n = {s: 0 for s in SEVERITY}
    for res in results.values():
        n[res] += 1
    # "failed" is everything that neither passed nor was inapplicable, so
    # passed + failed + conf adds up to the number of tests.
    failed = n["FAIL"] + n["BROK"] + n["TIMEOUT"]
    return [f"{runner}: {n['PASS']} passed, {failed} failed",
            f"  ({runner}: {n['CONF']} conf, {n['FAIL']} fail, {n['BROK']} brok, "
            f"{n['TIMEOUT']} timeout, of {len(results)})"]


def read_gaps(path):
    """test -> cause, from the known gaps file (`[cause] why`, then names)."""
    gaps, cause = {}, None
    if not path.exists():
        return gaps
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("["):
            cause = line[1:line.index("]")]
            continue
        for name in line.split():
            gaps[name] = cause
    return gaps


def diff_table(native, sentry, order, gaps):
    """The tests whose results differ, each with its known cause; then
    those that pass natively but not in sentry and no cause explains, and
    the known gaps that pass now (the file is out of date)."""
    rows = [(t, native.get(t, "-"), sentry.get(t, "-")) for t in order
            if native.get(t) != sentry.get(t)]
    if not rows:
        return ["no differences between native and sentry"]
    width = max(len(t) for t, _, _ in rows + [("test", 0, 0)])
    lines = [f"{'test':<{width}}  {'native':<8} {'sentry':<8} known cause"]
    lines += [f"{t:<{width}}  {a:<8} {b:<8} {gaps.get(t, '')}" for t, a, b in rows]
    unexplained = [t for t, a, b in rows if a == "PASS" and t not in gaps]
    fixed = [t for t in order if t in gaps and sentry.get(t) == "PASS"]
    lines += ["", f"known gaps ({DEFAULT_GAPS.name}): {sum(1 for t, a, _ in rows if a == 'PASS' and t in gaps)}; "
              f"unexplained: {len(unexplained)}" + (f" ({' '.join(unexplained)})" if unexplained else "")]
    if fixed:
        lines.append(f"listed as gaps but passing now: {' '.join(fixed)}")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m bench.ltp", description=__doc__.split("\n")[0])
    ap.add_argument("--ltp-root", default="/opt/ltp", help="LTP install prefix")
    ap.add_argument("--list", default=str(DEFAULT_LIST), help="runtest-format test list")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per test run")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="results directory")
    ap.add_argument("--only", choices=RUNNERS, help="run only this runner")
    ap.add_argument("--gaps", default=str(DEFAULT_GAPS), help="the known gaps, by cause")
    ap.add_argument("--sentry", default=f"{shlex.quote(sys.executable)} -m sentry run --",
                    help="launcher prefix for the sandboxed run")
    args = ap.parse_args(argv)

    ltp_root = Path(args.ltp_root).resolve()
    bindir = ltp_root / "testcases" / "bin"
    if not bindir.is_dir():
        print(f"LTP not installed at {ltp_root} (no testcases/bin); skipping")
        return 0
    if not Path(args.list).is_file():
        print(f"test list {args.list} not found")
        return 2

    if args.only != "sentry" and args.timeout < NATIVE_MIN_TIMEOUT:
        print(f"--timeout {args.timeout:g}: a native run needs {NATIVE_MIN_TIMEOUT} s at least (a test killed "
              "early leaves the host's clock, sysctls or mounts changed); use --only sentry for shorter")
        return 2
    tests = read_list(args.list)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, LTPROOT=str(ltp_root),
               PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    # Tests run with cwd=TMPDIR, so "-m sentry" must find the package via
    # PYTHONPATH rather than the current directory.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    # Tests that check kernel options (clone301, eventfd01, ...) read
    # /proc/config.gz, which a sandbox need not provide; hand them a plain
    # copy of the host's via KCONFIG_PATH unless the caller chose one.
    host_config = Path("/proc/config.gz")
    if "KCONFIG_PATH" not in env and host_config.exists():
        # beside LTP, not in --out: a sandbox's /tmp is its own, where an
        # --out under /tmp would not be seen
        kconfig = Path(ltp_root) / "kernel.config"
        kconfig.write_bytes(gzip.decompress(host_config.read_bytes()))
        env["KCONFIG_PATH"] = str(kconfig.resolve())
    prefix = shlex.split(args.sentry)

    runners = [args.only] if args.only else list(RUNNERS)
    results = {}
    for runner in runners:
        results[runner] = run_all(runner, tests, prefix, env, args.timeout, out_dir)
    # With --only, compare against the other runner's last results if any.
    for runner in RUNNERS:
        if runner not in results:
            old = read_tsv(out_dir / f"{runner}.tsv")
            if old is not None:
                results[runner] = {n: old[n] for n, _ in tests if n in old}

    lines = []
    for runner in RUNNERS:
        if runner in results:
            lines += summary(runner, results[runner])
    if len(results) == 2:
        lines += [""] + diff_table(results["native"], results["sentry"],
                                   [name for name, _ in tests], read_gaps(Path(args.gaps)))
    text = "\n".join(lines)
    print(text)
    (out_dir / "summary.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
