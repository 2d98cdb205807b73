"""Fd borrowing: a handler that must act on the object behind a guest's fd
(not on a number another thread can swap) takes a duplicate of its own.
"""
import errno
import os

from sentry._native import lib
from sentry.errors import SyscallError
from sentry.vfs.mount import is_hidden_fd


class FdBorrowing:
    """The Kernel's access to guest fds."""

    def borrow_fd(self, process, fd, hidden_ok=False):
        """A Sentry-side duplicate of a guest fd (pidfd_getfd); caller closes it.
        The Sentry's own hidden fds are EBADF here unless the caller says it
        put one there itself (syscalls/locks.py's slots): a guest call naming
        one (statx(1000, "", AT_EMPTY_PATH)) must not reach it."""
        if is_hidden_fd(fd) and not hidden_ok:
            raise SyscallError(errno.EBADF)
        pidfd = os.pidfd_open(process.tgid)
        try:
            r = lib.sn_pidfd_getfd(pidfd, fd)
        finally:
            os.close(pidfd)
        if r < 0:
            raise SyscallError(-r)
        return r
