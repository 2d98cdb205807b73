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
import struct

from sentry.platform import staging
from sentry.vfs.mountns import SHMMAX
from sentry.kernel.syscall import PASS, Rewrite
from sentry.errors import SyscallError
from syscalls.registry import handler

CALLS = ("shmget shmat shmdt shmctl semget semop semtimedop semctl msgget msgsnd msgrcv msgctl "
         "mq_open mq_unlink").split()


def _need_namespace(call):
    """ENOSYS without the sandbox's own IPC namespace: the host's objects
    stay out of reach, as on a kernel built without System V IPC."""
    if not call.kernel.private_ipc:
        raise SyscallError(errno.ENOSYS)


@handler(*[c for c in CALLS if c not in ("shmat", "msgctl", "shmctl", "semctl")],
         note="the sandbox's own IPC namespace: untrapped; ENOSYS where the Sentry has none "
              "(unprivileged, no user namespaces)")
def sys_ipc(call):
    _need_namespace(call)
    return PASS


# Where the kernel's answers name a process (by its host pid, the guest's
# being the host's): the byte offsets of the pid_t fields in the buffer at
# argument 2, or for semctl's GETPID the result itself.
IPC_STAT, MSG_STAT, MSG_STAT_ANY, SHM_STAT, SHM_STAT_ANY, GETPID = 2, 11, 13, 13, 15, 11
MSQID_PIDS = (96, 100)          # struct msqid64_ds: msg_lspid, msg_lrpid
SHMID_PIDS = (80, 84)           # struct shmid64_ds: shm_cpid, shm_lpid


def _pids_translated(call, addr, offsets):
    def done(task, result):
        if result < 0 or not addr:
            return None
        try:
            raw = bytearray(call.read(addr, offsets[-1] + 4))
            for off in offsets:
                host = struct.unpack_from("<i", raw, off)[0]
                struct.pack_into("<i", raw, off, call.kernel.vpid(host) if host > 0 else host)
            call.write(addr, bytes(raw))
        except SyscallError:
            pass
        return None
    return done


@handler("msgctl", "shmctl", note="as shmget; IPC_STAT and *_STAT name processes by virtual pid")
def sys_ipc_ctl(call):
    _need_namespace(call)
    cmd = call.args[1]
    msg = call.kernel.table.entries[call.nr].name == "msgctl"
    stats = (IPC_STAT, MSG_STAT, MSG_STAT_ANY) if msg else (IPC_STAT, SHM_STAT, SHM_STAT_ANY)
    if cmd not in stats:
        return PASS
    return Rewrite(on_exit=_pids_translated(call, call.args[2], MSQID_PIDS if msg else SHMID_PIDS))


@handler("semctl", note="as shmget; GETPID answers a virtual pid")
def sys_semctl(call):
    _need_namespace(call)
    if call.args[2] != GETPID:
        return PASS
    return Rewrite(on_exit=lambda task, result: call.kernel.vpid(result) if result > 0 else None)


@handler("shmat", note="as shmget; an address less than a terabyte below the staging area, or in it, "
         "is EINVAL (no segment is larger: the mapping could reach the area); unprivileged, where "
         "that limit cannot be set, any address below the area's end")
def sys_shmat(call):
    _need_namespace(call)
    addr = call.args[1]
    low = staging.BASE - SHMMAX if call.kernel.shm_capped else 0
    if addr and low <= addr < staging.BASE + staging.SIZE:
        raise SyscallError(errno.EINVAL)
    return PASS      # under --strace: as BPF would have
