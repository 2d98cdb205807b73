"""Host syscalls every layer confines itself with (a leaf: it imports only the
cffi module, so the platform and the filesystem both stand on it)."""
import os

from sentry._native import lib
from sentry.errors import SyscallError

RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH = 1, 2, 4, 8
# The host kernel's part of confinement: never leave the mount's root, never
# follow a symlink the Sentry did not resolve itself (a racing guest planted it).
CONFINED = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS


def openat2(dirfd, path, flags, mode=0, resolve=CONFINED):
    fd = lib.sn_openat2(dirfd, os.fsencode(path), flags, mode, resolve)
    if fd < 0:
        raise SyscallError(-fd)
    return fd


def fdinfo(pid, fd):
    """The fields of /proc/PID/fdinfo/FD (PID "self": the Sentry's own fd),
    each as its text; OSError when the fd is not open."""
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        return {key: value.strip() for key, _, value in (line.partition(":") for line in f)}
