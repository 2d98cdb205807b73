"""Namespaces a guest makes itself (syscalls/namespaces.py): UTS, PID, user,
time and mount namespaces of its own are emulated; the others are refused
as by a Linux whose limits for them are 0 (sentry/kernel/namespaces.py)."""
import subprocess
import sys

from conftest import run_sentry, userns_jail
from sentry.kernel.namespaces import MNT_NAMESPACES_MAX

UTS = ("hostname outer; unshare -u sh -c 'hostname inner; hostname; uname -n; cat /proc/sys/kernel/hostname; "
       "sh -c hostname; readlink /proc/self/ns/uts > /tmp/inner'; hostname; cat /proc/sys/kernel/hostname; "
       "readlink /proc/self/ns/uts > /tmp/outer; cmp -s /tmp/inner /tmp/outer || echo namespaces-differ")


def test_unshare_uts_changes_the_names_of_that_namespace_only():
    """`unshare -u hostname x`, as root natively in a UTS namespace of its
    own: the new one and its children see the new name, the sandbox's
    first namespace keeps its own."""
    native = subprocess.run(["unshare", "-u", "sh", "-c", UTS], capture_output=True)
    boxed = run_sentry(["/bin/sh", "-c", UTS])
    assert native.stdout.decode().splitlines() == ["inner"] * 4 + ["outer", "outer", "namespaces-differ"]
    assert boxed.stdout == native.stdout, boxed.stderr
    assert boxed.returncode == 0


# The calls and their errors, printed one per line.  Run natively as root of
# a user namespace (ids 0-65535 mapped) whose limits are those the sandbox
# shows (/proc/sys/user/max_<kind>_namespaces: 0 but for uts).
PROBE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def show(what, r):
    print(what, r, os.strerror(ctypes.get_errno()) if r else '', flush=True)
def unshare(f):
    # in a child: what it makes (a user namespace) must not change the rest
    pid = os.fork()
    if pid == 0:
        show('unshare %#x' % f, libc.unshare(f))
        os._exit(0)
    os.waitpid(pid, 0)
def clone(f):
    r = libc.syscall(56, f | 17, 0, 0, 0, 0)
    if r == 0:
        os._exit(0)
    show('clone %#x' % f, -1 if r < 0 else 0)
    if r > 0:
        os.waitpid(r, 0)
print(*(open(f'/proc/sys/user/max_{k}_namespaces').read().strip()
        for k in ('user', 'uts', 'net', 'pid', 'mnt', 'ipc', 'cgroup', 'time')), flush=True)
for f in (0, 0x1, 0x10000000, 0x20000000, 0x40000000, 0x80, 0x20000, 0x08000000, 0x02000000,
          0x50000000, 0x04000000 | 0x40000000, 0x400, 0x200, 0x100, 0x800, 0x10000):
    unshare(f)
for f in (0x40000000, 0x10000000, 0x10000000 | 0x200, 0x20000 | 0x200, 0x20000000 | 0x10000 | 0x800 | 0x100):
    clone(f)
# unshare's flags are an unsigned long: a high bit is an unknown flag
r = libc.syscall(272, ctypes.c_ulong(0x100000000 | 0x04000000))
show('unshare high bit', r)
os.setuid(1000)
for f in (0x04000000, 0x40000000, 0x10000000, 0x10000000 | 0x40000000):
    unshare(f)
clone(0x40000000)
"""

# Natively: PROBE in a user namespace whose limits are the sandbox's (uts and
# pid: the host's, which a new namespace would not show)
KINDS_NOT_OFFERED = ("ipc", "cgroup")
KINDS_OFFERED = ("uts", "pid", "user", "time", "net", "mnt")


def test_namespaces_not_offered_fail_as_with_limits_of_0():
    """unshare(2) and clone(2) of every namespace kind, with flags Linux
    refuses first, as root and as another user: the same answers as
    natively under limits of 0 for every kind but UTS, PID, user, time, network and mount (ENOSPC; EPERM
    without CAP_SYS_ADMIN; a new user namespace needs no capability), and
    /proc/sys/user shows those limits."""
    limits = dict.fromkeys(KINDS_NOT_OFFERED, 0)
    for kind in KINDS_OFFERED:
        with open(f"/proc/sys/user/max_{kind}_namespaces") as f:
            limits[kind] = f.read().strip()
    # the sandbox's own bound on live mount namespaces (kernel/namespaces.py)
    limits["mnt"] = str(min(int(limits["mnt"]), MNT_NAMESPACES_MAX))
    native = subprocess.run([sys.executable, "-c", userns_jail(limits), sys.executable, "-c", PROBE],
                            capture_output=True, timeout=60)
    assert native.returncode == 0, native.stderr
    boxed = run_sentry(["python3", "-c", PROBE])
    lines = native.stdout.decode().splitlines()
    user, uts, net, pid = lines[0].split()[:4]
    assert "0" not in (user, uts, pid, net)
    assert "unshare 0x8000000 -1 No space left on device" in lines
    assert "unshare 0x20000 0 " in lines
    assert "unshare 0x40000000 0 " in lines
    assert "unshare 0x10000000 0 " in lines
    assert boxed.stdout.decode().splitlines() == lines, boxed.stderr
    assert boxed.returncode == 0


# Processes outside a new PID namespace count the signals they get while,
# inside it, the namespace's init has threads send signals to every number
# (kill, tkill, tgkill, pidfd_send_signal, kill(-1)) as children come and go.
PIDNS_RACE = r"""
import ctypes, os, signal, threading, time
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
victims = []
for _ in range(3):
    v = os.fork()
    if v == 0:
        os.close(r)
        got = [0]
        def count(s, f):
            got[0] += 1
        for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGTERM):
            signal.signal(s, count)
        time.sleep(4)
        os.write(w, b"%d " % got[0])
        os._exit(0)
    victims.append(v)
assert libc.unshare(0x20000000) == 0
init = os.fork()
if init == 0:
    os.close(r)
    stop = time.time() + 2
    def spray(k):
        while time.time() < stop:
            for pid in range(2, 40):
                sig = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)[pid % 3]
                how = (pid + k) % 4
                if how == 0:
                    libc.kill(pid, sig)
                elif how == 1:
                    libc.syscall(200, pid, sig)              # tkill
                elif how == 2:
                    libc.syscall(234, pid, pid, sig)         # tgkill
                else:
                    fd = libc.syscall(434, pid, 0)           # pidfd_open
                    if fd >= 0:
                        libc.syscall(424, fd, sig, None, 0)  # pidfd_send_signal
                        os.close(fd)
            libc.kill(-1, signal.SIGTERM)
    def churn():
        while time.time() < stop:
            c = os.fork()
            if c == 0:
                time.sleep(0.001)
                os._exit(0)
            os.waitpid(c, 0)
    threads = [threading.Thread(target=spray, args=(k,)) for k in range(2)] + [threading.Thread(target=churn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os._exit(0)
os.close(w)
os.waitpid(init, 0)
for v in victims:
    os.waitpid(v, 0)
print("signals the processes outside got:", os.read(r, 100).decode().split())
"""


def test_a_new_pid_namespace_signals_nothing_outside_it():
    """Threads of a new PID namespace's init signal every number, by each
    call that names a pid, while its children come and go: the sandbox's
    processes outside that namespace get nothing, as natively."""
    native = subprocess.run(["/usr/bin/python3", "-c", PIDNS_RACE], capture_output=True, timeout=60)
    boxed = run_sentry(["/usr/bin/python3", "-c", PIDNS_RACE], timeout=60)
    assert native.stdout == b"signals the processes outside got: ['0', '0', '0']\n", native.stderr
    assert boxed.stdout == native.stdout, boxed.stderr
