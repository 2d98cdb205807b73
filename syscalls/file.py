"""The open family, and the fd-level calls that still need a check.

open* is a rewrite: the Sentry resolves the path, stages the confined relative
path and an `open_how` in the thread's staging slot, and the host kernel runs
`openat2(<mount's hidden fd>, path, how)` in the guest's own context, so the
new fd is a real host fd and reads and writes on it run natively.
"""
import errno
import os
import stat
import struct

from sentry.platform import staging
from sentry.vfs.mount import CONFINED, HIDDEN_FD_BASE, MAX_MOUNTS, O_PATH
from sentry.vfs.resolve import UnnamedTarget
from syscalls.call import AT_FDCWD, sint
from syscalls.errors import SyscallError
from syscalls.lookup import fd_sandbox_path, lookup
from syscalls import tty
from syscalls.registry import PASS, Rewrite, handler

SYS_OPENAT2 = 437
O_ACCMODE, O_WRONLY, O_RDWR = 3, 1, 2
O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 0o100, 0o200, 0o1000, 0o2000
O_DIRECTORY, O_NOFOLLOW, O_LARGEFILE = 0o200000, 0o400000, 0o100000
O_TMPFILE = 0o20000000 | O_DIRECTORY
# every flag openat(2) honours; openat2(2) rejects the rest, openat ignores them
VALID_FLAGS = 0o37777777 & ~0o10000000000 | O_PATH
O_PATH_FLAGS = O_PATH | O_DIRECTORY | O_NOFOLLOW | 0o2000000   # | O_CLOEXEC


def is_hidden(fd):
    return HIDDEN_FD_BASE <= fd < HIDDEN_FD_BASE + MAX_MOUNTS


def wants_write(flags):
    return (flags & O_ACCMODE) != 0 or flags & (O_TRUNC | (O_TMPFILE & ~O_DIRECTORY))


def open_rewrite(call, dirfd, path, flags, mode):
    flags &= VALID_FLAGS
    creat = flags & O_CREAT and not flags & O_PATH
    tmpfile = (flags & O_TMPFILE) == O_TMPFILE
    follow = not (flags & O_NOFOLLOW) and not (creat and flags & O_EXCL)
    try:
        loc = lookup(call, dirfd, path, follow=follow, must_exist=not creat)
    except UnnamedTarget as unnamed:
        return _reopen_unnamed(call, unnamed, flags)
    if path.endswith(b"/") and creat and not loc.exists:
        raise SyscallError(errno.EISDIR)
    if loc.exists and stat.S_ISLNK(loc.st.st_mode) and not flags & O_PATH:
        raise SyscallError(errno.ELOOP)
    if loc.mount.kind == "dev" and loc.rel == "tty":
        tty.check_controlling_terminal(call)
    if (creat and not loc.exists) or tmpfile:
        loc.mount.check_writable()
    elif wants_write(flags):
        loc.mount.check_content_writable(loc.rel)
    if creat or tmpfile:
        mode &= 0o7777
    else:
        mode = 0
    if flags & O_PATH:
        flags &= O_PATH_FLAGS          # openat ignores the rest; openat2 rejects it
    else:
        flags |= O_LARGEFILE           # openat forces it on 64-bit; openat2 does not
    how = struct.pack("<QQQ", flags, mode, CONFINED)
    path_addr, how_addr = call.stage(os.fsencode(loc.rel) + b"\0", how)
    return Rewrite(SYS_OPENAT2, {0: loc.mount.guest_fd, 1: path_addr, 2: how_addr, 3: len(how)})


F_DUPFD, F_DUPFD_CLOEXEC = 0, 1030
SYS_FCNTL = 72


def _reopen_unnamed(call, unnamed, flags):
    """/proc/self/fd/N (so /dev/fd/N, /dev/stdin) of a pipe or socket has no
    path to reopen; Linux reopens the object itself.  The closest safe form is
    a dup of N: it is named by a register, so a racing thread that puts a file
    at N gets that file with the access it was opened with, never more (a
    reopen through the magic link could upgrade a read-only file to writable)."""
    if unnamed.pid != call.process.tgid:
        raise SyscallError(errno.EACCES)
    return Rewrite(SYS_FCNTL, {0: unnamed.fd, 1: F_DUPFD_CLOEXEC if flags & os.O_CLOEXEC else F_DUPFD, 2: 0})


@handler("open")
def sys_open(call):
    return open_rewrite(call, AT_FDCWD, call.path(0), sint(call.args[1]), call.args[2])


@handler("creat")
def sys_creat(call):
    return open_rewrite(call, AT_FDCWD, call.path(0), O_CREAT | O_WRONLY | O_TRUNC, call.args[1])


@handler("openat")
def sys_openat(call):
    return open_rewrite(call, call.fd(0), call.path(1), sint(call.args[2]), call.args[3])


@handler("openat2", support="partial",
         note="the guest's own RESOLVE_* flags are accepted but not enforced beyond the sandbox's confinement")
def sys_openat2(call):
    size = call.args[3]
    if size < 24:
        raise SyscallError(errno.EINVAL)
    flags, mode, resolve = struct.unpack("<QQQ", call.read(call.args[2], 24))
    if flags & ~(VALID_FLAGS | O_LARGEFILE) or resolve & ~0x3F:
        raise SyscallError(errno.EINVAL)
    if mode and not flags & (O_CREAT | O_TMPFILE):
        raise SyscallError(errno.EINVAL)
    dirfd, path = call.fd(0), call.path(1)
    if is_hidden(dirfd) and staging.BASE <= call.args[1] < staging.BASE + staging.SIZE:
        # Our own rewritten open, restarted after a signal (ERESTARTSYS): only
        # the Sentry can have put its path in the staging area.
        mount = call.kernel.mounts.by_guest_fd(dirfd)
        dirfd, path = AT_FDCWD, os.fsencode(mount.path.rstrip("/")) + b"/" + path
    return open_rewrite(call, dirfd, path, flags, mode)


# ---- fds the Sentry keeps in every guest are invisible -----------------------

@handler("close", note="fds of the Sentry (>= %d) look closed" % HIDDEN_FD_BASE)
def sys_close(call):
    fd = sint(call.args[0])
    if fd < 0 or is_hidden(fd):
        raise SyscallError(errno.EBADF)
    return PASS


@handler("dup2", "dup3")
def sys_dup2(call):
    if is_hidden(sint(call.args[1])) or is_hidden(sint(call.args[0])):
        raise SyscallError(errno.EBADF)
    return PASS


def not_hidden(call):
    """A call on one fd (arg 0): the Sentry's own look closed."""
    if is_hidden(call.fd(0)):
        raise SyscallError(errno.EBADF)
    return PASS


handler("dup", "fstat", "fstatfs", "fchdir", note="the Sentry's fds (>= %d) look closed" % HIDDEN_FD_BASE)(not_hidden)


@handler("close_range", support="partial",
         note="a range over the Sentry's fds closes only the guest's fds below them")
def sys_close_range(call):
    first, last = call.args[0] & 0xFFFFFFFF, call.args[1] & 0xFFFFFFFF
    if first > last:
        raise SyscallError(errno.EINVAL)
    if first >= HIDDEN_FD_BASE + MAX_MOUNTS or last < HIDDEN_FD_BASE:
        return PASS
    if first >= HIDDEN_FD_BASE:
        return 0
    return Rewrite(args={1: HIDDEN_FD_BASE - 1})


# ---- fd-level calls whose target must be checked -------------------------------

def fd_mount(call, fd):
    """The mount the file behind fd lives on (a deleted one too: its mount
    still decides whether it may be changed)."""
    try:
        spath = fd_sandbox_path(call, fd, deleted_ok=True)
    except SyscallError:
        return None      # pipes, sockets, anonymous inodes: not on a mount
    try:
        return call.kernel.mounts.locate(spath)[0]
    except SyscallError:
        return None


def check_fd_writable(call, fd):
    """EROFS when fd is a file whose attributes may not change (fchmod,
    fchown…): on a read-only mount, or a device node of /dev."""
    if is_hidden(fd):
        raise SyscallError(errno.EBADF)
    m = fd_mount(call, fd)
    if m is not None:
        m.check_writable()


def _writable_fd(call):
    check_fd_writable(call, call.fd(0))
    return PASS


handler("fchmod", "fchown", "fsetxattr", "fremovexattr",
        note="refused with EROFS on a read-only mount")(_writable_fd)


@handler("ioctl", note="TIOCSTI, TIOCLINUX refused; TIOCGPTPEER opens the slave by name in the sandbox's devpts")
def sys_ioctl(call):
    req = call.args[1] & 0xFFFFFFFF
    if req in (0x5412, 0x541C):      # TIOCSTI, TIOCLINUX
        raise SyscallError(errno.EPERM)
    if req == tty.TIOCGPTPEER:
        return tty.pty_peer(call)
    return PASS


@handler("fcntl", support="partial", note="F_SETOWN to a process outside the sandbox is refused")
def sys_fcntl(call):
    not_hidden(call)
    cmd = call.args[1] & 0xFFFFFFFF
    if cmd == 8:       # F_SETOWN: pid (>0) or process group (<0)
        owner = sint(call.args[2])
        if owner != 0 and not call.kernel.in_sandbox(abs(owner), group=owner < 0):
            raise SyscallError(errno.ESRCH)
    if cmd == 15:      # F_SETOWN_EX: the kernel reads the struct again, so it
        raw = call.read(call.args[2], 8)          # gets the checked copy
        kind, pid = struct.unpack("<ii", raw)
        if pid and not call.kernel.in_sandbox(pid, group=kind == 2):
            raise SyscallError(errno.ESRCH)
        (addr,) = call.stage(raw)
        return Rewrite(args={2: addr})
    return PASS
