"""Security issue 9: credentials and limits Linux enforces and the sandbox
must too, each compared with the same program run natively.

The programs run from a world-readable directory under /var/tmp, which the
default root shows, so that natively another uid may run them too.  Native
runs that may change the host's names run in a UTS namespace of their own."""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import HERE, SENTRY, TIMEOUT, run_sentry

UID = 54321                      # a uid no host process runs as (RLIMIT_NPROC counts per uid)
AS_UID = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
OWN_UTS = ["unshare", "--uts"]
PROGRAMS = ("sigsys_child",)


@pytest.fixture(scope="module")
def bins():
    d = tempfile.mkdtemp(dir="/var/tmp", prefix="sentry-creds-")
    os.chmod(d, 0o755)
    try:
        out = {}
        for name in PROGRAMS:
            exe = os.path.join(d, name)
            subprocess.run(["gcc", "-O1", "-static", "-pthread", "-I", os.path.join(HERE, "c"), "-o", exe,
                            os.path.join(HERE, "c", name + ".c")], check=True, capture_output=True)
            out[name] = exe
        yield out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def native(args, **kw):
    return subprocess.run(args, capture_output=True, timeout=TIMEOUT, **kw)


def _no_host_process_of(uid):
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            with open(status) as f:
                for line in f:
                    if line.startswith("Uid:"):
                        assert int(line.split()[1]) != uid, f"a host process runs as uid {uid}: {status}"
        except OSError:
            pass


# ---- 1. a child the filter kills is a SIGSYS death --------------------------

@pytest.mark.parametrize("mode", ["int80", "x32", "thread", "exec"])
def test_a_child_the_filter_kills_dies_of_sigsys(bins, mode):
    """int 0x80 and x32 numbers are KILL_PROCESS in the Sentry's filter.  The
    parent sees what Linux shows for such a death (natively the child loads
    a filter of its own that does the same): SIGCHLD with the child's pid
    and SIGSYS, kill(pid, 0) working on the zombie until it is reaped, a
    wait status with WTERMSIG SIGSYS and no core (no core files: README)."""
    exe = bins["sigsys_child"]
    expected = native([exe, mode, "own-filter"])
    assert expected.returncode == 0 and b"WTERMSIG=SYS" in expected.stdout, expected
    boxed = run_sentry([exe, mode])
    assert boxed.stdout.decode() == expected.stdout.decode(), boxed.stderr.decode()
    assert boxed.returncode == 0
