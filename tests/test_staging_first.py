"""A new image has no staging area until the Sentry maps one (platform/
staging.py).  When the C fast path would have answered a call but for the
area, C maps it itself (native/tracer.c map_staging: the exec stop gave the
image's thread its slot) or, for a thread without a slot, says so
(SN_STAGING_FIRST) and Python maps the area at once (Kernel.dispatch)
instead of running the handler, which would walk the same path only to find
it needs the slot too; the call runs again and C answers it.  The race of a new image's first opens against a
directory swapped for a symlink out is test_escape's
test_directory_symlink_swap_race[fresh].  execve asks for its slot before
anything else (syscalls/exec.py), so that where the area is missing the
rerun is the only lookup: its answers, errors too, are as before."""
import os
import re
import shutil
import subprocess
import sys

from conftest import sentry_run, shown_copy

COUNT = 20
SCRIPT = f"for i in $(seq {COUNT}); do cat /etc/os-release; done"


def test_first_open_of_a_new_image_maps_staging_without_the_handler():
    native = subprocess.run(["/bin/sh", "-c", SCRIPT], capture_output=True, timeout=60)
    r = subprocess.run([sys.executable, "-m", "sentry", "--debug", "run", "--", "/bin/sh", "-c", SCRIPT],
                       capture_output=True, timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 0 and r.stdout == native.stdout and native.stdout, err[-2000:]
    by_python = int(re.search(r"'staging_first': (\d+)", err).group(1))
    by_c = int(re.search(r"'staging_in_c': (\d+)", err).group(1))
    stops, python = map(int, re.search(r"[ ;,]openat (\d+)/(\d+)", err).groups())
    # every cat's loader opens a file first: C maps the area for it (the
    # exec gave the thread its slot) and answers it
    assert by_c >= COUNT, err[-2000:]
    assert python - by_python <= 2 and stops >= 3 * COUNT, err[-2000:]


def test_exec_as_a_process_first_staged_call(cbin, outside_tmp):
    """The children of a static program that never staged a call exec (a
    program, a missing path, a file without x, a directory, a bad argv): as
    natively, through Python's handler and through C."""
    prog = shown_copy(cbin, outside_tmp, "exec_first")
    plain = os.path.join(outside_tmp, "plain-file")
    with open(plain, "w") as f:
        f.write("not a program\n")
    args = [prog, shutil.which("echo"), os.path.join(outside_tmp, "missing"), plain, outside_tmp]
    native = subprocess.run(args, capture_output=True, timeout=60)
    assert native.returncode == 0 and b"from-exec-first" in native.stdout and b"EFAULT" in native.stdout
    for fast in (True, False):
        r = sentry_run(["--"] + args, fast=fast)
        assert r.returncode == 0 and r.stdout == native.stdout, (fast, r.stdout, r.stderr.decode()[-2000:])


def test_a_guest_mapping_in_the_staging_areas_place_kills_the_task(cbin, outside_tmp):
    """A new image that puts a mapping of its own at the area's address
    before its first staged call: C's mmap of the area fails, the call goes
    to Python, whose mmap fails too, and the task is killed (it would have
    staged into memory it writes) -- as with Python alone (--strace)."""
    prog = shown_copy(cbin, outside_tmp, "staging_squat")
    native = subprocess.run([prog], capture_output=True, timeout=60)
    assert native.stdout == b"hint honoured\nopen worked\n"
    for fast in (True, False):
        r = sentry_run(["--", prog], fast=fast)
        err = r.stderr.decode()
        assert r.returncode == 128 + 9 and r.stdout == b"hint honoured\n", (fast, r.stdout, err[-2000:])
        assert "cannot map the staging area" in err, err[-2000:]
