"""Writes to the sandbox's network settings that the kernel lets only a holder
of CAP_NET_ADMIN over the namespace make (IPv4 forwarding: fsimpl/proc.py
NET_ADMIN_SETTINGS), and, run unprivileged, to every one of them (the
guest's host identity is then no root of the namespace's owner: the kernel
would let it write none; fsimpl/proc.py helper_writes).

The guest reads and writes its /proc/sys/net through the kernel's own files
of the sandbox's namespace (live files), and the kernel checks most settings
by the file's mode alone; these few it checks again at the write, against
the writer's capabilities over the namespace, which the guest's host process
never holds (by design: docs/design.md, Network).  So an fd opened for
writing on one gets its write calls trapped (kernel/fdtraps.py, on that
number and its copies), and for a guest holding the emulated CAP_NET_ADMIN,
as a root of its own network namespace does on Linux, the namespace helper
writes the guest's bytes on the Sentry's copy of the open file (the same
open file description: its offset moves as the guest's own write would move
it) after checking that the file is that setting of its namespace; the
guest's call gets the kernel's answer.  Anything else -- another file at
that number now (a racing dup2), no CAP_NET_ADMIN, a read-only fd, pwritev2
flags, more than WRITE_MAX bytes -- runs as the guest's own call, and the
kernel answers it (EPERM for the setting).  The fd number is used once, to
take the Sentry's copy; nothing later names it.

Not trapped: sendfile, splice, copy_file_range or AIO into such an fd, and a
copy sent to another process: those writes stay the kernel's EPERM.
"""
import errno
import os

from sentry.errors import SyscallError
from sentry.kernel import fdtraps
from sentry.kernel.syscall import PASS
from sentry.net.links import CAP_NET_ADMIN
from syscalls.fdutil import Borrowed

WRITE_MAX = 65536            # a setting's text is a few bytes; a longer write is the kernel's to refuse


def write(call, chunks, offset=None):
    """The guest's write of `chunks` ([(address, length)]) on its fd arg 0
    (at `offset`, or its file position), or PASS (syscalls/writes.py)."""
    fd = call.args[0] & 0xFFFFFFFF            # an unsigned long for writev and pwritev: fdget takes an int
    try:
        if not fdtraps.helper_written(call.host_fd_path(fd)):
            return PASS                       # another file: the number was reused (or --strace)
    except SyscallError:
        return PASS                           # closed: the kernel's EBADF
    mountns = call.kernel.mountns
    if mountns is None or not call.task.creds.capable(CAP_NET_ADMIN):
        return PASS
    total = sum(n for _, n in chunks)
    if total > WRITE_MAX or any(n < 0 for _, n in chunks):
        return PASS
    with Borrowed(call, fd) as b:
        host = os.readlink(f"/proc/self/fd/{b.fd}")
        if not fdtraps.helper_written(host) or b.flags & os.O_ACCMODE not in (os.O_WRONLY, os.O_RDWR):
            return PASS
        if b.flags & os.O_APPEND and offset is not None:
            offset = None                     # pwrite on O_APPEND appends, as Linux
        data = b"".join(call.read(addr, n) for addr, n in chunks if n)
        try:
            return mountns.write_setting(b.fd, host[len("/proc/sys/"):], data, offset)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO)
