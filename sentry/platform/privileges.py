"""Defence in depth: whatever uid sentry runs as, the guest holds no host
capabilities and cannot gain any (empty bounding, ambient and effective sets,
SECBIT_NOROOT locked, no_new_privs), so a call the filter should have caught
still cannot mount, trace, load modules or override permissions."""
import errno
import os

from sentry._native import ffi, lib

PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39
SECBIT_NOROOT, SECBIT_NOROOT_LOCKED = 1 << 0, 1 << 1
SECBIT_NO_CAP_AMBIENT_RAISE, SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 6, 1 << 7


def prctl(option, arg2=0, arg3=0):
    """0, or -errno."""
    return lib.sn_prctl(option, arg2, arg3)


def prctl_bytes(option, value):
    """prctl with a string argument: 0, or -errno."""
    return lib.sn_prctl_str(option, value)


def no_new_privs():
    """Whether this process has no_new_privs set (sentry's caller's, until
    sentry sets its own): the guest's first view of its own."""
    return prctl(PR_GET_NO_NEW_PRIVS) == 1


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
    lib.sn_capset(ffi.new("uint32_t[6]"))


CAPS = {name: n for n, name in enumerate(
    "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID "
    "CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE CAP_NET_BROADCAST "
    "CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE CAP_SYS_RAWIO "
    "CAP_SYS_CHROOT CAP_SYS_PTRACE CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT CAP_SYS_NICE "
    "CAP_SYS_RESOURCE CAP_SYS_TIME CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE CAP_AUDIT_WRITE "
    "CAP_AUDIT_CONTROL CAP_SETFCAP CAP_MAC_OVERRIDE CAP_MAC_ADMIN CAP_SYSLOG CAP_WAKE_ALARM "
    "CAP_BLOCK_SUSPEND CAP_AUDIT_READ CAP_PERFMON CAP_BPF CAP_CHECKPOINT_RESTORE".split())}


def keep_only(caps):
    """Called in the Sentry's own processes after set-up: of the capabilities
    it holds, keep `caps` (numbers) in the effective and permitted sets and
    none in the others; the bounding set keeps `caps` only, so nothing can
    bring the rest back.  An unprivileged process holds none, and loses
    nothing here (the bounding set needs CAP_SETPCAP: EPERM then, harmless)."""
    keep = 0
    for cap in caps:
        keep |= 1 << cap
    for cap in range(64):
        if not keep & (1 << cap) and prctl(PR_CAPBSET_DROP, cap) == -errno.EINVAL:
            break
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    data = ffi.new("uint32_t[6]")
    _check(lib.sn_capget(data))
    # struct __user_cap_data_struct[2]: (effective, permitted, inheritable) x low, high
    for half in (0, 1):
        mask = (keep >> (32 * half)) & 0xFFFFFFFF
        permitted = data[3 * half + 1] & mask
        data[3 * half], data[3 * half + 1], data[3 * half + 2] = permitted, permitted, 0
    _check(lib.sn_capset(data))


def _check(r):
    if r < 0:
        raise OSError(-r, os.strerror(-r))


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
