"""One error convention for every handler: raise SyscallError(errno)."""
import os


class SyscallError(Exception):
    def __init__(self, err, why=None):
        super().__init__(err)
        self.errno = err
        self.why = why

    def __str__(self):
        return os.strerror(self.errno) + (f" ({self.why})" if self.why else "")
