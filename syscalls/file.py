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

from sentry.kernel import fdtraps
from sentry.platform import staging
from sentry.vfs.mount import (CONFINED, CREATE, CREATE_IN, HIDDEN_FD_BASE, MAX_MOUNTS, O_PATH, TRUNCATE,
                              WRITE, split_deleted)
from sentry.vfs.resolve import UnnamedTarget
from syscalls.call import AT_FDCWD, sint
from syscalls import permission
from syscalls.errors import SyscallError
from syscalls.lookup import lookup
from syscalls import process, tty
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
        loc = lookup(call, dirfd, path, follow=follow, must_exist=not creat, identity=True)
    except UnnamedTarget as unnamed:
        return _reopen_unnamed(call, unnamed, flags)
    if path.endswith(b"/") and creat and not loc.exists:
        raise SyscallError(errno.EISDIR)
    if loc.exists and stat.S_ISLNK(loc.st.st_mode) and not flags & O_PATH:
        raise SyscallError(errno.ELOOP)
    if creat and flags & O_EXCL and loc.exists:
        raise SyscallError(errno.EEXIST)
    if loc.exists and not flags & O_PATH:
        permission.check_open(call, loc, flags)
    if loc.mount.kind == "dev" and loc.rel == "tty":
        tty.check_controlling_terminal(call)
    if (creat and not loc.exists) or tmpfile:
        loc = permission.change(call, loc, CREATE_IN if tmpfile else CREATE)
    elif wants_write(flags):
        loc = permission.change(call, loc, TRUNCATE if flags & O_TRUNC else WRITE)
    elif creat and loc.mount.readonly:
        # it exists: should it vanish, the kernel must not create it where
        # the guest may not (an overlay's lower layer)
        flags &= ~(O_CREAT | O_EXCL)
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
    if unnamed.pid != call.process.vpid:
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


@handler("dup2", "dup3", note="the Sentry's fds (>= %d) look closed; a copy of a trapped fd "
         "(kernel/fdtraps.py) is trapped too" % HIDDEN_FD_BASE)
def sys_dup2(call):
    if is_hidden(sint(call.args[1])) or is_hidden(sint(call.args[0])):
        raise SyscallError(errno.EBADF)
    return fdtraps.follow_copy(call)


@handler("dup", note="as dup2")
def sys_dup(call):
    not_hidden(call)
    return fdtraps.follow_copy(call)


def not_hidden(call):
    """A call on one fd (arg 0): the Sentry's own look closed."""
    if is_hidden(call.fd(0)):
        raise SyscallError(errno.EBADF)
    return PASS


handler("fstat", "fstatfs", "fchdir", note="the Sentry's fds (>= %d) look closed" % HIDDEN_FD_BASE)(not_hidden)


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
    """The host directory (a mount, or an overlay's layer) the file behind fd
    lives in (a deleted one too: its mount still decides whether it may be
    changed); None for pipes, sockets, anonymous inodes."""
    host = split_deleted(call.host_fd_path(fd))[0]
    return call.kernel.mounts.backing_of(host) if host.startswith("/") else None


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


@handler("fsetxattr", "fremovexattr", note="refused with EROFS on a read-only mount or an overlay's "
         "lower file; the Sentry's own xattr names (user.sentry.*) are refused with EPERM")
def sys_fsetxattr(call):
    from syscalls.path import check_xattr_name, xattr_name
    check_fd_writable(call, call.fd(0))
    raw = xattr_name(call, 1)
    check_xattr_name(os.fsdecode(raw))
    # the kernel reads the name again: it gets the checked copy
    (addr,) = call.stage(raw + b"\0")
    return Rewrite(args={1: addr})


def _on_borrowed_fd(call, act):
    """fchown/fchmod: checked against the guest's emulated credentials and
    done by the Sentry on a duplicate of the fd (the guest holds no
    capability on the host, the Sentry may)."""
    check_fd_writable(call, call.fd(0))
    dup = call.kernel.borrow_fd(call.process, call.fd(0))
    try:
        act(dup, os.fstat(dup))
    except OSError as e:
        raise SyscallError(e.errno or errno.EIO)
    finally:
        os.close(dup)
    return 0


@handler("fchown", note="checked against the guest's credentials, done by the Sentry")
def sys_fchown(call):
    uid, gid = call.args[1] & 0xFFFFFFFF, call.args[2] & 0xFFFFFFFF

    def act(fd, st):
        os.fchown(fd, *call.task.creds.chown_ids(st, uid, gid))
    return _on_borrowed_fd(call, act)


@handler("fchmod", note="checked against the guest's credentials, done by the Sentry")
def sys_fchmod(call):
    def act(fd, st):
        call.task.creds.check_chmod(st)
        os.fchmod(fd, call.args[1] & 0o7777)
    return _on_borrowed_fd(call, act)


TIOCGPGRP, TIOCSPGRP, TIOCGSID = 0x540F, 0x5410, 0x5429
FIOSETOWN, SIOCSPGRP, FIOGETOWN, SIOCGPGRP = 0x8901, 0x8902, 0x8903, 0x8904


def _owner_to_host(call, owner):
    """An fd's owner as the guest gives it (pid, or -pgid) -> the host's."""
    if owner > 0:
        return call.kernel.host_id(owner)
    if owner < 0:
        return -call.kernel.host_id(-owner, group=True)
    return 0


def _owner_to_guest(kernel, owner):
    """... and back; what names no sandbox process reads as 0 (outside)."""
    if owner < 0:
        return -kernel.vpid(-owner)
    return kernel.vpid(owner)


def _pid_out(call, addr, to_guest):
    """Rewrite the pid_t the call wrote at addr once it succeeded."""
    kernel = call.kernel

    def done(task, result):
        if result == 0:
            try:
                (v,) = struct.unpack("<i", call.read(addr, 4))
                call.write(addr, struct.pack("<i", to_guest(kernel, v)))
            except SyscallError:
                pass
        return result
    return Rewrite(on_exit=done)


def _pid_in(call, i, to_host):
    """Stage a translated copy of the pid_t argument i points to."""
    (v,) = struct.unpack("<i", call.read(call.args[i], 4))
    (addr,) = call.stage(struct.pack("<i", to_host(call, v)))
    return Rewrite(args={i: addr}, restore=True)


@handler("ioctl", note="TIOCSTI/TIOCLINUX refused; process groups and owners are virtual pids; "
         "TIOCGPTPEER opens the slave by name in the sandbox's devpts; a pidfd's PIDFD_GET_INFO "
         "is translated, its namespace getters refused")
def sys_ioctl(call):
    req = call.args[1] & 0xFFFFFFFF
    if req in (0x5412, 0x541C):      # TIOCSTI, TIOCLINUX
        raise SyscallError(errno.EPERM)
    if req == tty.TIOCGPTPEER:
        return tty.pty_peer(call)
    if req in (TIOCGPGRP, TIOCGSID):
        return _pid_out(call, call.args[2], lambda kernel, v: kernel.vpid(v))
    if req == TIOCSPGRP:
        return _pid_in(call, 2, lambda call, v: call.kernel.host_id(v, group=True) if v > 0 else v)
    if req in (FIOGETOWN, SIOCGPGRP):
        return _pid_out(call, call.args[2], _owner_to_guest)
    if req in (FIOSETOWN, SIOCSPGRP):
        return _pid_in(call, 2, _owner_to_host)
    if (req >> 8) & 0xFF == process.PIDFS_IOCTL_TYPE:
        return process.pidfd_ioctl(call, req)
    if req in INODE_FLAG_SETTERS:
        # the file's owner may set some inode flags: never on a read-only
        # mount or an overlay's lower layer
        check_fd_writable(call, call.fd(0))
    return PASS


INODE_FLAG_SETTERS = {0x40086602, 0x401C5820}     # FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR


F_GETLK, F_SETOWN, F_GETOWN, F_SETOWN_EX, F_GETOWN_EX = 5, 8, 9, 15, 16
F_UNLCK = 2
F_OWNER_PGRP = 2


@handler("fcntl", support="partial", note="owners and lock holders are virtual pids; "
         "an owner outside the sandbox is refused (ESRCH)")
def sys_fcntl(call):
    not_hidden(call)
    cmd = call.args[1] & 0xFFFFFFFF
    kernel = call.kernel
    if cmd == F_SETOWN:
        return Rewrite(args={2: _owner_to_host(call, sint(call.args[2]))}, restore=True)
    if cmd == F_GETOWN:
        # a negative result is an error or a process group
        return Rewrite(on_exit=lambda task, result: _owner_to_guest(kernel, result)
                       if result > 0 or kernel.vpid(-result) else result)
    if cmd == F_SETOWN_EX:
        # the kernel reads the struct again: it gets the checked copy
        kind, pid = struct.unpack("<ii", call.read(call.args[2], 8))
        host = (kernel.host_id(pid, group=kind == F_OWNER_PGRP, task=kind != F_OWNER_PGRP)
                if pid else 0)
        (addr,) = call.stage(struct.pack("<ii", kind, host))
        return Rewrite(args={2: addr}, restore=True)
    if cmd == F_GETOWN_EX:
        return _pid_out(call, call.args[2] + 4, lambda kernel, v: kernel.vpid(v))
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        return fdtraps.follow_copy(call)
    if cmd == F_GETLK:
        addr = call.args[2]

        def done(task, result):
            if result == 0:
                try:
                    raw = call.read(addr, 32)
                    if struct.unpack_from("<h", raw)[0] != F_UNLCK:
                        (pid,) = struct.unpack_from("<i", raw, 24)
                        call.write(addr + 24, struct.pack("<i", kernel.vpid(pid)))
                except SyscallError:
                    pass
            return result
        return Rewrite(on_exit=done)
    return PASS
