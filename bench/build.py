"""Compile the suite's C programs into an ignored build directory."""

import os
import subprocess
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_DIR = os.path.join(HERE, "results", "build")


@dataclass
class Target:
    name: str
    sources: list
    flags: list
    hint: str  # the install line that fixes a failed build


TARGETS = [
    Target("launch", ["c/launch.c"], ["-O2"], "apt-get install gcc"),
    Target("micro", ["c/micro.c"], ["-O2"], "apt-get install gcc"),
    # Static, so fork_exec_wait measures exec, not ld.so's file lookups.
    Target("tiny", ["c/tiny.c"], ["-O2", "-static"], "apt-get install gcc libc6-dev"),
    Target("floor_tracer", ["floor/floor_tracer.c"], ["-O2", "-lseccomp"],
           "apt-get install gcc libseccomp-dev"),
]


def _stale(out, sources):
    if not os.path.exists(out):
        return True
    mtime = os.path.getmtime(out)
    return any(os.path.getmtime(s) > mtime for s in sources)


def build_all(build_dir=BUILD_DIR):
    """Return {name: path} for built targets and {name: error} for failures.

    A failed target only disables what needs it (e.g. the floor runner),
    so the rest of the suite still runs.
    """
    os.makedirs(build_dir, exist_ok=True)
    built, errors = {}, {}
    for t in TARGETS:
        out = os.path.join(build_dir, t.name)
        sources = [os.path.join(HERE, s) for s in t.sources]
        if _stale(out, sources):
            # Link flags (-l...) must follow the sources.
            cmd = ["gcc", "-Wall", "-o", out] + sources + t.flags
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True)
            except FileNotFoundError:
                errors[t.name] = f"gcc not found ({t.hint})"
                continue
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                errors[t.name] = f"build failed: {last} ({t.hint})"
                continue
        built[t.name] = out
    return built, errors
