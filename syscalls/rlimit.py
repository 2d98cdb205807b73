"""Resource limits: the host's are the guest's, but for RLIMIT_CORE.

The kernel writes a core file itself, into the dying process's cwd, through
no syscall the Sentry sees: on the default root that cwd may be a directory
of the host's own tree (the overlay's lower layer).  So the guest's real
RLIMIT_CORE is 0, soft and hard, and the one it reads and sets is the
sandbox's, kept per process and inherited at fork as the kernel's is
(`Process.core_limit`).  Its rules are the kernel's: soft above hard is
EINVAL, raising the hard limit EPERM (it takes CAP_SYS_RESOURCE of the
initial user namespace, which no guest holds).  BPF lets every other
resource through (syscalls/table.py).
"""
import errno
import struct

from syscalls.call import sint
from syscalls.errors import SyscallError
from syscalls.registry import PASS, Rewrite, handler

RLIMIT_CORE = 4
RLIMIT = struct.Struct("<QQ")          # rlim_cur, rlim_max (RLIM_INFINITY: all ones)
CAP_SYS_RESOURCE = 24


def _apply(proc, new):
    soft, hard = new
    if soft > hard:
        raise SyscallError(errno.EINVAL)
    if hard > proc.core_limit[1]:
        raise SyscallError(errno.EPERM)
    proc.core_limit = (soft, hard)


@handler("getrlimit", note="RLIMIT_CORE is the sandbox's own (the host's stays 0)")
def sys_getrlimit(call):
    if call.args[0] & 0xFFFFFFFF != RLIMIT_CORE:
        return PASS
    call.write(call.args[1], RLIMIT.pack(*call.process.core_limit))
    return 0


@handler("setrlimit", note="as getrlimit")
def sys_setrlimit(call):
    if call.args[0] & 0xFFFFFFFF != RLIMIT_CORE:
        return PASS
    _apply(call.process, RLIMIT.unpack(call.read(call.args[1], RLIMIT.size)))
    return 0


def _may_change(caller, target):
    """The kernel's check_prlimit_permission, on emulated credentials."""
    if target is None:
        return True
    same = (caller.ruid == target.ruid == target.euid == target.suid and
            caller.rgid == target.rgid == target.egid == target.sgid)
    return same or caller.capable(CAP_SYS_RESOURCE)


@handler("prlimit64", note="the pid must name a sandbox process; RLIMIT_CORE as getrlimit")
def sys_prlimit64(call):
    pid, kernel = sint(call.args[0]), call.kernel
    if pid < 0:
        raise SyscallError(errno.ESRCH)
    if call.args[1] & 0xFFFFFFFF != RLIMIT_CORE:
        if pid == 0:
            return PASS
        return Rewrite(args={0: kernel.host_id(pid, task=True)}, restore=True)
    proc = call.process
    if pid:
        task = kernel.tasks.get(kernel.host_id(pid, task=True))
        if task is None:
            raise SyscallError(errno.ESRCH)           # a zombie
        proc = task.process
        if proc is not call.process and not _may_change(call.task.creds, kernel.creds_of(proc.tgid)):
            raise SyscallError(errno.EPERM)
    new_addr, old_addr = call.args[2], call.args[3]
    new = RLIMIT.unpack(call.read(new_addr, RLIMIT.size)) if new_addr else None
    old = proc.core_limit
    if new is not None:
        _apply(proc, new)
    if old_addr:
        call.write(old_addr, RLIMIT.pack(*old))
    return 0
