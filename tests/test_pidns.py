"""The sandbox's PID namespace and credentials (issue 4), beyond the
differential transcripts (tests/c/conf_pids.c, conf_creds.c): no host pid
reaches the guest, pid 1 semantics, ids from the command line."""
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import install, copy_root, run_sentry

PID_KEYS = {"Pid", "PPid", "Tgid", "NSpid", "NStgid", "NSpgid", "NSsid", "TracerPid"}


def _host_pids(log):
    return {int(h) for h in re.findall(r"task \d+ is host (\d+)", log)}


def test_no_host_pid_reaches_the_guest(busybox_root, cbin, tmp_path):
    """Every pid conf_pids sees -- syscall results, wait statuses, siginfo of
    handlers, sigtimedwait and waitid, SO_PEERCRED, F_GETOWN, F_GETLK, pidfd
    fdinfo, /proc -- is scanned for the host pids the Sentry logged."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    exe = install(cbin("conf_pids"), root)
    os.mkdir(root + "/scratch")
    log = tmp_path / "sentry.log"
    r = run_sentry(["/bin/sh", "-c", f"{exe} /scratch raw; cat /proc/self/status /proc/1/status; "
                    "cat /proc/self/stat; ps -o pid,ppid,pgid,comm; echo $$ $PPID"],
                   root, extra=["--debug", "--log", str(log)])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    host = _host_pids(log.read_text())
    assert len(host) >= 8                          # the program's children and threads, the shell's
    seen = []
    for line in out.splitlines():
        if line.startswith("raw "):
            seen += [int(n) for n in re.findall(r"-?\d+", line.rsplit(" ", 1)[-1])]
            if line.startswith("raw proc:"):
                assert " 0" not in line, line     # every /proc relation holds
        key, _, value = line.partition(":")
        if key in PID_KEYS:
            seen.append(int(value))
    stat_line = next(l for l in out.splitlines() if re.match(r"\d+ \(\S+\) [A-Z] ", l))
    fields = stat_line.rsplit(")", 1)[1].split()
    seen += [int(stat_line.split()[0])] + [int(fields[i]) for i in (1, 2, 3, 5)]
    seen += [int(n) for n in out.splitlines()[-1].split()]
    assert len(seen) > 30
    assert not set(abs(p) for p in seen) & host, sorted(set(abs(p) for p in seen) & host)
    assert max(abs(p) for p in seen) < 50           # a fresh namespace's small numbers
    assert out.splitlines()[-1] == "1 0"            # the shell is init; its parent is outside


def test_orphans_go_to_init_and_pids_count_from_one():
    out = run_sentry(["/bin/sh", "-c", "(sleep 1 &) ; sleep 0.3; ps -o pid,ppid,comm; echo $$"]).stdout
    lines = out.decode().split("\n")
    rows = [l.split() for l in lines[1:-2]]
    assert ["1", "0", "sh"] in rows
    assert any(r[1:] == ["1", "sleep"] for r in rows)   # re-parented to init, as in a PID namespace
    assert lines[-2] == "1"


SUBREAPER_PROBE = r"""
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
def get():
    v = ctypes.c_int(-1)
    assert libc.prctl(37, ctypes.byref(v), 0, 0, 0) == 0
    return v.value
print("init says", get())
libc.prctl(36, 1, 0, 0, 0); print("after set", get())
libc.prctl(36, 0, 0, 0, 0); print("after clear", get())
print("bad pointer:", libc.prctl(37, 1, 0, 0, 0), ctypes.get_errno())
r, w = os.pipe()
if os.fork() == 0:                  # a subreaper of the sandbox: orphans go to it
    libc.prctl(36, 1, 0, 0, 0)
    print("child says", get(), flush=True)
    if os.fork() == 0:
        if os.fork() == 0:
            time.sleep(0.3)
            os.write(w, b"%d %d" % (os.getppid(), os.getpid()))
            os._exit(0)
        os._exit(0)
    os.wait()
    print("orphan's parent is the subreaper:", os.read(r, 100).split()[0] == b"%d" % os.getpid(), flush=True)
    os.wait()
    os._exit(0)
os.wait()
if os.fork() == 0:                  # init cleared its bit: orphans still reach it
    if os.fork() == 0:
        time.sleep(0.3)
        os.write(w, b"%d" % os.getppid())
        os._exit(0)
    os._exit(0)
os.wait()
print("orphan's parent:", os.read(r, 100).decode())
os.wait()
"""


def test_child_subreaper_as_in_a_pid_namespace():
    """init's PR_GET_CHILD_SUBREAPER is its own, not the host's bit the Sentry
    set; orphans reach it anyway, or a subreaper inside."""
    r = run_sentry(["python3", "-c", SUBREAPER_PROBE])
    assert r.stdout.decode().splitlines() == [
        "init says 0", "after set 1", "after clear 0", "bad pointer: -1 14", "child says 1",
        "orphan's parent is the subreaper: True", "orphan's parent: 1"], r.stderr.decode()


def test_ids_from_the_command_line(busybox_root):
    r = run_sentry(["/bin/sh", "-c", "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups)' /proc/self/status"],
                   busybox_root, extra=["--uid", "1000", "--gid", "100", "--groups", "10,20"])
    assert r.stdout.decode().split("\n") == [
        "1000", "100", "100 10 20", "Uid:\t1000\t1000\t1000\t1000", "Gid:\t100\t100\t100\t100",
        "Groups:\t10 20 ", ""]


def test_a_dropped_user_cannot_get_root_back(busybox_root):
    """su-like: drop to 1000 with python's os calls; getting back is EPERM."""
    r = run_sentry(["python3", "-c", "import os\n"
                    "os.setgroups([]); os.setgid(100); os.setuid(1000)\n"
                    "print(os.getresuid(), os.getresgid(), os.getgroups())\n"
                    "for f in (lambda: os.setuid(0), lambda: os.seteuid(0), lambda: os.setgroups([0])):\n"
                    "    try: f(); print('regained')\n"
                    "    except PermissionError as e: print(e.errno)\n"])
    assert r.stdout == b"(1000, 1000, 1000) (100, 100, 100) []\n1\n1\n1\n"


def test_bad_id_options_are_one_clear_line():
    for opt in (["--uid", "x"], ["--gid", "-1"], ["--groups", "1,a"], ["--uid", "4294967295"],
                ["--cpus", "0"], ["--memory", "lots"]):
        r = run_sentry(["true"], extra=opt)
        assert r.returncode == 125 and r.stderr.count(b"\n") == 1, (opt, r.stderr)


def test_cpus_and_memory_are_what_the_sandbox_reports():
    r = run_sentry(["/bin/sh", "-c", "nproc; grep -c ^processor /proc/cpuinfo; "
                    "cat /sys/devices/system/cpu/online; grep MemTotal /proc/meminfo; "
                    "python3 -c 'import os; print(len(os.sched_getaffinity(0)), "
                    "os.sysconf(\"SC_PHYS_PAGES\") * os.sysconf(\"SC_PAGE_SIZE\") >> 20)'"],
                   extra=["--cpus", "1", "--memory", "256m"])
    assert r.stdout.decode().split("\n") == ["1", "1", "0", "MemTotal:         262144 kB", "1 256", ""]


def test_uname_release_and_hostname(busybox_root):
    r = run_sentry(["/bin/sh", "-c", "uname -r; uname -n; cat /proc/sys/kernel/osrelease; hostname"],
                   busybox_root, extra=["--kernel-release", "4.19.0-test", "--hostname", "box"])
    assert r.stdout == b"4.19.0-test\nbox\n4.19.0-test\nbox\n"


def test_tar_keeps_owners_and_chown_follows_the_guests_credentials(outside_tmp):
    """tar x of an archive with owners round-trips (the Sentry chowns for a
    guest whose emulated root holds CAP_CHOWN); a guest that dropped to a
    user may change only its own files' mode, and no owner."""
    tmp_path = pathlib.Path(outside_tmp)
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("x")
    os.chown(src / "d" / "f", 1234, 2345)
    os.chown(src / "d", 1234, 2345)
    subprocess.run(["tar", "-C", str(src), "-cf", str(tmp_path / "own.tar"), "d"], check=True)
    r = run_sentry(["/bin/sh", "-c", f"cd /tmp && tar xf {tmp_path}/own.tar && stat -c '%u:%g %n' d d/f && "
                    "python3 -c '\nimport os\nfd = os.open(\"d/f\", os.O_RDONLY)\nos.fchown(fd, 7, 8)\n"
                    "os.setuid(7)\nos.fchmod(fd, 0o600)\n"
                    "for f in (lambda: os.fchown(fd, 9, 9), lambda: os.chmod(\"d\", 0o700), "
                    "lambda: os.chown(\"d/f\", 7, 99)):\n"
                    "    try: f(); print(\"allowed\")\n    except PermissionError as e: print(e.errno)\n"
                    "st = os.stat(\"d/f\"); print(st.st_uid, st.st_gid, oct(st.st_mode))'"])
    assert r.stdout.decode().split("\n") == ["1234:2345 d", "1234:2345 d/f", "1", "1", "1",
                                             "7 8 0o100600", ""], r.stderr


def test_init_cannot_be_killed_through_a_pidfd():
    r = run_sentry(["/bin/sh", "-c", "python3 -c 'import os, signal\n"
                    "fd = os.pidfd_open(1)\nsignal.pidfd_send_signal(fd, signal.SIGKILL)\n"
                    "signal.pidfd_send_signal(fd, signal.SIGTERM)\nprint(\"sent\")'; echo init alive"])
    assert r.stdout == b"sent\ninit alive\n" and r.returncode == 0


# The host checks files as sentry's own uid, so a guest file owned by another
# user stays closed to it even when its emulated ids own it (see README).
HOST_CHECKED = {"create in mine", "unlink own in sticky", "mode of new"}


def test_a_dropped_user_is_held_to_file_permissions(outside_tmp, tmp_path):
    """tests/py/perm_probe.py sets files up as root, drops to uid 1000 and
    probes reads, writes, creation, removal, search, access(2), exec and
    the sticky bit: natively (as real root) and in sentry, on a bind mount."""
    # a copy where the sandbox sees it (a checkout under /tmp would be hidden)
    probe = shutil.copy(os.path.join(os.path.dirname(__file__), "py", "perm_probe.py"), outside_tmp)
    native_dir, boxed_dir = tmp_path / "native", tempfile.mkdtemp(dir=outside_tmp)
    native_dir.mkdir()
    os.chmod(boxed_dir, 0o755)                      # as native_dir: the probe works inside it
    native = subprocess.run(["python3", probe, str(native_dir)], capture_output=True, text=True)
    boxed = run_sentry(["python3", probe, "/w"], extra=["--mount", f"type=bind,src={boxed_dir},dst=/w"])
    assert native.returncode == 0 and boxed.returncode == 0, boxed.stderr
    out_n = [l for l in native.stdout.splitlines() if not any(l.startswith(k) for k in HOST_CHECKED)]
    out_b = [l for l in boxed.stdout.decode().splitlines() if not any(l.startswith(k) for k in HOST_CHECKED)]
    assert len(out_n) >= 19 and out_b == out_n
    assert "read secret Permission denied" in out_b and "unlink roots in sticky Operation not permitted" in out_b


SIGNALFD_UNTRAPPABLE = r"""
import ctypes, os, signal, struct, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
ALLOW = (0x06, 0, 0, 0x7FFF0000)

def load(insns):
    code = b"".join(struct.pack("<HBBI", *i) for i in insns)
    buf = ctypes.create_string_buffer(code, len(code))
    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    prog = Prog(len(code) // 8, ctypes.addressof(buf))
    assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0, ctypes.get_errno()   # PR_SET_SECCOMP

if sys.argv[1] == "deny-seccomp":          # seccomp(2) -> EPERM, the rest allowed
    load([(0x20, 0, 0, 0), (0x15, 0, 1, 317), (0x06, 0, 0, 0x00050001), ALLOW])
elif sys.argv[1] == "thread-filter":       # a live thread with a filter of its own: TSYNC fails
    loaded, done = threading.Event(), threading.Event()
    def other():
        load([ALLOW]); loaded.set(); done.wait()
    threading.Thread(target=other, daemon=True).start()
    loaded.wait()
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
mask = ctypes.c_uint64(1 << (signal.SIGUSR1 - 1))
fd = libc.signalfd(-1, ctypes.byref(mask), 0)
os.kill(os.getpid(), signal.SIGUSR1)
print("ssi_pid", struct.unpack_from("<I", os.read(fd, 128), 12)[0], os.getpid(), flush=True)
"""


@pytest.mark.parametrize("mode", ["plain", "deny-seccomp", "thread-filter"])
def test_a_signalfd_that_cannot_be_trapped_ends_its_process(mode):
    """A signalfd's reads carry the sender's host pid, so the Sentry makes
    them trap with one more filter (kernel/fdtraps.py).  Where that filter
    cannot be installed -- the guest's own filter (or an OCI profile)
    denies seccomp(2), or another thread's own filter makes TSYNC fail --
    the process is killed rather than left to read host pids."""
    r = run_sentry(["/usr/bin/python3", "-c", SIGNALFD_UNTRAPPABLE, mode], extra=["--network=host"])
    if mode == "plain":
        assert r.returncode == 0, r.stderr
        _, seen, own = r.stdout.split()
        assert seen == own == b"1"
    else:
        assert r.returncode == 137 and r.stdout == b"", (r.stdout, r.stderr)
        assert b"its trap could not be installed" in r.stderr, r.stderr


MANY_SIGNALFDS = r"""
import ctypes, os, resource, signal, struct
libc = ctypes.CDLL(None, use_errno=True)
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
mask = ctypes.c_uint64(1 << (signal.SIGUSR1 - 1))
fds = []
for _ in range(3000):                          # each at a number of its own: all kept open
    fd = libc.signalfd(-1, ctypes.byref(mask), 0)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    fds.append(fd)
for fd in (fds[0], fds[-1], os.dup(fds[-1])):   # trapped one by one, past the bound, a copy
    os.kill(os.getpid(), signal.SIGUSR1)
    print("ssi_pid is getpid:", struct.unpack_from("<I", os.read(fd, 128), 12)[0] == os.getpid())
r, w = os.pipe()
os.write(w, b"plain")
print(os.read(r, 5).decode())
"""


def test_many_trapped_fds_keep_their_process_alive():
    """Each signalfd number gets a filter that traps its reads; a process
    with thousands of them would pile filters past the kernel's limit and be
    killed (ENOMEM) -- past a bound the next filter traps those calls on
    every fd instead (kernel/fdtraps.py).  Same output as natively."""
    native = subprocess.run(["python3", "-c", MANY_SIGNALFDS], capture_output=True, text=True, timeout=60)
    assert native.returncode == 0, native.stderr
    assert native.stdout == "ssi_pid is getpid: True\n" * 3 + "plain\n"
    r = run_sentry(["python3", "-c", MANY_SIGNALFDS])
    assert r.returncode == 0 and r.stdout.decode() == native.stdout, r.stderr.decode()[-2000:]


SCHED = r'''
import ctypes, os
l = ctypes.CDLL(None, use_errno=True)
def t(name, *a):
    r = getattr(l, name)(*a)
    print(name, [x if isinstance(x, int) or x is None else "buf" for x in a], r,
          os.strerror(ctypes.get_errno()) if r < 0 else "")
b = ctypes.create_string_buffer(64)
for pid in (-1, 0, 99999):
    t("sched_getparam", pid, b); t("sched_getparam", pid, None); t("sched_setparam", pid, b)
    t("sched_getscheduler", pid); t("sched_setscheduler", pid, 0, b); t("sched_rr_get_interval", pid, b)
    t("sched_getaffinity", pid, 64, b)
    for nr in (314, 315):
        r = l.syscall(nr, pid, b, 48 if nr == 315 else 0, 0)
        print(nr, pid, r, os.strerror(ctypes.get_errno()) if r < 0 else "")
    r = l.syscall(434, pid, 0)
    print("pidfd_open", pid, r >= 0 or os.strerror(ctypes.get_errno()))
'''


def test_scheduler_calls_check_their_arguments_before_the_pid():
    """sched_*param, sched_*scheduler, sched_rr_get_interval, sched_*attr and
    pidfd_open answer EINVAL for a negative pid or a NULL argument before
    looking the pid up, as Linux (LTP sched_getparam03, sched_setparam04)."""
    native = subprocess.run(["python3", "-c", SCHED], capture_output=True)
    boxed = run_sentry(["python3", "-c", SCHED])
    assert native.returncode == 0 and b"Invalid argument" in native.stdout
    assert boxed.stdout == native.stdout, boxed.stderr
