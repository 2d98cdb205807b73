"""Process creation and the calls that name another process by pid.

fork, vfork and ordinary clone(2) flags are ALLOWed in BPF and followed with
PTRACE_O_TRACE{FORK,VFORK,CLONE}; only the flags BPF refuses reach here.  A
pid argument must name a sandbox process (or be 0, the caller): a host pid is
ESRCH, as if it did not exist.
"""
import errno
import os

from syscalls.call import sint
from syscalls.errors import SyscallError
from syscalls.registry import PASS, handler

CLONE_UNTRACED = 0x00800000


@handler("clone", support="partial",
         note="CLONE_UNTRACED and CLONE_NEW* namespaces are refused (EPERM)")
def sys_clone(call):
    raise SyscallError(errno.EPERM)


@handler("getpgid", "prlimit64", "sched_setaffinity", "sched_getaffinity", "sched_setparam",
         "sched_getparam", "sched_setscheduler", "sched_getscheduler", "sched_rr_get_interval",
         "sched_setattr", "sched_getattr", "process_vm_readv", "process_vm_writev",
         "migrate_pages", "move_pages", note="the pid must name a sandbox process")
def sys_pid_first(call):
    """Calls whose first argument is a pid (0: the caller)."""
    pid = sint(call.args[0])
    if pid == 0:
        return PASS
    if pid < 0 or not call.kernel.in_sandbox(pid, task=True):
        raise SyscallError(errno.ESRCH)
    return PASS


@handler("kcmp")
def sys_kcmp(call):
    for i in (0, 1):
        if not call.kernel.in_sandbox(sint(call.args[i])):
            raise SyscallError(errno.ESRCH)
    return PASS


PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2


def _prio_target(call, which, who):
    if which == PRIO_PROCESS:
        if who and not call.kernel.in_sandbox(who, task=True):
            raise SyscallError(errno.ESRCH)
    elif which == PRIO_PGRP:
        if who and not call.kernel.in_sandbox(who, group=True):
            raise SyscallError(errno.ESRCH)
    elif which == PRIO_USER:
        # "every process of this uid" includes the host's
        raise SyscallError(errno.EPERM)
    else:
        raise SyscallError(errno.EINVAL)


@handler("getpriority", "setpriority", support="partial", note="PRIO_USER is refused: it would reach host processes")
def sys_priority(call):
    _prio_target(call, sint(call.args[0]), sint(call.args[1]))
    return PASS


IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3


@handler("ioprio_get", "ioprio_set", support="partial", note="IOPRIO_WHO_USER is refused")
def sys_ioprio(call):
    _prio_target(call, sint(call.args[0]) - 1, sint(call.args[1]))
    return PASS


@handler("setpgid", note="a process may only join a process group of the sandbox")
def sys_setpgid(call):
    pid, pgid = sint(call.args[0]), sint(call.args[1])
    if pid < 0 or pgid < 0:
        raise SyscallError(errno.EINVAL)
    target = pid or call.process.tgid
    if not call.kernel.in_sandbox(target):
        raise SyscallError(errno.ESRCH)
    if pgid and pgid != target and not call.kernel.in_sandbox(pgid, group=True):
        raise SyscallError(errno.EPERM)
    return PASS


SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER = 1, 1 << 3


@handler("seccomp", support="partial",
         note="a guest's own filters stack under the Sentry's; a user-notification listener is refused (EBUSY)")
def sys_seccomp(call):
    # A SECCOMP_RET_USER_NOTIF filter outranks the Sentry's RET_TRACE, and its
    # supervisor could answer "continue": the call would run untrapped.  The
    # flags are in a register: the check holds.
    if call.args[0] == SECCOMP_SET_MODE_FILTER and call.args[1] & SECCOMP_FILTER_FLAG_NEW_LISTENER:
        raise SyscallError(errno.EBUSY)
    return PASS
