"""The per-process stops C serves once Python has seen the fork
(native/identity.c): the child's first stop (its tid written where it asked
with CLONE_CHILD_SETTID, then it runs), the parent's SIGCHLD delivery (the
siginfo's si_pid, si_uid and CLD_DUMPED as kernel/siginfo.py gives them)
and its wait4 of that one child (its pid given as the host's, the guest's
register back, the result the sandbox's, as syscalls/process.py does).  Against Linux and against Python's handling (--strace turns every C
answer off), counted with --debug, and raced: children of two threads that
end at once, where no SIGCHLD may name a host pid.  A clone3 child's first
stop (its rdi and rsi given back: the kernel started it on the staging copy's
address) is C's too, checked with conf_clone3's transcript."""
import re
import subprocess
import sys

import pytest

from conftest import sentry_run, shown_copy

# not the sandbox's init (pid 1 drops what it has no handler for): under sh
UNDER_SH = ["--", "/bin/sh", "-c", '"$0" "$@"; :']


@pytest.fixture(scope="module")
def prog(cbin, outside_tmp):
    return shown_copy(cbin, outside_tmp, "fork_events")


def test_fork_stops_as_python_and_linux(prog):
    native = subprocess.run([prog], capture_output=True, timeout=60)
    assert native.returncode == 0 and native.stdout.count(b"from the child") == 5, native.stdout
    assert b"settid == getpid" in native.stdout and b"uid 4321" in native.stdout
    for fast in (True, False):
        r = sentry_run(UNDER_SH + [prog], fast=fast)
        assert r.returncode == 0 and r.stdout == native.stdout, (fast, r.stdout, r.stderr.decode()[-2000:])


def test_wait4_of_one_child_as_python_and_linux(prog):
    native = subprocess.run([prog, "waits"], capture_output=True, timeout=60)
    assert native.returncode == 0 and native.stdout.count(b"ECHILD") == 4, native.stdout
    assert native.stdout.count(b"rdi kept") == 2, native.stdout
    for fast in (True, False):
        r = sentry_run(UNDER_SH + [prog, "waits"], fast=fast)
        assert r.returncode == 0 and r.stdout == native.stdout, (fast, r.stdout, r.stderr.decode()[-2000:])


def test_core_dumping_child_as_python(prog):
    """CLD_DUMPED where the child's emulated RLIMIT_CORE allows a core (the
    host kernel, which writes none, says CLD_KILLED)."""
    fast = sentry_run(UNDER_SH + [prog, "core"])
    slow = sentry_run(UNDER_SH + [prog, "core"], fast=False)
    assert fast.returncode == 0 and b"code 3, status 6" in fast.stdout, fast.stdout + fast.stderr[-2000:]
    assert fast.stdout == slow.stdout


def _c_stops(prog, *args):
    r = subprocess.run([sys.executable, "-m", "sentry", "--debug", "run"] + UNDER_SH + [prog, *args],
                       capture_output=True, timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 0, err[-2000:]
    return r.stdout.decode(), int(re.search(r"'c_other_stops': (\d+)", err).group(1)), err


def test_fork_stops_are_served_in_c(prog):
    out, c_stops, err = _c_stops(prog)
    # five children: up to ten such stops; a child's first stop that comes
    # before its parent's fork event is Python's
    assert out.count("from the child") == 5 and c_stops >= 5, err[-2000:]
    stops, python = map(int, re.search(r"[ ;,]wait4 (\d+)/(\d+)", err).groups())
    assert stops >= 5 and python == 0, err[-2000:]      # waitpid(child): C's


def test_fork_storm_never_names_a_host_pid(prog):
    """Two threads fork and reap children by name (their own, and older
    ones the other thread may have reaped) and any: no SIGCHLD names a
    host pid or a stranger, and no wait by name returns another child."""
    out, c_stops, err = _c_stops(prog, "storm", "300")
    assert "storm: 600 children, SIGCHLD seen, 0 naming none of them, 0 waits answered with another" in out, \
        out + err[-2000:]
    assert c_stops > 0, err[-2000:]


def test_clone3_child_first_stop_as_python_and_linux(cbin, outside_tmp):
    """conf_clone3 watches rdi and rsi in the child of a raw clone3 and
    makes pthreads: the same transcript natively, with C's first stop and
    with Python's."""
    prog = shown_copy(cbin, outside_tmp, "conf_clone3")
    native = subprocess.run([prog, outside_tmp], capture_output=True, timeout=60)
    assert native.returncode == 0 and b"child kept rdi and rsi (7)" in native.stdout, native.stdout
    for fast in (True, False):
        r = sentry_run(UNDER_SH + [prog, outside_tmp], fast=fast)
        assert r.returncode == 0 and r.stdout == native.stdout, (fast, r.stdout, r.stderr.decode()[-2000:])


def test_clone3_thread_first_stops_are_served_in_c(prog):
    out, c_stops, err = _c_stops(prog, "threads", "100")
    assert "threads: 100 made and joined, sum 4950" in out, out + err[-2000:]
    # a thread's first stop that comes before its parent's clone event is Python's
    assert c_stops >= 50, err[-2000:]
