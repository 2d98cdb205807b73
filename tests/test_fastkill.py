"""The kill family in C (native/identity.c signal_call): kill of a pid > 0,
tkill and tgkill of a live task the Sentry traces, against Python's
handlers (syscalls/signal.py; --strace turns the fast paths off) and
Linux: errors, int arguments with high bits, a thread, a zombie, a reaped
child, a process that dropped root (Python's EPERM), and the guest's
registers given back.  And raced: threads signal a host process's pid and
the names of children that come and go (whose rows stay for zombies and
reaped tasks) with SIGKILL: the host process lives."""
import os
import re
import subprocess
import sys

import pytest

from conftest import sentry_run, shown_copy


@pytest.fixture(scope="module")
def prog(cbin, outside_tmp):
    return shown_copy(cbin, outside_tmp, "fast_kill")


# not the sandbox's init (pid 1 drops what it has no handler for): under sh
UNDER_SH = ["--", "/bin/sh", "-c", '"$0" "$@"; :']


def test_kill_family_as_python_and_linux(prog):
    native = subprocess.run([prog], capture_output=True, timeout=60)
    fast = sentry_run(UNDER_SH + [prog])
    slow = sentry_run(UNDER_SH + [prog], fast=False)
    out = fast.stdout.decode()
    assert native.returncode == 0 and fast.returncode == 0, fast.stderr.decode()
    assert out == native.stdout.decode()
    assert out == slow.stdout.decode()
    assert out.count("rdi kept, rsi kept, rdx kept") == 4, out
    assert "kill(root_child, 0) = -1 EPERM" in out and "zombie: exited 3" in out, out


def _c_and_python(stderr, name):
    """(seccomp stops of syscall `name`, those Python served), from --debug's count."""
    m = re.search(rf"[ ;,]{name} (\d+)/(\d+)", stderr)
    assert m, stderr[-2000:]
    return int(m.group(1)), int(m.group(2))


def test_kill_family_is_answered_in_c(prog):
    r = subprocess.run([sys.executable, "-m", "sentry", "--debug", "run"] + UNDER_SH + [prog, "loop", "500"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0 and b"calls: 1500" in r.stdout, r.stderr.decode()[-2000:]
    err = r.stderr.decode()
    for name in ("kill", "tkill", "tgkill"):
        stops, python = _c_and_python(err, name)
        assert stops >= 500 and python == 0, err[-2000:]


def test_kill_family_race_never_reaches_a_host_process(prog):
    canary = subprocess.Popen(["sleep", "120"])
    try:
        r = subprocess.run([sys.executable, "-m", "sentry", "--debug", "run"] + UNDER_SH
                           + [prog, "race", str(canary.pid), "3"], capture_output=True, timeout=120)
        out, err = r.stdout.decode(), r.stderr.decode()
        assert r.returncode == 0, out + err[-2000:]
        assert "race: host pid signalled" in out, out
        # SIGKILL never reached it.  (The program's own count of calls that
        # succeeded is no proof: the churn makes tens of thousands of pids,
        # and a sandbox pid may be the canary's number, a child of its own.)
        assert canary.poll() is None
        kills, python = _c_and_python(err, "kill")
        assert kills > python, err[-2000:]          # C answered some, to live children
    finally:
        canary.kill()
        canary.wait()
