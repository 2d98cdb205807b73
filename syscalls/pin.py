"""Pinning: a sandbox file named by a magic link no guest thread can
retarget, for a call that must run in the guest's own context and that the
kernel looks up by path (a unix connect or datagram send; chdir).

Such a call can be given neither the file's path (the kernel would look it
up again, and a racing thread could swap a component for a symlink) nor an
fd number in the guest's own table (another thread could dup2 a host object
onto it between the Sentry's check and the kernel's use).  So the Sentry
opens the file itself, confined to its mount, hands it to the fd holder
(platform/fdholder.py), and the call names /proc/<holder>/fd/<n>: the holder's
table changes only at the Sentry's word.  The pin lasts until the call
returns (release, from its on_exit); a call the kernel restarts traps again
and pins again.
"""
import errno
import logging
import os

from sentry.errors import SyscallError
from sentry.vfs.mount import open_final

log = logging.getLogger("sentry")


def pinned(call, loc):
    """The path (bytes, for the staging page) that names loc's very file."""
    kernel = call.kernel
    kernel.unpin(call.task)
    fd = open_final(loc)
    try:
        n = kernel.fd_holder.hold(fd)
    except OSError as e:
        log.error("the fd holder failed: %s", e)
        raise SyscallError(errno.ENOENT)        # fails closed
    finally:
        os.close(fd)
    call.task.pin = n
    return kernel.fd_holder.path(n)


def release(kernel, task):
    """The task's call returned: the holder lets the file go."""
    kernel.unpin(task)
