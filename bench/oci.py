"""python3 -m bench.oci: the OCI runtime's own costs, sentry beside runc and
runsc in one run (interleaved rounds, medians):

- podman: `podman --runtime R run --rm IMAGE true`, wall clock (what a user
  waits for; podman's own work included, the same for every runtime);
- cycle: `R create`, `R start`, `R delete --force` of a busybox bundle whose
  process is `true`, each command's wall clock and their sum.

The podman set-up is bench/podmanenv.py's (also the tests'); runsc runs with
--network=none (the only network it has on these VMs), under podman through
--runtime-flag."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from . import podmanenv, runners


def _runtimes(top, python, others):
    out = {}
    for name in ("runc", "runsc"):
        path = shutil.which(name)
        if path:
            out[name] = ([path] + (["--network=none"] if name == "runsc" else []),
                         ["--runtime-flag", "network=none"] if name == "runsc" else [])
    out["sentry"] = ([podmanenv.runtime_wrapper(top, python)], [])
    for name, repo in others:
        out[name] = ([podmanenv.runtime_wrapper(top, python, repo, subdir=name)], [])
    return out


def _bundle(top, rootfs):
    b = os.path.join(top, "bundle")
    os.makedirs(b)
    spec = {"ociVersion": "1.0.2",
            "process": {"args": ["true"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
            "root": {"path": rootfs, "readonly": True}, "hostname": "bench",
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]}}
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(spec, f)
    return b


def _timed(argv, cwd):
    # files, not pipes: the container keeps create's stdio, and a pipe's
    # reader would wait for the container's end
    with tempfile.TemporaryFile() as err:
        t = time.monotonic()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=120,
                           cwd=cwd)
        took = time.monotonic() - t
        if r.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)}: {err.read().decode(errors='replace').strip()}")
    return took


def _cycle(cmd, root, bundle, n):
    cid = f"bench{n}"
    base = cmd[:1] + ["--root", root] + cmd[1:]
    # run outside any checkout: `python -m sentry` imports from its cwd first
    return (_timed(base + ["create", "--bundle", bundle, cid], bundle), _timed(base + ["start", cid], bundle),
            _timed(base + ["delete", "--force", cid], bundle))


def run(rounds, python, others=()):
    for repo in [podmanenv.REPO_ROOT] + [r for _, r in others]:
        runners.byte_compile(python, repo)
    top = tempfile.mkdtemp(prefix="sentry-bench-oci-", dir="/var/tmp")
    try:
        rootfs = podmanenv.busybox_rootfs(os.path.join(top, "rootfs"))
        rts = _runtimes(top, python, others)
        podman = podmanenv.make(top, rts["sentry"][0][0], rootfs)
        bundle = _bundle(top, rootfs)
        times = {name: {"podman": [], "create": [], "start": [], "delete": [], "cycle": []} for name in rts}
        for n in range(rounds + 1):         # round 0 warms caches and is dropped
            for name, (cmd, flags) in rts.items():
                t = time.monotonic()
                r = podman(*flags, "run", "--rm", podmanenv.IMAGE, "true", runtime=cmd[0], cwd=top)
                wall = time.monotonic() - t
                if r.returncode != 0:
                    raise RuntimeError(f"podman --runtime {name}: {r.stderr.strip()}")
                c = _cycle(cmd, os.path.join(top, "state-" + name), bundle, n)
                if n:
                    row = times[name]
                    row["podman"].append(wall)
                    for k, v in zip(("create", "start", "delete"), c):
                        row[k].append(v)
                    row["cycle"].append(sum(c))
        return {name: {k: statistics.median(v) for k, v in row.items()} for name, row in times.items()}
    finally:
        subprocess.run(["podman", "rm", "-a", "-f"], env=podmanenv.Podman(top, "runc").env, capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def report(med):
    base = med.get("runc")
    cols = ("podman", "cycle", "create", "start", "delete")
    lines = ["| runtime | " + " | ".join(f"{c} (ms)" for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for name, row in med.items():
        cells = []
        for c in cols:
            cell = f"{row[c] * 1000:.0f}"
            if base and name != "runc":
                cell += f" ({row[c] / base[c]:.2f}x)"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m bench.oci", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--sentry-python", metavar="PYTHON",
                   help="the interpreter sentry runs with (default: this one); e.g. a venv of the "
                        "distribution's python3 with sentry installed, without a development "
                        "interpreter's site hooks")
    p.add_argument("--also", metavar="NAME=CHECKOUT", action="append", default=[],
                   help="another checkout's sentry beside this one's, as runtime NAME (a commit "
                        "before a change: `git archive C | tar -x -C DIR`, its native/ built there)")
    opts = p.parse_args(argv)
    others = [tuple(a.split("=", 1)) for a in opts.also]
    print(report(run(opts.rounds, opts.sentry_python, others)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
