"""The kill family: a guest signals sandbox processes only, never the host.

A target outside the sandbox is ESRCH, as if it did not exist.  kill(-1) and
kill(0) are carried out by the Sentry itself on the sandbox's own processes,
because the host kernel's notion of "every process I may signal" or "my process
group" can include host processes (the guest may share the Sentry's group).
"""
import errno
import os

from syscalls.call import sint
from syscalls.errors import SyscallError
from syscalls.registry import PASS, handler

NSIG = 65


def _check_sig(sig):
    if sig < 0 or sig >= NSIG:
        raise SyscallError(errno.EINVAL)


def _signal_each(call, sig, wanted, none_is_esrch=True):
    """Signal every sandbox process wanted(tgid) picks; ESRCH if none (as
    for a process group)."""
    sent = 0
    for tgid in call.kernel.visible_pids():
        try:
            if wanted(tgid):
                if sig:
                    os.kill(call.kernel.host_pid(tgid), sig)
                sent += 1
        except ProcessLookupError:
            pass                               # gone meanwhile
    if not sent and none_is_esrch:
        raise SyscallError(errno.ESRCH)
    return 0


@handler("kill")
def sys_kill(call):
    pid, sig = sint(call.args[0]), sint(call.args[1])
    _check_sig(sig)
    if pid > 0:
        if not call.kernel.in_sandbox(pid):
            raise SyscallError(errno.ESRCH)
        return PASS
    if pid == -1:
        # every process but the caller and the sandbox's init
        skip = (call.kernel.init.tgid, call.process.tgid)
        return _signal_each(call, sig, lambda tgid: tgid not in skip, none_is_esrch=False)
    pgid = os.getpgid(call.process.tgid) if pid == 0 else -pid
    return _signal_each(call, sig, lambda tgid: os.getpgid(call.kernel.host_pid(tgid)) == pgid)


@handler("tkill")
def sys_tkill(call):
    _check_sig(sint(call.args[1]))
    if not call.kernel.is_sandbox_task(sint(call.args[0])):
        raise SyscallError(errno.ESRCH)
    return PASS


@handler("tgkill")
def sys_tgkill(call):
    _check_sig(sint(call.args[2]))
    tgid, tid = sint(call.args[0]), sint(call.args[1])
    if not call.kernel.in_sandbox(tgid) or not call.kernel.is_sandbox_task(tid):
        raise SyscallError(errno.ESRCH)
    return PASS


@handler("rt_sigqueueinfo")
def sys_rt_sigqueueinfo(call):
    if not call.kernel.in_sandbox(sint(call.args[0])):
        raise SyscallError(errno.ESRCH)
    return PASS


@handler("rt_tgsigqueueinfo")
def sys_rt_tgsigqueueinfo(call):
    if not call.kernel.in_sandbox(sint(call.args[0])) or not call.kernel.is_sandbox_task(sint(call.args[1])):
        raise SyscallError(errno.ESRCH)
    return PASS


@handler("pidfd_open")
def sys_pidfd_open(call):
    if not call.kernel.in_sandbox(sint(call.args[0])):
        raise SyscallError(errno.ESRCH)
    return PASS
