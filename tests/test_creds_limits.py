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
PROGRAMS = ("sigsys_child", "creds_keepcaps", "nproc_limit", "uts_access")


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


def test_no_guest_core_reaches_the_host():
    """No core file, and nothing for a core_pattern pipe either (systemd-
    coredump, apport): the kernel ignores RLIMIT_CORE 0 for a pipe, not 1.
    The guest's own limit is the sandbox's (emulated)."""
    p = subprocess.Popen(SENTRY + ["--", "/bin/sh", "-c", "ulimit -c unlimited; ulimit -c; read x"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"unlimited\n"
        guests = [t for t in os.listdir("/proc") if t.isdigit() and _tracer_of(t) == p.pid]
        assert guests
        for g in guests:
            with open(f"/proc/{g}/limits") as f:
                assert [l.split()[-3:-1] for l in f if l.startswith("Max core file size")] == [["1", "1"]]
    finally:
        p.communicate(b"\n", timeout=TIMEOUT)


# ---- 2. keep-caps, securebits, the ambient and bounding sets ------------------

def test_keep_caps_and_securebits_as_natively(bins):
    exe = bins["creds_keepcaps"]
    expected = native([exe])
    assert expected.returncode == 0 and b"after setresuid(1000) with keep-caps" in expected.stdout
    boxed = run_sentry([exe])
    assert boxed.stdout.decode() == expected.stdout.decode(), boxed.stderr.decode()


SETPRIV_AMBIENT = AS_UID + ["--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service",
                            "grep", "-E", "^(Uid|Gid|CapInh|CapPrm|CapEff|CapAmb)", "/proc/self/status"]


def test_setpriv_keeps_a_capability_across_setuid(bins):
    """setpriv sets PR_SET_KEEPCAPS, changes uid, raises an ambient
    capability: the program it runs holds it, as natively."""
    expected = native(SETPRIV_AMBIENT)
    assert expected.returncode == 0 and b"CapAmb:\t0000000000000400" in expected.stdout, expected
    boxed = run_sentry(SETPRIV_AMBIENT)
    assert (boxed.stdout, boxed.returncode) == (expected.stdout, 0), boxed.stderr.decode()


def test_setpriv_securebits_as_natively():
    cmd = ["setpriv", "--securebits=+noroot,+no_setuid_fixup,+keep_caps_locked", "setpriv", "--dump"]
    expected = native(cmd)
    assert expected.returncode == 0, expected
    boxed = run_sentry(cmd)

    def lines(out):
        return [l for l in out.decode().splitlines() if l.startswith(("Securebits", "Inheritable", "Ambient", "uid"))]
    assert lines(boxed.stdout) == lines(expected.stdout) and boxed.returncode == 0, boxed.stderr.decode()
    assert "Securebits: noroot,no_setuid_fixup,keep_caps_locked" in lines(boxed.stdout)


# ---- 3. RLIMIT_NPROC ---------------------------------------------------------------

def test_rlimit_nproc_counts_the_tasks_of_a_uid(bins):
    """`ulimit -u 8` as a non-root uid: 7 more forks (the process itself is
    the eighth), no thread past it, a zombie counts until reaped; the guest
    reads its limit back in getrlimit and /proc/self/limits."""
    _no_host_process_of(UID)
    exe = bins["nproc_limit"]
    expected = native(AS_UID + [exe, "forks", "8"])
    assert b"forks: 7 succeeded, then EAGAIN" in expected.stdout, expected
    boxed = run_sentry([exe, "forks", "8"], extra=["--uid", str(UID), "--gid", str(UID)])
    assert boxed.stdout.decode() == expected.stdout.decode(), boxed.stderr.decode()


def test_rlimit_nproc_does_not_hold_root(bins):
    exe = bins["nproc_limit"]
    expected = native([exe, "forks", "8"])
    assert b"forks: 30 succeeded" in expected.stdout, expected
    boxed = run_sentry([exe, "forks", "8"])
    assert boxed.stdout.decode() == expected.stdout.decode(), boxed.stderr.decode()


def test_rlimit_nproc_after_setuid_fails_execve(bins):
    """setuid to a uid over its limit succeeds; the next execve is EAGAIN
    until the uid is back under it (PF_NPROC_EXCEEDED)."""
    _no_host_process_of(UID)
    exe = bins["nproc_limit"]
    expected = native([exe, "setuid", str(UID)])
    assert b"execve: EAGAIN" in expected.stdout, expected
    boxed = run_sentry([exe, "setuid", str(UID)])
    assert boxed.stdout.decode() == expected.stdout.decode(), boxed.stderr.decode()


def test_a_refused_fork_or_thread_leaves_nothing(bins):
    """Past --pids-limit (the same path as RLIMIT_NPROC): fork is EAGAIN
    with no child to wait for and no SIGCHLD; pthread_create is EAGAIN and
    the process goes on (a SIGKILL to the refused thread took it all)."""
    r = run_sentry([bins["nproc_limit"], "refused"], extra=["--pids-limit", "5"])
    assert r.stdout.decode().splitlines() == [
        "forks: 4 then EAGAIN; SIGCHLD 0", "waitpid(-1, WNOHANG) = 0", "SIGCHLD after the real children: yes",
        "waitpid(-1) = -1 ECHILD", "threads: 4 then EAGAIN", "still running"], r.stderr.decode()
    assert r.returncode == 0


# ---- 4. sethostname, access through /proc/<pid>/fd, /proc/sys -------------------

@pytest.mark.parametrize("who", ["root", "user", "real-uid-only"])
def test_uts_names_and_fd_access_as_natively(bins, who):
    exe = bins["uts_access"]
    as_who = {"root": [], "user": AS_UID, "real-uid-only": ["setpriv", f"--ruid={UID}"]}[who]
    expected = native(OWN_UTS + as_who + [exe])
    assert expected.returncode == 0, expected
    if who == "user":          # the sandbox's first process is that user
        boxed = run_sentry([exe], extra=["--uid", str(UID), "--gid", str(UID)])
    else:
        boxed = run_sentry(as_who + [exe])
    assert boxed.stdout.decode() == expected.stdout.decode(), boxed.stderr.decode()
    if who == "user":
        assert b"sethostname(\"box-a\", 5) = -1 EPERM" in boxed.stdout


def test_proc_sys_has_only_what_it_offers():
    script = ("find /proc/sys | sort > /tmp/before; "
              "for n in nope kernel/nope vm/nope fs/nope a/b/c kernel/random/nope net/nope net/ipv4/nope; do "
              "  stat /proc/sys/$n >/dev/null 2>&1 && echo found $n; cat /proc/sys/$n 2>/dev/null; done; "
              "find /proc/sys | sort | diff /tmp/before - && echo unchanged; "
              "cat /proc/sys/kernel/hostname /proc/sys/vm/overcommit_memory >/dev/null && echo readable; "
              "ls /proc/sys")
    r = run_sentry(["/bin/sh", "-c", script])
    assert r.stdout.decode().split() == ["unchanged", "readable", "fs", "kernel", "net", "user", "vm"], \
        r.stderr.decode()


RESCHEDULE = r"""
import os, sys
def show(what, f):
    try:
        f(); print(what, "ok")
    except OSError as e:
        print(what, os.strerror(e.errno))
parent = os.getpid()
r, w = os.pipe()
ready_r, ready_w = os.pipe()
sibling = os.fork()
if sibling == 0:
    os.setresuid(2000, 2000, 2000)
    os.write(ready_w, b"x")
    os.read(r, 1); os._exit(0)
os.read(ready_r, 1)                 # the sibling is uid 2000 now
pid = os.fork()
if pid == 0:
    os.setresgid(2000, 2000, 2000); os.setresuid(2000, 2000, 2000)
    for who, target in (("root's", parent), ("own uid's", sibling)):
        show(f"{who} affinity", lambda: os.sched_setaffinity(target, {0}))
        show(f"{who} param", lambda: os.sched_setparam(target, os.sched_param(0)))
        show(f"{who} scheduler", lambda: os.sched_setscheduler(target, os.SCHED_OTHER, os.sched_param(0)))
        show(f"{who} priority", lambda: os.setpriority(os.PRIO_PROCESS, target, 5))
        show(f"{who} reads", lambda: (os.sched_getaffinity(target), os.getpriority(os.PRIO_PROCESS, target)))
    os._exit(0)
os.waitpid(pid, 0)
os.write(w, b"x"); os.waitpid(sibling, 0)
"""


def test_rescheduling_another_users_process_is_eperm():
    """sched_setaffinity, sched_setparam, sched_setscheduler and setpriority
    on a process of another user without CAP_SYS_NICE: EPERM, by the
    emulated ids (the host sees one uid for every guest); on one of the
    caller's uid, and reads, allowed — as natively as root."""
    native = subprocess.run(["python3", "-c", RESCHEDULE], capture_output=True, timeout=60)
    lines = native.stdout.decode().splitlines()
    assert "root's affinity Operation not permitted" in lines and "own uid's affinity ok" in lines, native
    boxed = run_sentry(["python3", "-c", RESCHEDULE])
    assert boxed.stdout.decode().splitlines() == lines, boxed.stderr


# ---- 5. nothing of a sandbox outlives it on the host -------------------------------

def _sentry_entries(top, pid):
    return [n for n in os.listdir(top) if n.startswith(f"sentry-{pid}-")]


def test_a_sigkilled_sentry_leaves_nothing_on_the_host(tmp_path):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir))
    p = subprocess.Popen(SENTRY + ["--", "/bin/sh", "-c", "echo x > /tmp/f; mkdir /dev/shm/d; echo up; sleep 100"],
                         stdout=subprocess.PIPE, env=env)
    try:
        assert p.stdout.readline() == b"up\n"
        assert os.listdir(tmpdir) and _sentry_entries("/dev/shm", p.pid)     # it has state there
        guests = [int(t) for t in os.listdir("/proc") if t.isdigit() and _tracer_of(t) == p.pid]
        assert guests
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    deadline = time.time() + 30
    while time.time() < deadline and (any(_alive(g) for g in guests) or os.listdir(tmpdir)
                                      or _sentry_entries("/dev/shm", p.pid) or _sentry_entries("/tmp", p.pid)):
        time.sleep(0.1)
    assert not any(_alive(g) for g in guests)
    assert os.listdir(tmpdir) == []
    assert _sentry_entries("/dev/shm", p.pid) == [] and _sentry_entries("/tmp", p.pid) == []


def _tracer_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        return None


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


FSIZE = r"""
d=$(mktemp -d); cd $d; echo abc > f
(ulimit -f 1; trap '' XFSZ; truncate -s 2000 f; echo big $?; truncate -s 100 f; echo small $?)
(ulimit -f 1; truncate -s 5000 f 2>/dev/null; echo $?)
cd /; rm -rf $d
"""


def test_truncate_past_the_file_size_limit():
    """truncate(2), which the Sentry carries out, answers the guest's own
    RLIMIT_FSIZE: EFBIG and SIGXFSZ when it would grow the file past it (LTP
    truncate03)."""
    native = subprocess.run(["bash", "-c", FSIZE], capture_output=True)
    boxed = run_sentry(["bash", "-c", FSIZE])
    assert native.stdout.decode().split() == ["big", "1", "small", "0", "153"]
    assert boxed.stdout == native.stdout, boxed.stderr
