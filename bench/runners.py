"""The runners compared side by side, and whether each works here.

A runner is a command prefix: the guest command is appended to it.  A
runner that is missing or fails on /bin/true is reported as unavailable
(with the line that installs it), never as a failed benchmark.
"""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from . import measure

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def _sentry(build_dir, name, python, checkout):
    """The `sentry` command as scripts/setup installs it, for a checkout and
    an interpreter: sentry/launcher.py's script (the interpreter isolated,
    without its site hooks, the module path frozen), written into the build
    dir and run as its #! line runs it.  No PYTHONPATH: that would leak into
    the guest and give sentry's python workloads extra (trapped) path
    lookups the other runners don't pay."""
    sys.path.insert(0, REPO_ROOT)
    try:
        from sentry import launcher
    finally:
        sys.path.remove(REPO_ROOT)
    python = os.path.abspath(python)
    path = os.path.join(build_dir, f"{name}-command")
    with open(path, "w") as f:
        f.write(launcher.script(python, checkout))
    return [python, "-IS", path]


@dataclass
class Runner:
    name: str
    prefix: list
    install: str = ""  # how to get it when unavailable
    available: bool = False
    reason: str = ""  # why unavailable
    notes: list = field(default_factory=list)

    def command(self, argv):
        return self.prefix + list(argv)


def _runsc(platform):
    root = [] if os.geteuid() == 0 else ["--rootless"]
    return Runner(f"runsc-{platform}",
                  ["runsc"] + root + ["--network=none", f"--platform={platform}", "do"],
                  "apt-get install runsc")


def floor_allow_file(build_dir):
    """The floor traps what sentry traps: the calls sentry's table allows in
    BPF (unconditionally or under an argument check) are allowed outright,
    so the floor stays a lower bound for sentry's own filter."""
    sys.path.insert(0, REPO_ROOT)
    try:
        from syscalls.table import build_table
    except Exception:
        return None
    finally:
        sys.path.remove(REPO_ROOT)
    path = os.path.join(build_dir, "floor-allow.txt")
    with open(path, "w") as f:
        for e in build_table().entries.values():
            if e.outcome in ("allow", "allow-if"):
                f.write(e.name + "\n")
    return path


# The default root hides /root and /home (sentry/fsimpl/hidden.py), where a
# pyenv or virtualenv interpreter the workloads run may live.
_EXPOSE_PY = ["--expose", os.path.realpath(sys.base_prefix)]


def byte_compile(python, repo):
    """Byte-compile a checkout's sentry as an installation has it: every run
    is a new interpreter, and a module without its .pyc (PYTHONDONTWRITEBYTECODE
    set, as on these machines) is compiled again at every import (a run of
    /bin/true took ~400 ms instead of ~100 that way)."""
    for d in ("sentry", "syscalls"):
        subprocess.run([python or sys.executable, "-m", "compileall", "-q", os.path.join(repo, d)],
                       check=True, stdout=subprocess.DEVNULL,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})


def all_runners(built, sentry_python=None, sentry_base=None):
    """Every runner the suite knows, in report order; built maps C targets.
    sentry_python: another interpreter for sentry, as the runner sentry-py.
    sentry_base: another checkout of sentry (built), as the runner
    sentry-base: before and after a change, in one run."""
    floor = built.get("floor_tracer")
    allow = floor_allow_file(os.path.dirname(floor)) if floor else None
    floor_prefix = ([floor] + (["--allow-file", allow] if allow else []) + ["--"]) if floor else []
    build_dir = os.path.dirname(built["launch"])
    here = _sentry(build_dir, "sentry", sys.executable, REPO_ROOT)
    return [
        Runner("native", []),
        Runner("sentry", [*here, "run", *_EXPOSE_PY, "--"],
               "pip install -e . (in the repo; sentry must import and run /bin/true)"),
        # the host's / as a rootfs written in place, beside the default
        # root's overlay: what the overlay itself costs
        # sentry started by another interpreter (a venv of the distribution's
        # python3): the start-up users see, without a development build's site hooks
        *([Runner("sentry-py", [*_sentry(build_dir, "sentry-py", sentry_python, REPO_ROOT), "run", *_EXPOSE_PY, "--"],
                  "--sentry-python: an interpreter with sentry's dependencies (python3 -m venv V && "
                  "V/bin/pip install -e .)")] if sentry_python else []),
        *([Runner("sentry-base", [*_sentry(build_dir, "sentry-base", sys.executable, os.path.realpath(sentry_base)), "run",
                                  *_EXPOSE_PY, "--"],
                  "--sentry-base: a checkout with its native module built")] if sentry_base else []),
        Runner("sentry-rootfs", [*here, "run", "--rootfs", "/", "--"],
               "pip install -e . (in the repo; sentry must import and run /bin/true)"),
        # the plain micro cases work under /tmp: here a sized tmpfs the kernel
        # keeps (the private mount namespace's), where the default root has a
        # private host directory
        Runner("sentry-tmpfs", [*here, "run", *_EXPOSE_PY,
                                "--mount", "type=tmpfs,dst=/tmp,size=1g", "--"],
               "pip install -e . (in the repo; sentry must import and run /bin/true)"),
        Runner("floor", floor_prefix,
               "apt-get install gcc libseccomp-dev"),
        Runner("strace", ["strace", "-f", "-o", "/dev/null"], "apt-get install strace"),
        Runner("proot", ["proot", "-r", "/"], "apt-get install proot"),
        Runner("bwrap", ["bwrap", "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc"],
               "apt-get install bubblewrap"),
        _runsc("ptrace"),
        _runsc("systrap"),
    ]


def probe(runner, launcher, cwd, timeout=60.0):
    """Mark runner available if it exists and runs /bin/true cleanly."""
    if runner.name != "native":
        if not runner.prefix:
            runner.reason = "not built"
            return runner
        exe = runner.prefix[0]
        if shutil.which(exe) is None and not os.access(exe, os.X_OK):
            runner.reason = f"{exe} not installed"
            return runner
    if runner.name.startswith("sentry"):
        check = f"import sys; sys.path.insert(0, {REPO_ROOT!r}); import sentry"
        r = measure.run([runner.prefix[0], "-c", check], launcher, cwd=cwd, timeout=timeout)
        if not r.ok:
            runner.reason = "cannot import sentry: " + r.error
            return runner
    r = measure.run(runner.command(["/bin/true"]), launcher, cwd=cwd, timeout=timeout)
    if r.ok:
        runner.available = True
        runner.reason = ""
    else:
        runner.reason = "fails on /bin/true: " + r.error
        if runner.name == "runsc-systrap" and "unknown platform" in r.error:
            runner.reason = "this runsc has no systrap platform (added in 2023 releases)"
            runner.install = "install a runsc release from 2023 or later (Debian 12 ships 20221219)"
    return runner


def select(runners, names):
    """Keep the runners named (comma list); native always stays, as the baseline."""
    if not names:
        return runners
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    unknown = wanted - {r.name for r in runners}
    if unknown:
        raise SystemExit(f"unknown runner(s): {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(r.name for r in runners)}")
    return [r for r in runners if r.name in wanted or r.name == "native"]
