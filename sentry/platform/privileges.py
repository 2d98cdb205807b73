"""Defence in depth: whatever uid sentry runs as, the guest holds no host
capabilities and cannot gain any (empty bounding, ambient and effective sets,
SECBIT_NOROOT locked, no_new_privs), so a call the filter should have caught
still cannot mount, trace, load modules or override permissions."""
import errno
import os

from sentry._native import lib

PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
SECBIT_NOROOT, SECBIT_NOROOT_LOCKED = 1 << 0, 1 << 1
SECBIT_NO_CAP_AMBIENT_RAISE, SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 6, 1 << 7


def prctl(option, arg2=0, arg3=0):
    """0, or -errno."""
    return lib.sn_prctl(option, arg2, arg3)


def drop_all():
    """Called in the guest's first process, before its first execve."""
    # needs CAP_SETPCAP: fails harmlessly (EPERM) when sentry is unprivileged,
    # and then there is nothing to drop.
    prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED
          | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)
    for cap in range(64):
        if prctl(PR_CAPBSET_DROP, cap) == -errno.EINVAL:
            break
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    lib.sn_capset_none()


CLONE_NEWUSER = 0x10000000


def enter_user_namespace(uid, gid):
    """Called in the guest's first process of an unprivileged sentry: a user
    namespace of its own mapping uid and gid to the process's own (one id
    each, as an unprivileged process may), so the kernel shows the guest's
    files as its own (sentry/kernel/idmap.py).  Its capabilities there go
    with drop_all, as any others."""
    host_uid, host_gid = os.geteuid(), os.getegid()
    e = -lib.sn_unshare(CLONE_NEWUSER)
    if e > 0:
        raise OSError(e, os.strerror(e))
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {host_uid} 1"),
                       ("gid_map", f"{gid} {host_gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
