"""stat, lstat and newfstatat answered by native/fastpath.c from its walk's
own fstat of the file it found: every field the same as Python's handlers
give (--strace turns the fast path off) and as Linux gives, for a file, a
directory, symlinks to each, a name not there and a file named as a
directory, in a host directory bound into the sandbox (so that device and
inode numbers are the host's, comparable with a native run); and the C
path, not Python, answered them."""
import os
import re
import subprocess
import sys

from conftest import sentry_run


def _tree(d):
    os.mkdir(d)
    with open(os.path.join(d, "file"), "w") as f:
        f.write("some bytes\n")
    os.chmod(os.path.join(d, "file"), 0o640)
    os.mkdir(os.path.join(d, "dir"))
    with open(os.path.join(d, "dir", "inner"), "w") as f:
        f.write("x" * 5000)
    os.symlink("file", os.path.join(d, "link-file"))
    os.symlink("dir", os.path.join(d, "link-dir"))


def test_stat_fields_fast_python_and_native(cbin, tmp_path):
    prog = cbin("stat_fields")
    data = str(tmp_path / "data")
    _tree(data)
    native = subprocess.run([prog, data], capture_output=True, timeout=60)
    assert native.returncode == 0, native.stderr
    args = ["--mount", f"type=bind,src={data},dst=/data", "--mount", f"type=bind,src={prog},dst=/stat_fields,ro",
            "--", "/stat_fields", "/data"]
    fast = sentry_run(args)
    slow = sentry_run(args, fast=False)
    assert fast.returncode == 0 and slow.returncode == 0, (fast.stderr, slow.stderr)
    assert fast.stdout == native.stdout, (fast.stdout.decode(), native.stdout.decode())
    assert slow.stdout == native.stdout


def test_stat_is_answered_in_c(cbin, tmp_path):
    """Every newfstatat of the program's (28) is a stop C answered: Python's
    count for it is 0."""
    prog = cbin("stat_fields")
    data = str(tmp_path / "data")
    _tree(data)
    r = subprocess.run([sys.executable, "-m", "sentry", "--debug", "run", "--mount", f"type=bind,src={data},dst=/data",
                        "--mount", f"type=bind,src={prog},dst=/stat_fields,ro", "--", "/stat_fields", "/data"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    counts = re.search(r"newfstatat (\d+)/(\d+)", r.stderr.decode())
    assert counts and int(counts.group(1)) >= 28 and counts.group(2) == "0", r.stderr.decode()[-2000:]
