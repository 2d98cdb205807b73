"""One error convention for every layer: raise SyscallError(errno).

A leaf: it imports nothing of the project, so every layer can raise it.
"""
import errno
import os


class SyscallError(Exception):
    def __init__(self, err, why=None):
        # an OSError from a library may carry no errno at all ("AF_UNIX path
        # too long"): the guest still gets a number
        err = err if isinstance(err, int) and err > 0 else errno.EINVAL
        super().__init__(err)
        self.errno = err
        self.why = why

    def __str__(self):
        return os.strerror(self.errno) + (f" ({self.why})" if self.why else "")


# ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK: a call
# interrupted by a signal that the kernel will run again (or restart_syscall)
RESTART_ERRNOS = (512, 513, 514, 516)
