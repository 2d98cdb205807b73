"""Namespaces a guest makes itself (syscalls/namespaces.py): a UTS namespace
of its own is emulated; the others are refused as for a process without
the capability."""
import subprocess

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


def test_unshare_needs_the_capability_and_valid_flags():
    r = run_sentry(["python3", "-c",
                    "import os, ctypes\n"
                    "libc = ctypes.CDLL(None, use_errno=True)\n"
                    "def t(f):\n"
                    "    r = libc.unshare(f); print(r, os.strerror(ctypes.get_errno()) if r else '')\n"
                    "t(0); t(0x1); t(0x10000000); t(0x20000000); t(0x40000000); t(0x80)\n"
                    "os.setuid(1000)\n"
                    "t(0x04000000)\n"])
    assert r.stdout.decode().splitlines() == [
        "0 ", "-1 Invalid argument", "-1 Operation not permitted", "-1 Operation not permitted",
        "-1 Operation not permitted", "-1 Operation not permitted", "-1 Operation not permitted"], r.stderr
