"""Credentials: the set*id, get*id and capability calls, all emulated.

They act on the task's emulated credentials (sentry/kernel/credentials.py);
the host never runs them, so a guest's uid changes nothing on the host.  The
getters are answered in C (native/identity.c) from the row the kernel
publishes after every change here; these handlers serve a task without one,
and a task in a user namespace of its own, whose ids are its namespace's
view (kernel/userns.py): shown through its maps, passed back through them.
"""
import errno
import struct

from sentry.kernel import userns
from sentry.kernel.credentials import SECBIT_KEEP_CAPS
from sentry.errors import SyscallError
from syscalls.registry import handler


def _changed(call):
    call.kernel.publish(call.task)
    return 0


def _audited(nids):
    """A set*id, setgroups or capset handler whose attempts go on the
    --audit trail (kernel/audit.py), refused ones too: kind "setid" with the
    nids ids the call asked for ("args") and the task's ids after it."""
    def wrap(fn):
        def run(call):
            trail = call.kernel.audit
            if not trail.enabled:
                return fn(call)
            try:
                result = fn(call)
            except SyscallError as e:
                _record(trail, call, nids, e.errno)
                raise
            _record(trail, call, nids, 0)
            return result
        run.__name__ = fn.__name__
        return run
    return wrap


def _record(trail, call, nids, err):
    c = call.task.creds
    trail.event("setid", call.task, call=call, errno=err,
                args=list(call.args[:nids]) if nids else None,
                uids=[c.ruid, c.euid, c.suid, c.fsuid], gids=[c.rgid, c.egid, c.sgid, c.fsgid],
                groups=list(c.groups), caps="%x" % c.cap_effective)


def _seen(call, kind, *kids):
    """Sandbox ids as the calling task's user namespace shows them."""
    return [userns.view(call.task.creds, kind, k) for k in kids]


def _passed(call, kind, n):
    """The call's first n id arguments in the sandbox's terms (EINVAL for
    one its user namespace does not map; (uid_t)-1 kept)."""
    return [userns.kernel_id(call.task.creds, kind, a) for a in call.args[:n]]


@handler("getuid")
def sys_getuid(call):
    return _seen(call, "u", call.task.creds.ruid)[0]


@handler("geteuid")
def sys_geteuid(call):
    return _seen(call, "u", call.task.creds.euid)[0]


@handler("getgid")
def sys_getgid(call):
    return _seen(call, "g", call.task.creds.rgid)[0]


@handler("getegid")
def sys_getegid(call):
    return _seen(call, "g", call.task.creds.egid)[0]


def _write_ids(call, ids):
    for addr, v in zip(call.args[:3], ids):
        call.write(addr, struct.pack("<I", v))
    return 0


@handler("getresuid")
def sys_getresuid(call):
    c = call.task.creds
    return _write_ids(call, _seen(call, "u", c.ruid, c.euid, c.suid))


@handler("getresgid")
def sys_getresgid(call):
    c = call.task.creds
    return _write_ids(call, _seen(call, "g", c.rgid, c.egid, c.sgid))


@handler("getgroups")
def sys_getgroups(call):
    size, groups = call.args[0], call.task.creds.groups
    if size < 0:
        raise SyscallError(errno.EINVAL)
    if size == 0:
        return len(groups)
    if size < len(groups):
        raise SyscallError(errno.EINVAL)
    call.write(call.args[1], struct.pack(f"<{len(groups)}I", *_seen(call, "g", *groups)))
    return len(groups)


@handler("setgroups")
@_audited(0)
def sys_setgroups(call):
    size = call.args[0]
    if size < 0:
        raise SyscallError(errno.EINVAL)
    from sentry.kernel.credentials import NGROUPS_MAX
    if size > NGROUPS_MAX:
        raise SyscallError(errno.EINVAL)
    raw = call.read(call.args[1], 4 * size) if size else b""
    creds = call.task.creds
    if creds.userns is not None and not creds.userns.setgroups:
        raise SyscallError(errno.EPERM)      # /proc/<pid>/setgroups says deny
    creds.setgroups([userns.kernel_id(creds, "g", g) for g in struct.unpack(f"<{size}I", raw)])
    return _changed(call)


def _uid_changed(call, ruid):
    """After a set*uid: a new real uid is checked against RLIMIT_NPROC, for
    the next execve (the kernel's flag_nproc_exceeded)."""
    if call.task.creds.ruid != ruid:
        call.kernel.nproc_flag(call.task)
    return _changed(call)


@handler("setuid")
@_audited(1)
def sys_setuid(call):
    ruid = call.task.creds.ruid
    call.task.creds.setuid(*_passed(call, "u", 1))
    return _uid_changed(call, ruid)


@handler("setgid")
@_audited(1)
def sys_setgid(call):
    call.task.creds.setgid(*_passed(call, "g", 1))
    return _changed(call)


@handler("setreuid")
@_audited(2)
def sys_setreuid(call):
    ruid = call.task.creds.ruid
    call.task.creds.setreuid(*_passed(call, "u", 2))
    return _uid_changed(call, ruid)


@handler("setregid")
@_audited(2)
def sys_setregid(call):
    call.task.creds.setregid(*_passed(call, "g", 2))
    return _changed(call)


@handler("setresuid")
@_audited(3)
def sys_setresuid(call):
    ruid = call.task.creds.ruid
    call.task.creds.setresuid(*_passed(call, "u", 3))
    return _uid_changed(call, ruid)


@handler("setresgid")
@_audited(3)
def sys_setresgid(call):
    call.task.creds.setresgid(*_passed(call, "g", 3))
    return _changed(call)


@handler("setfsuid")
@_audited(1)
def sys_setfsuid(call):
    return _setfs(call, "u")


@handler("setfsgid")
@_audited(1)
def sys_setfsgid(call):
    return _setfs(call, "g")


def _setfs(call, kind):
    """setfsuid/setfsgid: an id its namespace does not map changes nothing;
    the old one is returned, as the namespace shows it."""
    creds = call.task.creds
    try:
        kid, = _passed(call, kind, 1)
    except SyscallError:
        return _seen(call, kind, creds.fsuid if kind == "u" else creds.fsgid)[0]
    prev = creds.setfsuid(kid) if kind == "u" else creds.setfsgid(kid)
    _changed(call)
    return _seen(call, kind, prev)[0]


# ---- capabilities (capget(2), capset(2)) -------------------------------------

CAP_V1, CAP_V2, CAP_V3 = 0x19980330, 0x20071026, 0x20080522


def _cap_header(call):
    """(task whose capabilities are meant, number of 32-bit words), or an
    errno; the preferred version is written back on a bad one, as Linux does."""
    version, pid = struct.unpack("<Ii", call.read(call.args[0], 8))
    if version not in (CAP_V1, CAP_V2, CAP_V3):
        call.write(call.args[0], struct.pack("<I", CAP_V3))
        raise SyscallError(errno.EINVAL)
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    task = call.task if pid == 0 else call.kernel.task_of(pid)
    if task is None:
        raise SyscallError(errno.ESRCH)
    return task, 1 if version == CAP_V1 else 2


@handler("capget")
def sys_capget(call):
    task, words = _cap_header(call)
    if not call.args[1]:
        return 0
    c = task.creds
    out = b""
    for w in range(words):
        out += struct.pack("<III", *((v >> (32 * w)) & 0xFFFFFFFF for v in
                                     (c.cap_effective, c.cap_permitted, c.cap_inheritable)))
    call.write(call.args[1], out)
    return 0


@handler("capset")
@_audited(0)
def sys_capset(call):
    version, pid = struct.unpack("<Ii", call.read(call.args[0], 8))
    if version in (CAP_V1, CAP_V2, CAP_V3) and pid not in (0, call.kernel.vtid_of(call.task)):
        raise SyscallError(errno.EPERM)          # only one's own, whether or not pid exists
    task, words = _cap_header(call)
    raw = call.read(call.args[1], 12 * words)
    eff = perm = inh = 0
    for w in range(words):
        e, p, i = struct.unpack_from("<III", raw, 12 * w)
        eff |= e << (32 * w)
        perm |= p << (32 * w)
        inh |= i << (32 * w)
    call.task.creds.capset(eff, perm, inh)
    return _changed(call)


# ---- prctl's credential options (from syscalls/process.py's sys_prctl) -------

PR_GET_KEEPCAPS, PR_SET_KEEPCAPS, PR_CAPBSET_READ, PR_CAPBSET_DROP = 7, 8, 23, 24
PR_GET_SECUREBITS, PR_SET_SECUREBITS, PR_CAP_AMBIENT = 27, 28, 47
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39
PR_CAP_AMBIENT_IS_SET, PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_LOWER, PR_CAP_AMBIENT_CLEAR_ALL = 1, 2, 3, 4
CRED_PRCTLS = (PR_GET_KEEPCAPS, PR_SET_KEEPCAPS, PR_CAPBSET_READ, PR_CAPBSET_DROP,
               PR_GET_SECUREBITS, PR_SET_SECUREBITS, PR_CAP_AMBIENT,
               PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS)


def prctl_creds(call, option):
    """The kernel's cap_task_prctl, on the task's emulated credentials: the
    host's own are empty and locked, and must stay so.  Arguments are
    unsigned long, as the kernel reads them: all 64 bits count."""
    c = call.task.creds
    arg2, arg3, arg4, arg5 = call.args[1:5]
    if option == PR_GET_NO_NEW_PRIVS:
        if arg2 | arg3 | arg4 | arg5:
            raise SyscallError(errno.EINVAL)
        return int(c.no_new_privs)
    if option == PR_SET_NO_NEW_PRIVS:
        # one way: set, never cleared (the host's own is always set)
        if arg2 != 1 or arg3 | arg4 | arg5:
            raise SyscallError(errno.EINVAL)
        c.no_new_privs = True
        return 0
    if option == PR_GET_KEEPCAPS:
        return int(c.secure(SECBIT_KEEP_CAPS))
    if option == PR_GET_SECUREBITS:
        return c.securebits
    if option == PR_CAPBSET_READ:
        if not c.cap_valid(arg2):
            raise SyscallError(errno.EINVAL)
        return c.cap_bounding >> arg2 & 1
    if option == PR_SET_KEEPCAPS:
        c.set_keepcaps(arg2)
    elif option == PR_SET_SECUREBITS:
        c.set_securebits(arg2)
    elif option == PR_CAPBSET_DROP:
        c.bounding_drop(arg2)
    elif arg2 == PR_CAP_AMBIENT_CLEAR_ALL:
        if arg3 | arg4 | arg5:
            raise SyscallError(errno.EINVAL)
        c.cap_ambient = 0
    else:
        if not c.cap_valid(arg3) or arg4 | arg5:
            raise SyscallError(errno.EINVAL)
        if arg2 == PR_CAP_AMBIENT_IS_SET:
            return c.cap_ambient >> arg3 & 1
        if arg2 == PR_CAP_AMBIENT_RAISE:
            c.ambient_raise(arg3)
        elif arg2 == PR_CAP_AMBIENT_LOWER:
            c.cap_ambient &= ~(1 << arg3)
        else:
            raise SyscallError(errno.EINVAL)
    return _changed(call)
