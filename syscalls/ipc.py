"""System V IPC and POSIX message queues: the sandbox's own.

The guest's processes live in a private IPC namespace that the namespace
helper made (sentry/vfs/mountns.py), so shared memory, semaphores, message
queues and mq_open's queues are the sandbox's alone: keys and ids name
nothing of the host's or of another sandbox, and `ipcs` lists the
sandbox's.  BPF lets these calls run untrapped then, at native speed
(syscalls/table.py, filter_rules); these handlers serve them only when they
trap anyway: under --strace (PASS, as BPF would have), or with no private
namespace (an unprivileged Sentry without user namespaces), where the
host's objects must stay out of reach: ENOSYS, as a kernel built without
System V IPC answers, so that programs fall back.
"""
import errno

from sentry.platform import staging
from sentry.vfs.mountns import SHMMAX
from sentry.kernel.syscall import PASS
from sentry.errors import SyscallError
from syscalls.registry import handler

CALLS = ("shmget shmat shmdt shmctl semget semop semtimedop semctl msgget msgsnd msgrcv msgctl "
         "mq_open mq_unlink").split()


@handler(*[c for c in CALLS if c != "shmat"], note="the sandbox's own IPC namespace: untrapped; "
         "ENOSYS where the Sentry has none (unprivileged, no user namespaces)")
def sys_ipc(call):
    if call.kernel.private_ipc:
        return PASS
    raise SyscallError(errno.ENOSYS)


@handler("shmat", note="as shmget; an address less than a terabyte below the staging area, or in it, "
         "is EINVAL (no segment is larger: the mapping could reach the area); unprivileged, where "
         "that limit cannot be set, any address below the area's end")
def sys_shmat(call):
    if not call.kernel.private_ipc:
        raise SyscallError(errno.ENOSYS)
    addr = call.args[1]
    low = staging.BASE - SHMMAX if call.kernel.shm_capped else 0
    if addr and low <= addr < staging.BASE + staging.SIZE:
        raise SyscallError(errno.EINVAL)
    return PASS      # under --strace: as BPF would have
