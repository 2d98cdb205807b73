"""Resource limits: the host's are the guest's, but for RLIMIT_CORE and
RLIMIT_NPROC.

The kernel writes a core file itself, into the dying process's cwd, through
no syscall the Sentry sees: on the default root that cwd may be a directory
of the host's own tree (the overlay's lower layer).  So the guest's real
RLIMIT_CORE is 1, soft and hard (0 would still let a core_pattern pipe take
dumps to the host).  RLIMIT_NPROC counts the tasks of a real
uid, and every guest runs as one host uid (root, exempt, or sentry's own,
shared with host processes): the host cannot count the guest's emulated
uids, so the Kernel does (Kernel.nproc_over, at fork, clone and execve).
The limits the guest reads and sets for these two are the sandbox's, kept
per process and inherited at fork as the kernel's are
(`Process.core_limit`, `Process.nproc_limit`).  Their rules are the
kernel's: soft above hard is EINVAL, raising the hard limit EPERM (it
takes CAP_SYS_RESOURCE of the initial user namespace, which no guest
holds).  A process that a core-dumping signal kills still reports the core
Linux would have written with its emulated limit (WCOREDUMP, CLD_DUMPED:
Process.dumps_core).  BPF lets every other resource through (syscalls/table.py).
"""
import errno
import struct

from sentry.kernel.syscall import PASS, Rewrite
from sentry.errors import SyscallError
from syscalls.registry import handler

RLIMIT_CORE, RLIMIT_NPROC = 4, 6
# the emulated resources: Process attribute of each
EMULATED = {RLIMIT_CORE: "core_limit", RLIMIT_NPROC: "nproc_limit"}
RLIMIT = struct.Struct("<QQ")          # rlim_cur, rlim_max (RLIM_INFINITY: all ones)
CAP_SYS_RESOURCE = 24


def _emulated(arg):
    """The Process attribute of an emulated resource, or None."""
    return EMULATED.get(arg)


def _apply(kernel, proc, attr, new):
    soft, hard = new
    if soft > hard:
        raise SyscallError(errno.EINVAL)
    if hard > getattr(proc, attr)[1]:
        raise SyscallError(errno.EPERM)
    setattr(proc, attr, (soft, hard))
    kernel.publish_process(proc)        # the C fast path's wait4 shows its core dumps


@handler("getrlimit", note="RLIMIT_CORE and RLIMIT_NPROC are the sandbox's own")
def sys_getrlimit(call):
    attr = _emulated(call.args[0])
    if attr is None:
        return PASS
    call.write(call.args[1], RLIMIT.pack(*getattr(call.process, attr)))
    return 0


@handler("setrlimit", note="as getrlimit")
def sys_setrlimit(call):
    attr = _emulated(call.args[0])
    if attr is None:
        return PASS
    _apply(call.kernel, call.process, attr, RLIMIT.unpack(call.read(call.args[1], RLIMIT.size)))
    return 0


def _may_change(caller, target):
    """The kernel's check_prlimit_permission, on emulated credentials."""
    if target is None:
        return True
    same = (caller.ruid == target.ruid == target.euid == target.suid and
            caller.rgid == target.rgid == target.egid == target.sgid)
    return same or caller.capable(CAP_SYS_RESOURCE)


@handler("prlimit64", note="the pid must name a sandbox process; RLIMIT_CORE and RLIMIT_NPROC as getrlimit")
def sys_prlimit64(call):
    pid, kernel = call.args[0], call.kernel
    if pid < 0:
        raise SyscallError(errno.ESRCH)
    attr = _emulated(call.args[1])
    if attr is None:
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
    old = getattr(proc, attr)
    if new is not None:
        _apply(kernel, proc, attr, new)
    if old_addr:
        call.write(old_addr, RLIMIT.pack(*old))
    return 0
