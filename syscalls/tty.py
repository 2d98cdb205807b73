"""Terminals: which ptys a guest may reach.

The sandbox's ptys live in a devpts instance of its own (fsimpl/kernelfs.py),
so no path names a pty of the host.  Two ways remain that need no path:
TIOCGPTPEER, which opens the slave of a master fd, and /dev/tty, which opens
the caller's controlling terminal -- for the sandbox's first session, the
terminal of whoever ran sentry.
"""
import errno
import fcntl
import functools
import os
import struct

from sentry.host import CONFINED
from sentry.errors import SyscallError
from sentry.fsimpl.kernelfs import TIOCGPTN
from sentry.kernel.syscall import Rewrite
from syscalls.fdutil import is_hidden

PTMX_RDEV = os.makedev(5, 2)
SYS_OPENAT2 = 437
O_ACCMODE, O_NOCTTY, O_NONBLOCK, O_CLOEXEC = 3, 0o400, 0o4000, 0o2000000
O_NOFOLLOW, O_LARGEFILE = 0o400000, 0o100000


def _pts_mount(call):
    m = call.mounts.mounts.get("/dev/pts")
    return m if m is not None and m.kind == "devpts" else None


def pty_peer(call):
    """TIOCGPTPEER: the slave is opened by its name in the sandbox's devpts
    instance instead, after the Sentry has read the master's number on its
    own copy of the fd.  A master that is not the sandbox's (inherited from
    the host) is refused, and whatever a racing thread puts at that fd
    number meanwhile, only a pty of the sandbox's instance can be opened."""
    fd = call.fd(0)
    if fd < 0 or is_hidden(fd):
        raise SyscallError(errno.EBADF)
    pts = _pts_mount(call)
    dup = call.kernel.borrow_fd(call.process, fd)
    try:
        st = os.fstat(dup)
        if pts is None or not pts.owns(st) or st.st_rdev != PTMX_RDEV:
            # a master of the host's: refused; anything else is no master
            raise SyscallError(errno.EPERM if st.st_rdev == PTMX_RDEV else errno.ENOTTY)
        (n,) = struct.unpack("i", fcntl.ioctl(dup, TIOCGPTN, b"\0" * 4))
    except OSError as e:
        raise SyscallError(e.errno)
    finally:
        os.close(dup)
    flags = (call.args[2] & (O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) | O_NOFOLLOW | O_LARGEFILE
    how = struct.pack("<QQQ", flags, 0, CONFINED)
    path_addr, how_addr = call.stage(b"%d\0" % n, how)
    return Rewrite(SYS_OPENAT2, {0: pts.guest_fd, 1: path_addr, 2: how_addr, 3: len(how)})


TIOCGSID = 0x5429


@functools.cache
def _host_terminal():
    """(session, handed over) of the terminal sentry runs under: its session
    id, and whether sentry's stdin, stdout or stderr is that terminal -- the
    user gave it to the guest -- or the guest only inherited it as its
    controlling terminal.  TIOCGSID answers only on the controlling terminal
    of a session: device numbers would not do, every devpts instance has its
    own /dev/pts/0."""
    session = os.getsid(0)
    handed = False
    for fd in (0, 1, 2):
        try:
            (sid,) = struct.unpack("i", fcntl.ioctl(fd, TIOCGSID, b"\0" * 4))
        except OSError:
            continue
        handed = handed or sid == session
    return session, handed


def _stat_fields(pid):
    """/proc/<pid>/stat after the command name: state, ppid, pgrp, session…"""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()


def check_controlling_terminal(call):
    """open("/dev/tty"): in sentry's own session the controlling terminal is
    the host's; it is the guest's only if sentry gave it on stdin, stdout or
    stderr, else the guest has none (ENXIO, as Linux without one).  A guest
    that made a session of its own can only have a terminal it holds."""
    session, handed = _host_terminal()
    if handed:
        return
    try:
        mine = int(_stat_fields(call.tid)[3])
    except (OSError, IndexError, ValueError):
        raise SyscallError(errno.ESRCH)
    if mine == session:
        raise SyscallError(errno.ENXIO)
