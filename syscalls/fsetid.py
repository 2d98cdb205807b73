"""CAP_FSETID: a write by a holder keeps a file's set-user-ID and
set-group-ID bits, as on Linux for root (LTP openat03).

The host kernel clears them at every write, truncate or fallocate of the
guest's host process, which holds no capability.  So an fd a holder opens
for writing on a file with either bit (or creates with them: O_CREAT,
O_TMPFILE) gets those calls trapped (kernel/fdtraps.py: that fd number and
its copies); a trapped call runs as the guest's own, and at its exit the
Sentry puts back the bits the kernel cleared, on its own copy of the fd --
only if nothing else of the mode changed meanwhile.  A guest without the
capability is not trapped: the kernel clears them, as Linux does for it.

Windows left: between the kernel's clearing and the Sentry's restoring,
another process sees the file without the bits; a write through the fd
before its filter is loaded (just after the open, by another thread), or
through a copy sent to another process, or through a writable mapping,
clears them for good; an fd opened before the bits were set (a later
chmod) is not trapped.
"""
import os
import stat

from sentry.errors import SyscallError
from sentry.kernel import fdtraps
from sentry.kernel.credentials import CAP_FSETID
from sentry.kernel.syscall import PASS, Rewrite
from syscalls.registry import handler

SYS_FTRUNCATE, SYS_FALLOCATE = 77, 285
TRAPS = fdtraps.SETTING_TRAPS + [SYS_FTRUNCATE, SYS_FALLOCATE]
SETID = stat.S_ISUID | stat.S_ISGID


def cleared_on_write(mode):
    """The bits a write by a process without CAP_FSETID clears (the
    kernel's should_remove_suid): set-user-ID, and set-group-ID with group
    execute (without it, it marks mandatory locking and stays)."""
    bits = mode & stat.S_ISUID
    if mode & (stat.S_ISGID | stat.S_IXGRP) == stat.S_ISGID | stat.S_IXGRP:
        bits |= stat.S_ISGID
    return bits


def wants_traps(creds, mode):
    """Whether an fd a task with `creds` opens for writing on a regular
    file of mode `mode` (or creates with it) needs the traps."""
    return bool(stat.S_ISREG(mode) and cleared_on_write(mode)) and creds is not None \
        and creds.capable(CAP_FSETID)


def trapped_on_open(call, then=None):
    """An on_exit for an open that `wants_traps`: the fd's writes trap from
    then on (after `then`, the open's own on_exit, if any)."""
    call.slot()                          # the exit stop stages the filter
    kernel = call.kernel

    def opened(task, result):
        new = then(task, result) if then else None
        if (result if new is None else new) >= 0:
            fdtraps.trap_after(kernel, task, result, TRAPS, result if new is None else new, vital=False)
        return new
    return opened


def _setid_file(path):
    try:
        return cleared_on_write(os.stat(path).st_mode) != 0
    except OSError:
        return False


# a copy of a trapped fd (dup) is trapped too, if its file still has a bit to keep
fdtraps.CLASSIFIERS.append(lambda kernel, path: TRAPS if path.startswith("/") and _setid_file(path) else None)


def write(call, chunks=None, offset=None):
    """A trapped write, truncate or fallocate on fd arg 0 (syscalls/writes.py,
    and the handlers below): run as the guest's own, then the bits it
    cleared put back; PASS for any other file now at that number."""
    creds = call.task.creds
    if creds is None or not creds.capable(CAP_FSETID):
        return PASS
    try:
        fd = call.kernel.borrow_fd(call.process, call.fd(0))
    except SyscallError:
        return PASS                      # closed: the kernel's EBADF
    try:
        before = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        return PASS
    if not stat.S_ISREG(before) or not cleared_on_write(before):
        os.close(fd)
        return PASS

    def restore(task, result):
        try:
            now = os.fstat(fd).st_mode
            lost = before & ~now & SETID
            if lost and now | lost == before:        # only the bits the write cleared
                os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(before))
        except OSError:
            pass                                    # the bits stay cleared
        finally:
            os.close(fd)
        return None
    return Rewrite(on_exit=restore)


NOTE = ("allowed in BPF; trapped only on fds a process filter names: a set-id file a CAP_FSETID holder "
        "opened for writing, whose bits the Sentry keeps (syscalls/fsetid.py)")


@handler("ftruncate", "fallocate", note=NOTE)
def sys_truncating(call):
    return write(call)
