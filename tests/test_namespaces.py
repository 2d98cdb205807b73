"""Namespaces a guest makes itself (syscalls/namespaces.py): a UTS namespace
of its own is emulated; the others are refused as by a Linux whose limits
for them are 0 (sentry/kernel/namespaces.py)."""
import subprocess
import sys

from conftest import run_sentry

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
os.setuid(1000)
for f in (0x04000000, 0x40000000, 0x10000000, 0x10000000 | 0x40000000):
    unshare(f)
clone(0x40000000)
"""

# Natively: a child enters a user namespace of its own, its parent maps it,
# it sets the limits (uts: the host's, which a new namespace would not show),
# then runs PROBE.
NATIVE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
made_r, made_w = os.pipe()
mapped_r, mapped_w = os.pipe()
uts_limit = open('/proc/sys/user/max_uts_namespaces').read()
pid = os.fork()
if pid == 0:
    if libc.unshare(0x10000000):
        os._exit(99)
    os.write(made_w, b'x')
    os.read(mapped_r, 1)
    for k in ('user', 'net', 'pid', 'mnt', 'ipc', 'cgroup', 'time'):
        open(f'/proc/sys/user/max_{k}_namespaces', 'w').write('0')
    open('/proc/sys/user/max_uts_namespaces', 'w').write(uts_limit)
    os.execv(sys.executable, [sys.executable, '-c', sys.argv[1]])
os.read(made_r, 1)
for name in ('uid_map', 'gid_map'):
    open(f'/proc/{pid}/{name}', 'w').write('0 0 65536')
os.write(mapped_w, b'x')
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_namespaces_not_offered_fail_as_with_limits_of_0():
    """unshare(2) and clone(2) of every namespace kind, with flags Linux
    refuses first, as root and as another user: the same answers as
    natively under limits of 0 for every kind but UTS (ENOSPC; EPERM
    without CAP_SYS_ADMIN; a new user namespace needs no capability), and
    /proc/sys/user shows those limits."""
    native = subprocess.run([sys.executable, "-c", NATIVE, PROBE], capture_output=True, timeout=60)
    assert native.returncode == 0, native.stderr
    boxed = run_sentry(["python3", "-c", PROBE])
    lines = native.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["0", lines[0].split()[1], "0"] and lines[0].split()[1] != "0"
    assert "unshare 0x40000000 -1 No space left on device" in lines
    assert boxed.stdout.decode().splitlines() == lines, boxed.stderr
    assert boxed.returncode == 0
