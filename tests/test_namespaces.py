"""Namespaces a guest makes itself (syscalls/namespaces.py): a UTS namespace
of its own is emulated; the others are refused as by a Linux whose limits
for them are 0 (sentry/kernel/namespaces.py)."""
import subprocess
import sys

from conftest import run_sentry, userns_jail

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
    show('unshare %#x' % f, libc.unshare(f))
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

# Natively: PROBE in a user namespace whose limits are the sandbox's (uts:
# the host's, which a new namespace would not show)
KINDS_NOT_OFFERED = ("user", "net", "pid", "mnt", "ipc", "cgroup", "time")


def test_namespaces_not_offered_fail_as_with_limits_of_0():
    """unshare(2) and clone(2) of every namespace kind, with flags Linux
    refuses first, as root and as another user: the same answers as
    natively under limits of 0 for every kind but UTS (ENOSPC; EPERM
    without CAP_SYS_ADMIN; a new user namespace needs no capability), and
    /proc/sys/user shows those limits."""
    with open("/proc/sys/user/max_uts_namespaces") as f:
        limits = dict.fromkeys(KINDS_NOT_OFFERED, 0) | {"uts": f.read().strip()}
    native = subprocess.run([sys.executable, "-c", userns_jail(limits), sys.executable, "-c", PROBE],
                            capture_output=True, timeout=60)
    assert native.returncode == 0, native.stderr
    boxed = run_sentry(["python3", "-c", PROBE])
    lines = native.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["0", lines[0].split()[1], "0"] and lines[0].split()[1] != "0"
    assert "unshare 0x40000000 -1 No space left on device" in lines
    assert boxed.stdout.decode().splitlines() == lines, boxed.stderr
    assert boxed.returncode == 0
