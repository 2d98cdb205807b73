"""Calls that name a path and create no fd: the Sentry performs them itself.

Each resolves the path in the sandbox, opens the parent directory confined
(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS under the mount's root) and acts on one
name relative to it, so a racing guest can make the call fail but never reach
a host file.  Results are the raw kernel structs, copied to the guest.
"""
import errno
import os
import signal
import stat
import struct

from sentry._native import ffi, lib
from sentry.vfs.mount import ATTRS, CREATE, MOVE, REMOVE, TRUNCATE, WRITE, open_final
from sentry.fsimpl.overlay import RESERVED
from sentry.kernel.credentials import CAP_MKNOD, CAP_SYS_CHROOT
from sentry.vfs import devnodes
from sentry.kernel.limits import host_soft_limit
from sentry.kernel.syscall import AT_FDCWD, Rewrite
from syscalls import idview, owner, permission
from syscalls.fdutil import Borrowed, chmod_fd, chmod_host, chown_fd, is_hidden
from sentry.errors import SyscallError
from sentry.vfs.resolve import STAT_ONLY, UnnamedTarget, guest_stat
from syscalls.lookup import Parent, cwd_sandbox_path, ends_in_dots, lookup, view_from
from syscalls.registry import handler

AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_EACCESS, AT_EMPTY_PATH = 0x100, 0x200, 0x400, 0x200, 0x1000
S_IFMT = 0o170000


def check(ret):
    if ret < 0:
        raise SyscallError(-ret)
    return ret


def _proc_fd(fd):
    return f"/proc/self/fd/{fd}"


# ---- stat family ---------------------------------------------------------------

def _guest_view(loc, raw, mode_at, put_device):
    """A stat or statx buffer of a file the guest sees otherwise than the
    host: a device's stand-in as the node (vfs/devnodes.py), a socket with
    its guest mode (vfs/sockperm.py); loc.st is that view."""
    socket = stat.S_ISSOCK(loc.st.st_mode)
    if not socket and not devnodes.in_host_directory(loc):
        return raw
    raw = bytearray(raw)
    struct.pack_into(mode_at[0], raw, mode_at[1], loc.st.st_mode)
    if not socket:
        put_device(raw, loc.st)
    return bytes(raw)


def _stat_device(raw, st):
    """struct stat: st_rdev at 40, st_size 48, st_blocks 64."""
    struct.pack_into("<QQ", raw, 40, st.st_rdev, 0)
    struct.pack_into("<Q", raw, 64, 0)


def _statx_device(raw, st):
    """struct statx: stx_size at 0x28, stx_blocks 0x30, stx_rdev_major and
    _minor 0x80, 0x84."""
    struct.pack_into("<QQ", raw, 0x28, 0, 0)
    struct.pack_into("<II", raw, 0x80, os.major(st.st_rdev), os.minor(st.st_rdev))


STAT_MODE, STATX_MODE = ("<I", 24), ("<H", 0x1C)
# (offset, length) of what names a file rather than describes it: struct
# stat's st_dev and st_ino; struct statx's stx_ino, stx_btime, stx_dev_major
# and _minor, stx_mnt_id
STAT_IDENTITY = ((0, 16),)
STATX_IDENTITY = ((0x20, 8), (0x50, 16), (0x88, 8), (0x90, 8))


def _with_identity(raw, of, fields):
    """A stat or statx buffer whose identity fields are taken from `of`'s
    (an overlay's lower directory shows its twin's: Resolved.twin)."""
    out = bytearray(raw)
    for at, n in fields:
        out[at:at + n] = of[at:at + n]
    return bytes(out)


def _stat_bytes(loc):
    buf = ffi.new("char[144]")
    if loc.rel == ".":
        check(lib.sn_fstatat(loc.mount.fd, b"", AT_EMPTY_PATH, buf))
    else:
        with Parent(loc) as (fd, name):
            check(lib.sn_fstatat(fd, os.fsencode(name), AT_SYMLINK_NOFOLLOW, buf))
    raw = ffi.buffer(buf, 144)[:]
    return _with_identity(raw, _stat_bytes(loc.twin), STAT_IDENTITY) if loc.twin is not None else raw


SYS_FSTAT, SYS_FCHDIR = 5, 81


def _empty_path_target(call, dirfd):
    """fstatat(fd, "", AT_EMPTY_PATH) names fd itself; AT_FDCWD names the cwd."""
    if dirfd == AT_FDCWD:
        return lookup(call, AT_FDCWD, b".", identity=True)
    return None


def _unnamed_stat(call, unnamed, raw_stat):
    """stat through /proc/<pid>/fd/N of a pipe or socket: the object's own."""
    proc = call.kernel.process_of(unnamed.pid)
    if proc is None:
        raise SyscallError(errno.ENOENT)
    dup = call.kernel.borrow_fd(proc, unnamed.fd)
    try:
        return raw_stat(dup)
    finally:
        os.close(dup)


def _stat_common(call, dirfd, path, flags, out):
    if not path and flags & AT_EMPTY_PATH:
        if is_hidden(dirfd):
            raise SyscallError(errno.EBADF)
        loc = _empty_path_target(call, dirfd)
        if loc is None:
            # registers only: the guest cannot change what fstat(fd) means
            return Rewrite(SYS_FSTAT, {0: dirfd, 1: out})
    else:
        try:
            loc = lookup(call, dirfd, path, follow=not flags & AT_SYMLINK_NOFOLLOW, identity=STAT_ONLY)
        except UnnamedTarget as unnamed:
            buf = ffi.new("char[144]")
            _unnamed_stat(call, unnamed, lambda fd: check(lib.sn_fstatat(fd, b"", AT_EMPTY_PATH, buf)))
            call.write(out, ffi.buffer(buf, 144)[:])
            return 0
    call.write(out, _guest_view(loc, _stat_bytes(loc), STAT_MODE, _stat_device))
    return 0


@handler("stat")
@idview.viewed(1, idview.STAT_IDS)
def sys_stat(call):
    return _stat_common(call, AT_FDCWD, call.path(0), 0, call.args[1])


@handler("lstat")
@idview.viewed(1, idview.STAT_IDS)
def sys_lstat(call):
    return _stat_common(call, AT_FDCWD, call.path(0), AT_SYMLINK_NOFOLLOW, call.args[1])


@handler("newfstatat")
@idview.viewed(2, idview.STAT_IDS)
def sys_newfstatat(call):
    flags = call.args[3]
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800 | 0x6000):   # | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE
        raise SyscallError(errno.EINVAL)
    return _stat_common(call, call.fd(0), call.string(1), flags, call.args[2])


@handler("statx")
@idview.viewed(4, idview.STATX_IDS)
def sys_statx(call):
    flags, mask = call.args[2], call.args[3]
    path = call.string(1) if call.args[1] else b""
    # as Linux's do_statx/vfs_statx, after reading the name, before the lookup
    if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800 | 0x6000) or flags & 0x6000 == 0x6000
            or mask & 0x80000000):        # AT_NO_AUTOMOUNT, AT_STATX_SYNC_TYPE, STATX__RESERVED
        raise SyscallError(errno.EINVAL)
    buf = ffi.new("char[256]")
    sync = flags & 0x6000
    if not path and flags & AT_EMPTY_PATH:
        loc = _empty_path_target(call, call.fd(0))
        if loc is None:
            # statx on a Sentry-side duplicate of the guest's fd
            dup = call.kernel.borrow_fd(call.process, call.fd(0))
            try:
                check(lib.sn_statx(dup, b"", AT_EMPTY_PATH | sync, mask, buf))
            finally:
                os.close(dup)
            call.write(call.args[4], ffi.buffer(buf, 256)[:])
            return 0
    elif not path:
        raise SyscallError(errno.ENOENT)
    else:
        try:
            loc = lookup(call, call.fd(0), path, follow=not flags & AT_SYMLINK_NOFOLLOW, identity=STAT_ONLY)
        except UnnamedTarget as unnamed:
            _unnamed_stat(call, unnamed, lambda fd: check(lib.sn_statx(fd, b"", AT_EMPTY_PATH | sync, mask, buf)))
            call.write(call.args[4], ffi.buffer(buf, 256)[:])
            return 0
    raw = _statx_bytes(loc, sync, mask)
    if loc.twin is not None:
        raw = _with_identity(raw, _statx_bytes(loc.twin, sync, mask), STATX_IDENTITY)
    call.write(call.args[4], _guest_view(loc, raw, STATX_MODE, _statx_device))
    return 0


def _statx_bytes(loc, sync, mask):
    buf = ffi.new("char[256]")
    if loc.rel == ".":
        check(lib.sn_statx(loc.mount.fd, b"", AT_EMPTY_PATH | sync, mask, buf))
    else:
        with Parent(loc) as (fd, name):
            check(lib.sn_statx(fd, os.fsencode(name), AT_SYMLINK_NOFOLLOW | sync, mask, buf))
    return ffi.buffer(buf, 256)[:]


def _access(call, dirfd, path, mode, flags):
    if mode & ~7:
        raise SyscallError(errno.EINVAL)
    try:
        loc = lookup(call, dirfd, path, follow=not flags & AT_SYMLINK_NOFOLLOW)
    except UnnamedTarget as unnamed:
        return _unnamed_access(call, unnamed, mode, real=not flags & AT_EACCESS)
    permission.check(call, loc, mode, real=not flags & AT_EACCESS)
    if mode & os.W_OK:
        loc.mount.check_content_writable(loc.rel)
    if mode & os.X_OK and not stat.S_ISDIR(loc.st.st_mode) and not loc.st.st_mode & 0o111:
        raise SyscallError(errno.EACCES)
    return 0


def _unnamed_access(call, unnamed, mode, real):
    """access(2) through /proc/<pid>/fd/N of a pipe, socket, anonymous inode
    or deleted file: the object's own mode and owner decide, as on Linux
    (a pipe is 0600, a socket 0777, an eventfd 0600 owned by root), for any
    guest: the host never checks this one.  A pipe or socket the guest made
    belongs to the host uid every guest runs as; on Linux, to the fs ids of
    the guest that made it, taken to be the caller's."""
    st = _unnamed_stat(call, unnamed, os.fstat)
    creds, owner = call.task.creds, None
    if (stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode)) and st.st_uid == os.geteuid():
        owner = (creds.fsuid, creds.fsgid)
    creds.check(st, mode & 7, real, owner)
    return 0


def _access_mode(mode):
    """Linux refuses a mode beyond R_OK|W_OK|X_OK before it reads the path."""
    if mode & ~7:
        raise SyscallError(errno.EINVAL)
    return mode


@handler("access")
def sys_access(call):
    mode = _access_mode(call.args[1])
    return _access(call, AT_FDCWD, call.path(0), mode, 0)


@handler("faccessat")
def sys_faccessat(call):
    mode = _access_mode(call.args[2])
    return _access(call, call.fd(0), call.path(1), mode, 0)


@handler("faccessat2")
def sys_faccessat2(call):
    flags = call.args[3]
    if flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    mode = _access_mode(call.args[2])
    return _access(call, call.fd(0), call.path(1), mode, flags)


def _readlink(call, dirfd, path, buf, size):
    if size <= 0:
        raise SyscallError(errno.EINVAL)
    if not path and dirfd != AT_FDCWD:
        # readlinkat(fd, ""): the symlink an O_PATH|O_NOFOLLOW fd refers to
        dup = call.kernel.borrow_fd(call.process, dirfd)
        try:
            target = os.fsencode(os.readlink("", dir_fd=dup))[:size]
        except OSError as e:
            raise SyscallError(e.errno)
        finally:
            os.close(dup)
        call.write(buf, target)
        return len(target)
    if not path:
        raise SyscallError(errno.ENOENT)
    loc = lookup(call, dirfd, path, follow=False)
    if not stat.S_ISLNK(loc.st.st_mode):
        raise SyscallError(errno.EINVAL)
    target = os.fsencode(loc.mount.readlink(loc.rel))[:size]
    call.write(buf, target)
    return len(target)


@handler("readlink")
def sys_readlink(call):
    return _readlink(call, AT_FDCWD, call.string(0), call.args[1], call.args[2])


@handler("readlinkat")
def sys_readlinkat(call):
    return _readlink(call, call.fd(0), call.string(1), call.args[2], call.args[3])


# ---- creating and removing names -------------------------------------------------

def _create_target(call, dirfd, path, directory=False):
    """Linux's filename_create: a path ending in "." or ".." names a
    directory that is there (or ENOENT on the way), never one to make; a
    name that is there is EEXIST, whatever a trailing "/" says; a "/"
    after a name to make asks for a directory, which only mkdir makes
    (ENOENT for the others)."""
    dots = ends_in_dots(path)
    loc = lookup(call, dirfd, path if dots else path.rstrip(b"/"), follow=False, must_exist=dots)
    if loc.exists:
        raise SyscallError(errno.EEXIST)
    if path.endswith(b"/") and not directory:
        raise SyscallError(errno.ENOENT)
    return permission.change(call, loc, CREATE)


def _mkdir(call, dirfd, path, mode):
    loc = _create_target(call, dirfd, path, directory=True)
    ids, since = owner.creator(call), owner.now()
    with Parent(loc) as (fd, name):
        os.mkdir(name, mode & 0o7777 & ~call.umask(), dir_fd=fd)
        owner.adopt_name(call, ids, fd, name, stat.S_IFDIR, since)
    return 0


@handler("mkdir")
def sys_mkdir(call):
    return _mkdir(call, AT_FDCWD, call.path(0), call.args[1])


@handler("mkdirat")
def sys_mkdirat(call):
    return _mkdir(call, call.fd(0), call.path(1), call.args[2])


def _mknod(call, dirfd, path, mode, dev):
    kind = mode & S_IFMT
    # may_mknod before the lookup; the capability for a device after it
    if kind == stat.S_IFDIR:
        raise SyscallError(errno.EPERM)
    if kind not in (0, stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK):
        raise SyscallError(errno.EINVAL)
    loc = _create_target(call, dirfd, path)
    ids, since = owner.creator(call), owner.now()
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        if not call.task.creds.capable(CAP_MKNOD):
            raise SyscallError(errno.EPERM)
        _make_device(call, loc, kind, mode & 0o7777 & ~call.umask(), dev, ids, since)
        return 0
    with Parent(loc) as (fd, name):
        os.mknod(name, (mode & ~S_IFMT & 0o7777 & ~call.umask()) | (kind or stat.S_IFREG), dir_fd=fd)
        owner.adopt_name(call, ids, fd, name, kind or stat.S_IFREG, since)
    return 0


def _make_device(call, loc, kind, perms, dev, ids, since):
    """A device node, as a stand-in file (sentry/vfs/devnodes.py): made
    with no permission at all, marked on its own fd, then given the node's
    bits and the sticky mark -- a racing guest sees an empty file at most."""
    with Parent(loc) as (pfd, name):
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0, dir_fd=pfd)
        try:
            own = f"/proc/self/fd/{fd}"           # the very inode made
            os.setxattr(own, devnodes.XATTR, devnodes.encode(kind, _kernel_dev(dev)))
            os.chmod(own, (perms & ~devnodes.MARK) | devnodes.MARK)
            owner.adopt_fd(call, ids, fd, os.fstat(fd), since)
        except OSError:
            os.unlink(name, dir_fd=pfd)
            raise
        finally:
            os.close(fd)


def _kernel_dev(dev):
    """mknod's dev_t as the kernel decodes it (new_decode_dev of its low
    32 bits: 12-bit major, 20-bit minor)."""
    dev &= 0xFFFFFFFF
    return os.makedev((dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00))


@handler("mknod", note="device nodes, with CAP_MKNOD: stand-in files the Sentry shows as nodes "
         "(sentry/vfs/devnodes.py); without it EPERM")
def sys_mknod(call):
    return _mknod(call, AT_FDCWD, call.path(0), call.args[1], call.args[2])


@handler("mknodat", note="device nodes, with CAP_MKNOD: stand-in files the Sentry shows as nodes "
         "(sentry/vfs/devnodes.py); without it EPERM")
def sys_mknodat(call):
    return _mknod(call, call.fd(0), call.path(1), call.args[2], call.args[3])


def _unlink(call, dirfd, path, flags):
    if flags & ~AT_REMOVEDIR:
        raise SyscallError(errno.EINVAL)
    last = os.fsdecode(path).rstrip("/").rsplit("/", 1)[-1]
    if flags & AT_REMOVEDIR and last in (".", ".."):
        lookup(call, dirfd, path)       # a missing parent is ENOENT first, as in Linux
        raise SyscallError(errno.EINVAL if last == "." else errno.ENOTEMPTY)
    loc = lookup(call, dirfd, path, follow=False)
    loc = permission.change(call, loc, REMOVE)
    call.kernel.mounts.links.clear()
    with Parent(loc) as (fd, name):
        if flags & AT_REMOVEDIR:
            os.rmdir(name, dir_fd=fd)
        else:
            if path.endswith(b"/"):
                raise SyscallError(errno.EISDIR if stat.S_ISDIR(loc.st.st_mode) else errno.ENOTDIR)
            os.unlink(name, dir_fd=fd)
    return 0


@handler("unlink")
def sys_unlink(call):
    return _unlink(call, AT_FDCWD, call.path(0), 0)


@handler("rmdir")
def sys_rmdir(call):
    return _unlink(call, AT_FDCWD, call.path(0), AT_REMOVEDIR)


@handler("unlinkat")
def sys_unlinkat(call):
    return _unlink(call, call.fd(0), call.path(1), call.args[2])


RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4


def _rename(call, olddir, old, newdir, new, flags):
    # the flags first, as do_renameat2 checks them: before any lookup
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT):
        raise SyscallError(errno.EINVAL)
    if flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT):
        raise SyscallError(errno.EINVAL)
    if flags & RENAME_WHITEOUT:
        raise SyscallError(errno.EPERM)     # it makes a device node: as without CAP_MKNOD
    src = lookup(call, olddir, old, follow=False)
    dst = lookup(call, newdir, new, follow=False, must_exist=False)
    if src.mount.owner is not dst.mount.owner and _replaces_stand_in(src, dst, flags):
        return _rename_over_stand_in(call, src, dst, flags)
    if _mount_point(src) or _mount_point(dst):
        # as do_renameat2: EXDEV when the two parents lie in two mounts, else
        # EBUSY for a mount point (a bind of a file, /proc, /tmp …)
        same = _parent_mount(call, src) is _parent_mount(call, dst)
        raise SyscallError(errno.EBUSY if same else errno.EXDEV)
    if src.mount.owner is not dst.mount.owner:
        raise SyscallError(errno.EXDEV)
    src = permission.change(call, src, MOVE)
    if flags & RENAME_EXCHANGE:
        dst = permission.change(call, dst, MOVE)
    elif dst.exists:
        dst = permission.change(call, dst, REMOVE)
    else:
        dst = permission.change(call, dst, CREATE)
    call.kernel.mounts.links.clear()
    with Parent(src) as (sfd, sname), Parent(dst) as (dfd, dname):
        check(lib.sn_renameat2(sfd, os.fsencode(sname), dfd, os.fsencode(dname), flags))
    return 0


def _mount_point(loc):
    return loc.exists and loc.spath != "/" and loc.spath == loc.mount.owner.path


def _parent_mount(call, loc):
    return call.mounts.locate(os.path.dirname(loc.spath))[0]


def _replaces_stand_in(src, dst, flags):
    """A file renamed over a hidden path's stand-in file (useradd and
    passwd write /etc/shadow so): to the guest that is a file of its
    directory like any other, not a mount point (sentry/fsimpl/hidden.py)."""
    return (dst.mount.kind == "hidden" and dst.exists and dst.rel == dst.mount.root_rel
            and stat.S_ISREG(dst.st.st_mode) and stat.S_ISREG(src.st.st_mode) and not flags & RENAME_EXCHANGE)


def _rename_over_stand_in(call, src, dst, flags):
    """The guest's file takes the stand-in's place: a rename where both are on
    one host file system, else a copy renamed into place and the source
    removed.  The host's hidden content is never opened; the new stand-in
    is the guest's own file."""
    if flags & RENAME_NOREPLACE:
        raise SyscallError(errno.EEXIST)
    src = permission.change(call, src, MOVE)
    permission.check_change(call, dst, REMOVE)
    call.kernel.mounts.links.clear()
    with Parent(src) as (sfd, sname), Parent(dst) as (dfd, dname):
        r = lib.sn_renameat2(sfd, os.fsencode(sname), dfd, os.fsencode(dname), 0)
        if r != -errno.EXDEV:
            check(r)
            return 0
        tmp = f".{dname}.sentry-{os.getpid()}"
        # never blocked on a fifo a racing thread put there: a regular file only
        src_fd = os.open(sname, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=sfd)
        try:
            st = os.fstat(src_fd)
            if not stat.S_ISREG(st.st_mode):
                raise SyscallError(errno.EXDEV)
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                while os.sendfile(out, src_fd, None, 1 << 20):
                    pass
                check(lib.sn_fchownat(out, b"", st.st_uid, st.st_gid, AT_EMPTY_PATH))
                os.chmod(f"/proc/self/fd/{out}", stat.S_IMODE(st.st_mode))
            finally:
                os.close(out)
            os.rename(tmp, dname, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
        finally:
            os.close(src_fd)
        os.unlink(sname, dir_fd=sfd)
    return 0


@handler("rename")
def sys_rename(call):
    return _rename(call, AT_FDCWD, call.path(0), AT_FDCWD, call.path(1), 0)


@handler("renameat")
def sys_renameat(call):
    return _rename(call, call.fd(0), call.path(1), call.fd(2), call.path(3), 0)


@handler("renameat2")
def sys_renameat2(call):
    return _rename(call, call.fd(0), call.path(1), call.fd(2), call.path(3), call.args[4])


def _link(call, olddir, old, newdir, new, flags):
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    if not old and flags & AT_EMPTY_PATH and olddir != AT_FDCWD:
        return _link_open_file(call, call.process.vpid, olddir, newdir, new)
    if not old and flags & AT_EMPTY_PATH:
        old = b"."                                  # the cwd: a directory, so EPERM below
    elif not old:
        raise SyscallError(errno.ENOENT)
    if flags & AT_SYMLINK_FOLLOW:
        # /proc/<pid>/fd/N names an open file, maybe one with no name (O_TMPFILE)
        src = lookup(call, olddir, old, follow=False)
        fd_ref = getattr(src.mount, "fd_of", lambda rel, ctx: None)(src.rel, call)
        if fd_ref is not None:
            return _link_open_file(call, *fd_ref, newdir, new)
    src = lookup(call, olddir, old, follow=bool(flags & AT_SYMLINK_FOLLOW))
    dst = _create_target(call, newdir, new)
    if src.mount.owner is not dst.mount.owner:
        raise SyscallError(errno.EXDEV)
    if stat.S_ISDIR(src.st.st_mode):
        raise SyscallError(errno.EPERM)
    src = permission.change(call, src, ATTRS)      # a link shares the inode: the upper one
    with Parent(src) as (sfd, sname), Parent(dst) as (dfd, dname):
        os.link(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
    return 0


def _link_open_file(call, pid, fd, newdir, new):
    """linkat of an open file: it must live on the mount it is linked into
    (a hard link from the read-only root into /tmp would make host files
    writable)."""
    from sentry.vfs.mount import split_deleted
    proc = call.kernel.process_of(pid)
    if proc is None:
        raise SyscallError(errno.ENOENT)
    dup = call.kernel.borrow_fd(proc, fd)        # the old name first, as Linux
    try:
        dst = _create_target(call, newdir, new)
        # the file's own host directory must be the one written (never an
        # overlay's lower layer, whose files would become writable)
        host = split_deleted(os.readlink(f"/proc/self/fd/{dup}"))[0]
        if call.mounts.backing_of(host) is not dst.mount:
            raise SyscallError(errno.EXDEV)
        with Parent(dst) as (dfd, dname):
            os.link(f"/proc/self/fd/{dup}", dname, dst_dir_fd=dfd, follow_symlinks=True)
    finally:
        os.close(dup)
    return 0


@handler("link")
def sys_link(call):
    return _link(call, AT_FDCWD, call.path(0), AT_FDCWD, call.path(1), 0)


@handler("linkat")
def sys_linkat(call):
    return _link(call, call.fd(0), call.string(1), call.fd(2), call.path(3), call.args[4])


def _symlink(call, target, dirfd, path):
    loc = _create_target(call, dirfd, path)
    ids, since = owner.creator(call), owner.now()
    with Parent(loc) as (fd, name):
        os.symlink(target, name, dir_fd=fd)
        owner.adopt_name(call, ids, fd, name, stat.S_IFLNK, since)
    return 0


@handler("symlink")
def sys_symlink(call):
    return _symlink(call, call.path(0), AT_FDCWD, call.path(1))


@handler("symlinkat")
def sys_symlinkat(call):
    return _symlink(call, call.path(0), call.fd(1), call.path(2))


# ---- changing attributes -----------------------------------------------------------

def _on_final(call, dirfd, path, follow, fn):
    """Apply fn(O_PATH fd on the final file, its host path through
    /proc/self/fd, whether it is a symlink) -- never following a symlink the
    Sentry did not resolve, never looking the path up a second time (a
    symlink itself is changed through the fd with AT_EMPTY_PATH)."""
    loc = lookup(call, dirfd, path, follow=follow)
    loc = permission.change(call, loc, ATTRS)
    fd = open_final(loc)
    try:
        fn(fd, _proc_fd(fd), stat.S_ISLNK(loc.st.st_mode))
    except OSError as e:
        raise SyscallError(e.errno)
    finally:
        os.close(fd)
    return 0


def _chmod(call, dirfd, path, mode, flags=0):
    def do(fd, p, is_link):
        if is_link:
            raise SyscallError(errno.EOPNOTSUPP)
        st = os.stat(p)
        call.task.creds.check_chmod(st)
        chmod_host(p, st, call.task.creds.chmod_mode(st, mode))
    return _on_final(call, dirfd, path, not flags & AT_SYMLINK_NOFOLLOW, do)


@handler("chmod")
def sys_chmod(call):
    return _chmod(call, AT_FDCWD, call.path(0), call.args[1])


@handler("fchmodat")
def sys_fchmodat(call):
    return _chmod(call, call.fd(0), call.path(1), call.args[2])


@handler("fchmodat2", note="with AT_EMPTY_PATH on an fd: as fchmod")
def sys_fchmodat2(call):
    flags = call.args[3]
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    path = call.string(1)
    if not path and flags & AT_EMPTY_PATH:
        if call.fd(0) != AT_FDCWD:
            return chmod_fd(call, call.fd(0), call.args[2], empty_path=True)
        path = b"."
    elif not path:
        raise SyscallError(errno.ENOENT)
    return _chmod(call, call.fd(0), path, call.args[2], flags)


def _chown(call, dirfd, path, uid, gid, flags):
    if not path and flags & AT_EMPTY_PATH and dirfd != AT_FDCWD:
        return chown_fd(call, dirfd, uid, gid, empty_path=True)
    if not path and flags & AT_EMPTY_PATH:
        path = b"."
    creds = call.task.creds

    def do(fd, p, is_link):
        host = creds.chown_ids(os.fstat(fd), uid, gid)
        check(lib.sn_fchownat(fd, b"", host[0] & 0xFFFFFFFF, host[1] & 0xFFFFFFFF,
                              AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
    return _on_final(call, dirfd, path, not flags & AT_SYMLINK_NOFOLLOW, do)


@handler("chown")
def sys_chown(call):
    return _chown(call, AT_FDCWD, call.path(0), call.args[1], call.args[2], 0)


@handler("lchown")
def sys_lchown(call):
    return _chown(call, AT_FDCWD, call.path(0), call.args[1], call.args[2], AT_SYMLINK_NOFOLLOW)


@handler("fchownat")
def sys_fchownat(call):
    flags = call.args[4]
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):     # as Linux, before the path
        raise SyscallError(errno.EINVAL)
    return _chown(call, call.fd(0), call.string(1), call.args[2], call.args[3], flags)


UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def check_times(call, st, times):
    """utimensat(2)'s rules, with the guest's emulated ids: setting both
    times to now takes write permission or ownership (EACCES); any other
    time takes ownership or CAP_FOWNER (EPERM)."""
    from sentry.kernel.credentials import CAP_DAC_OVERRIDE, CAP_FOWNER
    from sentry.kernel import idmap
    creds = call.task.creds
    nsecs = (UTIME_NOW, UTIME_NOW) if times is None else struct.unpack("<8xq8xq", times)
    if nsecs == (UTIME_OMIT, UTIME_OMIT):
        return
    if idmap.current.uid_view(st.st_uid) == creds.fsuid or creds.capable(CAP_FOWNER):
        return
    if nsecs != (UTIME_NOW, UTIME_NOW):
        raise SyscallError(errno.EPERM)
    if not creds.capable(CAP_DAC_OVERRIDE) and not creds.permits(st, 2):
        raise SyscallError(errno.EACCES)


def _utimens_fd(call, fd, times, empty_path):
    """futimens(fd) (a NULL path) and utimensat(fd, "", AT_EMPTY_PATH): done
    by the Sentry on its copy of the fd, for files in the sandbox's writable
    mounts only."""
    tbuf = ffi.new("char[32]", times) if times is not None else ffi.NULL
    with Borrowed(call, fd) as b:
        if not empty_path:
            b.not_o_path()
        b.check_changeable()
        check_times(call, os.fstat(b.fd), times)
        check(lib.sn_utimensat(b.fd, b"" if empty_path else ffi.NULL, tbuf, AT_EMPTY_PATH if empty_path else 0))
    return 0


def _utimens(call, dirfd, path, times, flags):
    """times: 32 raw bytes (two timespecs) or None for now."""
    if path is None:                        # futimens(fd, ...)
        if dirfd == AT_FDCWD:
            raise SyscallError(errno.EFAULT)
        if flags:
            raise SyscallError(errno.EINVAL)
        return _utimens_fd(call, dirfd, times, False)
    tbuf = ffi.new("char[32]", times) if times is not None else ffi.NULL

    def do(fd, p, is_link):
        check(lib.sn_utimensat(fd, b"", tbuf, AT_EMPTY_PATH))
    return _on_final(call, dirfd, path, not flags & AT_SYMLINK_NOFOLLOW, do)


def _timeval_to_timespec(raw):
    s1, u1, s2, u2 = struct.unpack("<qqqq", raw)
    if not (0 <= u1 < 1000000 and 0 <= u2 < 1000000):
        raise SyscallError(errno.EINVAL)
    return struct.pack("<qqqq", s1, u1 * 1000, s2, u2 * 1000)


@handler("utimensat")
def sys_utimensat(call):
    times = call.read(call.args[2], 32) if call.args[2] else None
    path = call.string(1) if call.args[1] else None
    flags = call.args[3]
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    if path == b"" and flags & AT_EMPTY_PATH and call.fd(0) != AT_FDCWD:
        return _utimens_fd(call, call.fd(0), times, True)
    if path == b"" and flags & AT_EMPTY_PATH:
        path = b"."
    elif path == b"":
        raise SyscallError(errno.ENOENT)
    return _utimens(call, call.fd(0), path, times, flags)


@handler("utimes")
def sys_utimes(call):
    times = _timeval_to_timespec(call.read(call.args[1], 32)) if call.args[1] else None
    return _utimens(call, AT_FDCWD, call.path(0), times, 0)


@handler("futimesat")
def sys_futimesat(call):
    times = _timeval_to_timespec(call.read(call.args[2], 32)) if call.args[2] else None
    return _utimens(call, call.fd(0), call.path(1) if call.args[1] else None, times, 0)


@handler("utime")
def sys_utime(call):
    times = None
    if call.args[1]:
        a, m = struct.unpack("<qq", call.read(call.args[1], 16))
        times = struct.pack("<qqqq", a, 0, m, 0)
    return _utimens(call, AT_FDCWD, call.path(0), times, 0)


@handler("truncate")
def sys_truncate(call):
    length = call.args[1]           # a long
    if length < 0:
        raise SyscallError(errno.EINVAL)
    loc = lookup(call, AT_FDCWD, call.path(0))
    if stat.S_ISDIR(loc.st.st_mode):
        raise SyscallError(errno.EISDIR)
    loc = permission.change(call, loc, WRITE if length else TRUNCATE)
    if length > loc.st.st_size and length > host_soft_limit(call.tid, "Max file size"):
        # the guest's RLIMIT_FSIZE, not the Sentry's: inode_newsize_ok's SIGXFSZ and EFBIG
        lib.sn_tgkill(call.process.tgid, call.tid, signal.SIGXFSZ)
        raise SyscallError(errno.EFBIG)
    fd = open_final(loc, os.O_WRONLY)
    try:
        os.ftruncate(fd, length)
    except OSError as e:
        raise SyscallError(e.errno)
    finally:
        os.close(fd)
    return 0


# ---- extended attributes ---------------------------------------------------------

XATTR_NAME_MAX, XATTR_SIZE_MAX = 255, 65536


def xattr_name(call, i):
    """An xattr name argument, as the kernel reads it: ERANGE when empty or
    longer than XATTR_NAME_MAX."""
    try:
        raw = call.string(i, XATTR_NAME_MAX + 1)
    except SyscallError as e:
        raise SyscallError(errno.ERANGE if e.errno == errno.ENAMETOOLONG else e.errno)
    if not raw:
        raise SyscallError(errno.ERANGE)
    return raw


def _xattr_get(call, path_i, follow):
    name = os.fsdecode(xattr_name(call, path_i + 1))
    loc = lookup(call, AT_FDCWD, call.path(path_i), follow=follow)
    if name.startswith(RESERVED):
        raise SyscallError(errno.ENODATA)       # the Sentry's own: never seen
    if name.startswith("user.") and not (stat.S_ISREG(loc.st.st_mode) or stat.S_ISDIR(loc.st.st_mode)):
        raise SyscallError(errno.ENODATA)       # xattr_permission: none on a node, a link, a socket
    fd = open_final(loc)
    try:
        value = os.getxattr(_proc_fd(fd), name)
    except OSError as e:
        raise SyscallError(e.errno)
    finally:
        os.close(fd)
    size = call.args[path_i + 3]
    if size == 0:
        return len(value)
    if len(value) > size:
        raise SyscallError(errno.ERANGE)
    call.write(call.args[path_i + 2], value)
    return len(value)


@handler("getxattr")
def sys_getxattr(call):
    return _xattr_get(call, 0, True)


@handler("lgetxattr")
def sys_lgetxattr(call):
    return _xattr_get(call, 0, False)


def _xattr_list(call, follow):
    loc = lookup(call, AT_FDCWD, call.path(0), follow=follow)
    fd = open_final(loc)
    try:
        names = os.listxattr(_proc_fd(fd))
    except OSError as e:
        raise SyscallError(e.errno)
    finally:
        os.close(fd)
    data = b"".join(os.fsencode(n) + b"\0" for n in names if not n.startswith(RESERVED))
    size = call.args[2]
    if size == 0:
        return len(data)
    if len(data) > size:
        raise SyscallError(errno.ERANGE)
    call.write(call.args[1], data)
    return len(data)


@handler("listxattr")
def sys_listxattr(call):
    return _xattr_list(call, True)


@handler("llistxattr")
def sys_llistxattr(call):
    return _xattr_list(call, False)


XATTR_CREATE, XATTR_REPLACE = 1, 2


def _xattr_set(call, follow, remove):
    if not remove and call.args[4] & ~(XATTR_CREATE | XATTR_REPLACE):
        raise SyscallError(errno.EINVAL)     # the flags first, as setxattr_copy checks them
    name = os.fsdecode(xattr_name(call, 1))
    check_xattr_name(name)
    if not remove and call.args[3] > XATTR_SIZE_MAX:
        raise SyscallError(errno.E2BIG)
    value = b"" if remove else call.read(call.args[2], call.args[3])
    flags = 0 if remove else call.args[4]

    def do(fd, p, is_link):
        check_xattr_change(call, os.lstat(p) if is_link else guest_stat(fd, os.stat(p)), name)
        if remove:
            os.removexattr(p, name)
        else:
            os.setxattr(p, name, value, flags)
    return _on_final(call, AT_FDCWD, call.path(0), follow, do)


CAP_SYS_ADMIN = 21


def check_xattr_change(call, st, name):
    """What Linux asks of a caller that sets or removes xattr `name` of a
    file (xattr_permission), asked of the guest's emulated ids: the Sentry
    does it with its own.  user.*: a regular file or directory only (EPERM),
    the sticky directory's owner, write permission (EACCES); trusted.*:
    CAP_SYS_ADMIN; system.posix_acl_*: the owner or CAP_FOWNER."""
    from sentry.kernel import idmap
    from sentry.kernel.credentials import CAP_FOWNER
    creds = call.task.creds
    owner = idmap.current.uid_view(st.st_uid) == creds.fsuid or creds.capable(CAP_FOWNER)
    if name.startswith("trusted.") and not creds.capable(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    if name.startswith("system.posix_acl_") and not owner:
        raise SyscallError(errno.EPERM)
    if name.startswith("user."):
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise SyscallError(errno.EPERM)
        if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX and not owner:
            raise SyscallError(errno.EPERM)
        if creds.checks_files:
            creds.check(st, 2)


def check_xattr_name(name):
    """xattrs under RESERVED are the Sentry's (an overlay's placeholder
    marks): no guest may set or remove one."""
    if name.startswith(RESERVED):
        raise SyscallError(errno.EPERM)


@handler("setxattr")
def sys_setxattr(call):
    return _xattr_set(call, True, False)


@handler("lsetxattr")
def sys_lsetxattr(call):
    return _xattr_set(call, False, False)


@handler("removexattr")
def sys_removexattr(call):
    return _xattr_set(call, True, True)


@handler("lremovexattr")
def sys_lremovexattr(call):
    return _xattr_set(call, False, True)


# ---- statfs, cwd --------------------------------------------------------------------

@handler("statfs")
def sys_statfs(call):
    loc = lookup(call, AT_FDCWD, call.path(0))
    fd = open_final(loc)
    buf = ffi.new("char[120]")
    try:
        check(lib.sn_fstatfs(fd, buf))
    finally:
        os.close(fd)
    call.write(call.args[1], ffi.buffer(buf, 120)[:])
    return 0


def _directory_to_enter(call):
    """The directory chdir(2) and chroot(2) name (argument 0): a directory
    (ENOTDIR) the caller may search (EACCES), as their LOOKUP_DIRECTORY and
    MAY_EXEC|MAY_CHDIR check it."""
    loc = lookup(call, AT_FDCWD, call.path(0))
    if not loc.is_dir:
        raise SyscallError(errno.ENOTDIR)
    permission.check(call, loc, permission.X)
    return loc


@handler("chdir", note="into the very directory the Sentry resolved, named by a magic link no guest thread "
         "can retarget (syscalls/pin.py)")
def sys_chdir(call):
    from syscalls import pin
    loc = _directory_to_enter(call)
    if loc.rel == ".":
        return Rewrite(SYS_FCHDIR, {0: loc.mount.guest_fd})      # a mount's root: its own hidden fd names it
    (addr,) = call.stage(pin.pinned(call, loc) + b"\0")
    kernel = call.kernel
    return Rewrite(args={0: addr}, on_exit=lambda task, result: pin.release(kernel, task))


@handler("chroot", note="emulated: the process's root, from which the Sentry resolves its paths "
         "(syscalls/lookup.py); CAP_SYS_CHROOT")
def sys_chroot(call):
    loc = _directory_to_enter(call)
    if not call.task.creds.capable_own(CAP_SYS_CHROOT):
        raise SyscallError(errno.EPERM)
    call.process.root = loc.spath
    call.kernel.publish_process(call.process)      # its paths are Python's from now on
    return 0


UNREACHABLE = "(unreachable)"


@handler("getcwd", note="the kernel's cwd, mapped back into the sandbox, and seen from the process's root")
def sys_getcwd(call):
    spath = cwd_sandbox_path(call)
    # as Linux: a cwd outside the process's root is marked, from the sandbox's
    seen = view_from(call.process.root, spath)
    data = (seen if seen is not None else UNREACHABLE + spath).encode() + b"\0"
    if call.args[1] < len(data):
        raise SyscallError(errno.ERANGE)
    call.write(call.args[0], data)
    return len(data)


IN_DONT_FOLLOW, IN_MASK_CREATE, IN_MASK_ADD = 0x02000000, 0x10000000, 0x20000000
ALL_INOTIFY_BITS = 0xfff | 0xe000 | 0x01000000 | IN_DONT_FOLLOW | 0x04000000 | IN_MASK_CREATE \
    | IN_MASK_ADD | 0x40000000 | 0x80000000


@handler("inotify_add_watch")
def sys_inotify_add_watch(call):
    mask = call.args[2]
    # the mask first, as Linux checks it: before the fd and the path
    if mask & IN_MASK_ADD and mask & IN_MASK_CREATE or not mask & ALL_INOTIFY_BITS:
        raise SyscallError(errno.EINVAL)
    ino = call.kernel.borrow_fd(call.process, call.fd(0))     # EBADF before the path, too
    try:
        if os.readlink(_proc_fd(ino)) != "anon_inode:inotify":
            raise SyscallError(errno.EINVAL)
        loc = lookup(call, AT_FDCWD, call.path(1), follow=not mask & IN_DONT_FOLLOW,
                     identity=True)          # an overlay's changes happen in the upper layer
    except BaseException:
        os.close(ino)
        raise
    target = open_final(loc)
    try:
        # the Sentry followed the name or not; the magic link is always followed
        return _inotify_add_watch(ino, _proc_fd(target), mask & ~IN_DONT_FOLLOW)
    finally:
        os.close(target)
        os.close(ino)


def _inotify_add_watch(fd, path, mask):
    wd = lib.sn_inotify_add_watch(fd, os.fsencode(path), mask)
    if wd < 0:
        raise SyscallError(-wd)
    return wd
