"""The open family, and the fd-level calls that still need a check.

open* is a rewrite: the Sentry resolves the path, stages the confined relative
path and an `open_how` in the thread's staging slot, and the host kernel runs
`openat2(<mount's hidden fd>, path, how)` in the guest's own context, so the
new fd is a real host fd and reads and writes on it run natively.
"""
import errno
import fcntl
import logging
import os
import stat
import struct

from sentry.kernel import fdtraps
from sentry.vfs import devnodes
from sentry.platform import staging
from sentry._native import lib
from sentry.fsimpl.kernelfs import TIOCGPTPEER
from sentry.host import CONFINED, fdinfo, openat2
from sentry.vfs.mount import CREATE, CREATE_IN, HIDDEN_FD_BASE, MAX_MOUNTS, O_PATH, TRUNCATE, WRITE, open_final
from sentry.vfs.resolve import RESOLVE_BENEATH, RESOLVE_CACHED, RESOLVE_IN_ROOT, UnnamedTarget, guest_stat
from sentry.kernel.syscall import AT_FDCWD, After, Handover, PASS, Rewrite, sint
from syscalls import controlfiles, fsetid, idview, owner, permission
from syscalls.fdutil import Borrowed, check_owner, chmod_fd, chown_fd, is_hidden
from sentry.errors import SyscallError
from syscalls.lookup import Parent, ends_in_dots, lookup
from syscalls.path import XATTR_SIZE_MAX, check_xattr_change, check_xattr_name, xattr_name
from syscalls import locks, process, tty
from sentry.net import hostsock, links
from syscalls.registry import handler

log = logging.getLogger("sentry")

SYS_OPENAT2 = 437
O_ACCMODE, O_WRONLY, O_RDWR = 3, 1, 2
O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 0o100, 0o200, 0o1000, 0o2000
O_DIRECTORY, O_NOFOLLOW, O_LARGEFILE, O_NOATIME = 0o200000, 0o400000, 0o100000, 0o1000000
O_TMPFILE = 0o20000000 | O_DIRECTORY
# every flag openat(2) honours; openat2(2) rejects the rest, openat ignores them
VALID_FLAGS = 0o37777777 & ~0o10000000000 | O_PATH
O_PATH_FLAGS = O_PATH | O_DIRECTORY | O_NOFOLLOW | 0o2000000   # | O_CLOEXEC
OPEN_HOW_SIZE, PAGE_SIZE = 24, 4096                    # struct open_how, as this kernel knows it
RESOLVE_ALL = 0x3F


def check_open_flags(flags, strict=False):
    """build_open_flags' refusals, before the path is read or looked up, as
    Linux orders them.  open/openat drop what O_PATH ignores; openat2
    (strict) refuses it."""
    if flags & O_PATH:
        if strict and flags & ~O_PATH_FLAGS:
            raise SyscallError(errno.EINVAL)
        flags &= O_PATH_FLAGS
    if flags & (O_DIRECTORY | O_CREAT) == O_DIRECTORY | O_CREAT:
        raise SyscallError(errno.EINVAL)       # never a regular file made by O_DIRECTORY
    if flags & O_TMPFILE & ~O_DIRECTORY:
        if flags & (O_TMPFILE | O_CREAT) != O_TMPFILE or not flags & O_ACCMODE:
            raise SyscallError(errno.EINVAL)   # O_TMPFILE wants O_DIRECTORY and write access


def wants_write(flags):
    return (flags & O_ACCMODE) != 0 or flags & (O_TRUNC | (O_TMPFILE & ~O_DIRECTORY))


def open_rewrite(call, dirfd, path, flags, mode, scope=0, retried=False):
    guest_flags, guest_mode = flags, mode
    flags &= VALID_FLAGS
    creat = flags & O_CREAT and not flags & O_PATH
    tmpfile = (flags & O_TMPFILE) == O_TMPFILE
    follow = not (flags & O_NOFOLLOW) and not (creat and flags & O_EXCL)
    dots = creat and ends_in_dots(path)
    if creat and not dots and path.endswith(b"/"):
        # Linux's open_last_lookups: a name with a trailing "/" is never
        # created nor looked up, once its parent is found
        lookup(call, dirfd, path.rstrip(b"/"), follow=False, must_exist=False, scope=scope)
        raise SyscallError(errno.EISDIR)
    try:
        # a path ending in "." or ".." names a directory that must exist
        loc = lookup(call, dirfd, path, follow=follow, must_exist=not creat or dots,
                     identity=True, scope=scope)
    except UnnamedTarget as unnamed:
        return _reopen_unnamed(call, unnamed, flags)
    if creat and flags & O_EXCL and loc.exists:
        raise SyscallError(errno.EEXIST)       # do_open: before the file's type is looked at
    if loc.exists and stat.S_ISLNK(loc.st.st_mode) and not flags & O_PATH:
        raise SyscallError(errno.ELOOP)
    if loc.exists and not flags & O_PATH:
        # Linux's do_open: the type's errors before the permission check
        if creat and stat.S_ISDIR(loc.st.st_mode):
            raise SyscallError(errno.EISDIR)
        if flags & O_DIRECTORY and not stat.S_ISDIR(loc.st.st_mode):
            raise SyscallError(errno.ENOTDIR)
        permission.check_open(call, loc, flags)
        if flags & O_NOATIME:
            call.task.creds.check_chmod(loc.st)     # the owner or CAP_FOWNER (EPERM), as may_open
        if devnodes.in_host_directory(loc):
            # a node outside the sandbox's /dev (a guest's stand-in, a host
            # directory's node): the sandbox's own node of that number, or
            # the device policy's EPERM
            name = devnodes.node_name(loc.st)
            if name is None:
                raise SyscallError(errno.EPERM)
            return open_rewrite(call, AT_FDCWD, b"/dev/" + name.encode(),
                                flags & ~(O_CREAT | os.O_EXCL | O_TMPFILE), 0, retried=retried)
    if loc.mount.kind == "dev" and loc.rel == "tty" and not flags & O_PATH:
        tty.check_controlling_terminal(call)      # the driver's open, which O_PATH does not reach
    if (creat and not loc.exists) or tmpfile:
        loc = permission.change(call, loc, CREATE_IN if tmpfile else CREATE)
    elif wants_write(flags):
        loc = permission.change(call, loc, TRUNCATE if flags & O_TRUNC else WRITE)
    live = loc.mount.live_file(loc.rel) if loc.exists and not flags & O_PATH else None
    if live is not None:
        raise Handover(_reopened(live, flags), _live_opened(call, loc, flags), cloexec=bool(flags & os.O_CLOEXEC))
    elif creat and loc.mount.readonly:
        # it exists: should it vanish, the kernel must not create it where
        # the guest may not (an overlay's lower layer); openat2 then wants no mode
        flags &= ~(O_CREAT | O_EXCL)
        creat = False
    if creat and loc.exists and loc.rel == loc.mount.root_rel != ".":
        # a mount of a single file (vfs/mount.py): should it vanish from the
        # host meanwhile, the kernel must not make it anew in the host's
        # directory beside it
        flags &= ~(O_CREAT | O_EXCL)
        creat = False
    if creat or tmpfile:
        mode &= 0o7777
    else:
        mode = 0
    creating = bool(creat and not loc.exists) or tmpfile
    ids = owner.creator(call) if creating else None
    if _host_refuses(loc, flags, creating, tmpfile):
        # Linux would allow it (the emulated check above passed: root's
        # override, or the guest's own ids), the host would not allow the
        # guest's host process: the Sentry opens it and hands it over
        if flags & O_PATH:
            pinned = _open_path_pinned(call, loc, flags)
            if pinned is not None:
                return pinned
        else:
            fd = _open_for_guest(call, loc, flags, mode, creating, tmpfile, ids)
            if fd == RETRY and not retried:
                return open_rewrite(call, dirfd, path, guest_flags, guest_mode, scope, retried=True)
            if fd is not None and fd != RETRY:
                raise Handover(fd, lambda result: result, cloexec=bool(flags & os.O_CLOEXEC))
    if flags & O_PATH:
        flags &= O_PATH_FLAGS          # openat ignores the rest; openat2 rejects it
    else:
        flags |= O_LARGEFILE           # openat forces it on 64-bit; openat2 does not
    rerun = False
    if ids is not None and not tmpfile and not flags & O_EXCL:
        # the file must be this call's own: one another process makes
        # meanwhile is EEXIST, and the guest's call runs again (it opens it)
        flags |= O_EXCL
        rerun = True
    # a CAP_FSETID holder's writes keep the file's set-id bits (syscalls/fsetid.py)
    keep_setid = not flags & O_PATH and wants_write(flags) and fsetid.wants_traps(
        call.task.creds, stat.S_IFREG | mode if creating else loc.st.st_mode)
    how = struct.pack("<QQQ", flags, mode, CONFINED)
    path_addr, how_addr = call.stage(os.fsencode(loc.rel) + b"\0", how)
    args = {0: loc.mount.guest_fd, 1: path_addr, 2: how_addr, 3: len(how)}
    keep_setgid = creating and not tmpfile and _keeps_setgid(call, loc, mode)
    if ids is None:
        if wants_write(flags) and loc.mount.control_file(loc.rel) is not None:
            return Rewrite(SYS_OPENAT2, args, on_exit=controlfiles.trapped_on_open(call))
        then = (lambda task, result: owner.setgid_restored(call, task, result, loc)) if keep_setgid else None
        if keep_setid:
            then = fsetid.trapped_on_open(call, then)
        return Rewrite(SYS_OPENAT2, args, on_exit=then)
    # the guest's process creates it as the Sentry's uid: the creator's ids
    # are given at the exit, to that very file only (syscalls/owner.py)
    since = owner.now()

    def created(task, result):
        if rerun and result == -errno.EEXIST:
            call.kernel.rerun(task)
            return None
        owner.adopt_opened(call, task, result, loc, ids, since, tmpfile)
        if keep_setgid:               # after the adoption's chown, which clears it
            owner.setgid_restored(call, task, result, loc)
        return None
    return Rewrite(SYS_OPENAT2, args, on_exit=fsetid.trapped_on_open(call, created) if keep_setid else created)


def _keeps_setgid(call, loc, mode):
    """Whether a file this open creates keeps the S_ISGID bit it asks for
    where the guest's host process loses it: in a set-group-id directory of
    a group the process is not in, Linux strips it (inode_init_owner) unless
    the creator is in that group or holds CAP_FSETID, which the guest holds
    emulated only."""
    from sentry.kernel import idmap
    from sentry.kernel.credentials import CAP_FSETID
    if mode & (stat.S_ISGID | stat.S_IXGRP) != stat.S_ISGID | stat.S_IXGRP:
        return False
    parent = permission.parent_st(call, loc)
    if not parent.st_mode & stat.S_ISGID:
        return False
    creds = call.task.creds
    group = idmap.current.gid_view(parent.st_gid)
    return creds.capable(CAP_FSETID) or group == creds.fsgid or group in creds.groups


# ---- opens the host would refuse the guest's host process ---------------------
#
# The guest runs on the host as the Sentry's uid with no capability, so the
# host checks its opens against the mode bits as that uid: a root guest is
# refused a mode-000 file, or a file under a directory it may not search,
# that root opens on Linux (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), and a
# guest of another uid is refused its own 0644 file (the host sees "other").
# The Sentry has checked what Linux would (permission.py, or root's
# override); when the host's check (generic_permission on the mode bits, as
# native/resolve.c predicts it for the fast path too: sn_host_may_open) would
# refuse what that allowed, the Sentry opens the file itself, confined to
# its mount, and hands the fd over as the call's result (Handover: it lands
# in the guest's table in one step, at the lowest free number).  O_PATH fds
# cannot be handed over: the guest reopens the Sentry's through the fd
# holder (syscalls/pin.py) instead.

RETRY = -1
HANDOVER_KINDS = ("bind", "tmpfs", "layer", "hidden")    # host directories; not /dev, /proc, devpts


def _host_refuses(loc, flags, creating, tmpfile):
    """Whether the host would refuse this open to the guest's host process
    (native/resolve.c: sn_host_may_open, the fast path's prediction too)."""
    if loc.mount.kind not in HANDOVER_KINDS:
        return False
    st = loc.st
    if creating and not tmpfile:
        return not lib.sn_host_may_open(loc.mount.fd, os.fsencode(loc.rel), flags, 0, 0, 0, 0)
    if not flags & O_PATH and not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return False              # no fifo or device is ever opened by the Sentry
    return not lib.sn_host_may_open(loc.mount.fd, os.fsencode(loc.rel), flags, 1, st.st_mode, st.st_uid, st.st_gid)


def _open_for_guest(call, loc, flags, mode, creating, tmpfile, ids):
    """The Sentry's own fd for the guest's open (to hand over), or RETRY (a
    file appeared where it was to create one: the guest's call is looked up
    again), or None (the file is not the one resolved: the guest's own call
    runs, as it would have).  Errors are the kernel's, as SyscallError."""
    base = (flags & ~(O_NOFOLLOW | os.O_CLOEXEC | O_CREAT | O_EXCL)) | os.O_CLOEXEC | O_LARGEFILE
    if creating:
        since, umask = owner.now(), call.umask()
        if tmpfile:
            fd = openat2(loc.mount.fd, loc.rel, base | flags & O_EXCL, mode & ~umask)
            owner.adopt_fd(call, ids, fd, loc.st, since)
            return fd
        with Parent(loc) as (pfd, name):
            try:
                # the new file only: never another that appeared meanwhile
                fd = openat2(pfd, name, base | O_CREAT | O_EXCL, mode & ~umask)
            except SyscallError as e:
                if e.errno == errno.EEXIST and not flags & O_EXCL:
                    return RETRY
                raise
            owner.adopt_fd(call, ids, fd, os.fstat(pfd), since)
        return fd
    ref = open_final(loc)                  # O_PATH|O_NOFOLLOW, confined
    try:
        st = os.fstat(ref)
        if (st.st_dev, st.st_ino) != (loc.st.st_dev, loc.st.st_ino) or \
                not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            return None
        # the very inode resolved, reopened: no path is looked up again
        try:
            return os.open(f"/proc/self/fd/{ref}", base)
        except OSError as e:
            raise SyscallError(e.errno)
    finally:
        os.close(ref)


def _open_path_pinned(call, loc, flags):
    """O_PATH under a directory the host would not let the guest's host
    process search: the guest reopens the Sentry's confined O_PATH fd,
    held by the fd holder, through its magic link (syscalls/pin.py)."""
    from syscalls import pin
    if stat.S_ISLNK(loc.st.st_mode):
        return None
    how = struct.pack("<QQQ", flags & (O_PATH | O_DIRECTORY | os.O_CLOEXEC), 0, 0)
    path_addr, how_addr = call.stage(pin.pinned(call, loc) + b"\0", how)
    kernel = call.kernel
    return Rewrite(SYS_OPENAT2, {0: AT_FDCWD, 1: path_addr, 2: how_addr, 3: len(how)},
                   on_exit=lambda task, result: pin.release(kernel, task))


F_DUPFD, F_DUPFD_CLOEXEC = 0, 1030
SYS_FCNTL, SYS_DUP3 = 72, 292


REOPEN_FLAGS = O_ACCMODE | O_TRUNC | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC | O_NOATIME


def _reopen_narrower(call, fd, flags):
    """A memfd (or a deleted file) reopened through /proc/self/fd with no
    more access than its fd has -- read-only from a read-write memfd, as
    sealing programs hand one out -- is a new open file description on
    Linux, with the access asked: the Sentry reopens its own copy of the fd
    (the file, whatever number a racing thread moves), never with more
    access than that copy has.  The fd to hand over, or None (a dup)."""
    with Borrowed(call, fd) as b:
        st = os.fstat(b.fd)
        asked = permission.access_bits(flags)
        if not stat.S_ISREG(st.st_mode) or flags & O_ACCMODE == O_ACCMODE \
                or asked & ~permission.access_bits(b.flags):
            return None
        # Linux checks the inode's permission again, as for any open
        permission.check_mode(call, st, permission.open_want(flags))
        try:
            return os.open(f"/proc/self/fd/{b.fd}", (flags & REOPEN_FLAGS) | os.O_CLOEXEC)
        except OSError as e:
            raise SyscallError(e.errno)


def _live_opened(call, loc, flags):
    """The then() of a live file's handover: its number, and for a setting
    only CAP_NET_ADMIN may write, opened for writing, the writes on that
    number trapped first (syscalls/settings.py: the helper makes a guest
    root's)."""
    if not (wants_write(flags) and fdtraps.helper_written("/" + loc.spath.lstrip("/"))):
        return lambda result: result
    call.slot()                      # where the filter is staged
    kernel, task = call.kernel, call.task

    def opened(result):
        if result < 0:
            return result
        return After(result, lambda: fdtraps.trap_after(kernel, task, result, fdtraps.SETTING_TRAPS, result,
                                                        vital=False))
    return opened


def _reopened(ref, flags):
    """A new open file description of the file O_PATH fd `ref` holds, as the
    guest's open asks it (its own offset: never one another open shares)."""
    try:
        return os.open(f"/proc/self/fd/{ref}", (flags & REOPEN_FLAGS) | os.O_CLOEXEC)
    except OSError as e:
        raise SyscallError(e.errno)


def _reopen_unnamed(call, unnamed, flags):
    """/proc/self/fd/N (so /dev/fd/N, /dev/stdin) of a pipe or socket has no
    path to reopen; Linux reopens the object itself.  The closest safe form is
    a dup of N: it is named by a register, so a racing thread that puts a file
    at N gets that file with the access it was opened with, never more (a
    reopen through the magic link could upgrade a read-only file to writable)."""
    if unnamed.pid != call.process.vpid:
        raise SyscallError(errno.EACCES)
    fd = _reopen_narrower(call, unnamed.fd, flags)
    if fd is not None:
        raise Handover(fd, lambda result: result, cloexec=bool(flags & os.O_CLOEXEC))
    if flags & O_TRUNC and flags & O_ACCMODE:
        # a memfd or deleted file reopened to be written from the start: the
        # truncation Linux's reopen makes, on the file N names now (through
        # a write access the guest holds already: it could ftruncate N)
        with Borrowed(call, unnamed.fd) as b:
            if stat.S_ISREG(os.fstat(b.fd).st_mode) and b.flags & O_ACCMODE:
                os.ftruncate(b.fd, 0)
    return Rewrite(SYS_FCNTL, {0: unnamed.fd, 1: F_DUPFD_CLOEXEC if flags & os.O_CLOEXEC else F_DUPFD, 2: 0})


@handler("open")
def sys_open(call):
    check_open_flags(call.args[1])
    return open_rewrite(call, AT_FDCWD, call.path(0), call.args[1], call.args[2])


@handler("creat")
def sys_creat(call):
    return open_rewrite(call, AT_FDCWD, call.path(0), O_CREAT | O_WRONLY | O_TRUNC, call.args[1])


@handler("openat")
def sys_openat(call):
    check_open_flags(call.args[2])
    return open_rewrite(call, call.fd(0), call.path(1), call.args[2], call.args[3])


def _set_past(call, addr, n):
    """Whether any of the n bytes at addr (a structure's part this kernel
    does not know) is set, read as copy_struct_from_user's
    check_zeroed_user reads them: before the structure itself, a page at a
    time, stopping at the first set byte (EFAULT only for an unreadable page
    reached before one)."""
    while n > 0:
        chunk = min(n, PAGE_SIZE - addr % PAGE_SIZE)
        if any(call.read(addr, chunk)):
            return True
        addr, n = addr + chunk, n - chunk
    return False


@handler("openat2", note="the guest's RESOLVE_* flags are applied by the Sentry's own walk, as Linux applies them, "
         "inside the sandbox; RESOLVE_CACHED is always EAGAIN (never answered from a cache alone)")
def sys_openat2(call):
    size = call.args[3]
    if size < OPEN_HOW_SIZE:
        raise SyscallError(errno.EINVAL)
    if size > PAGE_SIZE:
        raise SyscallError(errno.E2BIG)
    if _set_past(call, call.args[2] + OPEN_HOW_SIZE, size - OPEN_HOW_SIZE):
        raise SyscallError(errno.E2BIG)       # a field this kernel does not know, set
    how = call.read(call.args[2], OPEN_HOW_SIZE)
    flags, mode, resolve = struct.unpack("<QQQ", how)
    if flags & ~(VALID_FLAGS | O_LARGEFILE) or resolve & ~RESOLVE_ALL:
        raise SyscallError(errno.EINVAL)
    if mode and not flags & (O_CREAT | O_TMPFILE) or mode & ~0o7777:
        raise SyscallError(errno.EINVAL)      # build_open_flags: a mode only to create, of S_IALLUGO
    if resolve & RESOLVE_BENEATH and resolve & RESOLVE_IN_ROOT:
        raise SyscallError(errno.EINVAL)
    check_open_flags(flags, strict=True)
    dirfd, path = call.fd(0), call.path(1)
    if is_hidden(dirfd) and staging.BASE <= call.args[1] < staging.BASE + staging.SIZE:
        # Our own rewritten open, restarted after a signal (ERESTARTSYS): only
        # the Sentry can have put its path in the staging area.
        dirfd, path = AT_FDCWD, os.fsencode(call.mounts.spath_at(dirfd, os.fsdecode(path)))
        resolve = 0
    if resolve & RESOLVE_CACHED:
        raise SyscallError(errno.EAGAIN)      # the caller tries again without, as Linux lets it
    return open_rewrite(call, dirfd, path, flags, mode, scope=resolve)


# ---- fds the Sentry keeps in every guest are invisible -----------------------

@handler("close", note="fds of the Sentry (>= %d) look closed" % HIDDEN_FD_BASE)
def sys_close(call):
    if is_hidden(call.args[0]):
        raise SyscallError(errno.EBADF)
    return PASS                 # a "negative" fd is a huge unsigned one: EBADF from the host


@handler("dup2", "dup3", note="the Sentry's fds (>= %d) look closed; a copy of a trapped fd "
         "(kernel/fdtraps.py) is trapped too" % HIDDEN_FD_BASE)
def sys_dup2(call):
    refill, call.task.lock_refill = getattr(call.task, "lock_refill", None), None
    if refill is not None and call.nr == SYS_DUP3 and refill == (call.fd(0), call.fd(1)):
        return PASS        # the Sentry's own: a hidden slot gets its filler back (syscalls/locks.py)
    if is_hidden(call.args[1]) or is_hidden(call.args[0]):
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


handler("fstatfs", "fchdir", note="the Sentry's fds (>= %d) look closed" % HIDDEN_FD_BASE)(not_hidden)
handler("fstat", note="the Sentry's fds (>= %d) look closed; traps in a user namespace of the guest's, "
        "whose view of ids it shows (syscalls/idview.py)" % HIDDEN_FD_BASE)(
    idview.viewed(1, idview.STAT_IDS)(not_hidden))


@handler("close_range", support="partial",
         note="a range over the Sentry's fds closes only the guest's fds below them")
def sys_close_range(call):
    first, last = call.args[0], call.args[1]
    if first > last:
        raise SyscallError(errno.EINVAL)
    if first >= HIDDEN_FD_BASE + MAX_MOUNTS or last < HIDDEN_FD_BASE:
        return PASS
    if first >= HIDDEN_FD_BASE:
        return 0
    return Rewrite(args={1: HIDDEN_FD_BASE - 1})


# ---- fd-level calls whose target must be checked -------------------------------

FREMOVEXATTR = 199


@handler("fsetxattr", "fremovexattr", note="done by the Sentry on its copy of the fd, for files in the "
         "sandbox's writable mounts only (EROFS in a read-only one, EPERM outside: a host file "
         "handed over); the Sentry's own xattr names (user.sentry.*) are refused with EPERM")
def sys_fsetxattr(call):
    name = os.fsdecode(xattr_name(call, 1))
    check_xattr_name(name)
    remove = call.nr == FREMOVEXATTR
    if not remove and call.args[3] > XATTR_SIZE_MAX:
        raise SyscallError(errno.E2BIG)
    value = b"" if remove else call.read(call.args[2], call.args[3])
    with Borrowed(call, call.fd(0)) as b:
        b.not_o_path().check_changeable()
        check_xattr_change(call, guest_stat(b.fd, os.fstat(b.fd)), name)
        if remove:
            os.removexattr(b.fd, name)
        else:
            os.setxattr(b.fd, name, value, call.args[4])
    return 0


@handler("fchown", note="checked against the guest's credentials, done by the Sentry on its copy of the "
         "fd, for files in the sandbox's writable mounts only (EPERM for a host file handed over)")
def sys_fchown(call):
    return chown_fd(call, call.fd(0), call.args[1], call.args[2])


@handler("fchmod", note="as fchown")
def sys_fchmod(call):
    return chmod_fd(call, call.fd(0), call.args[1])


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


# ioctl is an allow list by request (its low 32 bits: `unsigned int cmd`).
# Passed to the host: requests that act on the caller's own terminal, pty,
# socket or fd, or only read a file's attributes.  Translated or done by the
# Sentry: those naming a process, opening a pty's peer, changing inode flags.
# Anything else is ENOTTY, as for a request the file does not know, logged
# once per request: driver ioctls reach host devices and inodes (FS_IOC_SETVERSION
# changed a host file's generation through a read-only fd).
PASSED_IOCTLS = {
    # terminals: termios, window size, flow, break, controlling tty, line discipline (read)
    0x5401, 0x5402, 0x5403, 0x5404, 0x5405, 0x5406, 0x5407, 0x5408,   # TCGETS…TCSETAF
    0x802C542A, 0x402C542B, 0x402C542C, 0x402C542D,                   # TCGETS2…TCSETSF2
    0x5409, 0x540A, 0x540B, 0x5425,     # TCSBRK (tcdrain), TCXONC, TCFLSH, TCSBRKP
    0x540E, 0x5422,                     # TIOCSCTTY, TIOCNOTTY
    0x5411, 0x5413, 0x5414, 0x5415,     # TIOCOUTQ (SIOCOUTQ), TIOCGWINSZ, TIOCSWINSZ, TIOCMGET
    0x5424, 0x80045432, 0x80045440,     # TIOCGETD, TIOCGDEV, TIOCGEXCL
    # ptys of the sandbox's devpts
    0x80045430, 0x40045431, 0x80045439,  # TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK
    0x5420, 0x80045438,                 # TIOCPKT, TIOCGPKT
    # the fd itself
    0x541B, 0x5421, 0x5450, 0x5451, 0x5452, 0x5460,   # FIONREAD (SIOCINQ), FIONBIO, FIONCLEX, FIOCLEX, FIOASYNC, FIOQSIZE
    # sockets
    0x8905, 0x8906, 0x8907, 0x80108906, 0x80108907, 0x894B,   # SIOCATMARK, SIOCGSTAMP(NS) old/new, SIOCOUTQNSD
    # network interfaces, read only: SIOCGIFNAME, CONF, FLAGS, ADDR, DSTADDR, BRDADDR, NETMASK,
    # METRIC, MTU, HWADDR, INDEX, TXQLEN, MAP (answered by the Sentry where outbound sockets
    # may exist: sentry/net/hostsock.py)
    *hostsock.INTERFACE_QUERIES,
    # files: read-only queries, and clones into a file open for writing
    0x80086601, 0x80046601, 0x80087601, 0x80047601,   # FS_IOC_GETFLAGS, FS_IOC_GETVERSION (and 32-bit)
    0xC020660B, 0x00000002, 0x801C581F,               # FS_IOC_FIEMAP, FIGETBSZ, FS_IOC_FSGETXATTR
    0x40049409, 0x4020940D,                           # FICLONE, FICLONERANGE
    # block devices: sizes, read only
    0x80081272, 0x00001260, 0x00001268, 0x0000127B, 0x00001278, 0x00001279, 0x0000125E, 0x80081270,
    0x80045200,                         # RNDGETENTCNT
}
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
O_PATH_FLAG = 0o10000000


@handler("ioctl", support="partial",
         note="an allow list by request: terminal, pty, fd, socket and read-only file queries pass; "
              "process groups and owners are virtual pids; TIOCGPTPEER opens the slave by name in the "
              "sandbox's devpts; a pidfd's PIDFD_GET_INFO is translated; inode flags are set by the "
              "Sentry in writable mounts only; a guest root's SIOCSIFFLAGS (up/down) and SIOCSIFMTU on the "
              "sandbox's interfaces are made by the Sentry (sentry/net/links.py), others' EPERM; "
              "TIOCSTI/TIOCLINUX EPERM; any other request ENOTTY")
def sys_ioctl(call):
    req = call.args[1]
    if req in hostsock.INTERFACE_QUERIES and call.kernel.outbound_names is not None:
        # where a guest may hold a host socket: answered on the object, by the
        # sandbox's namespace (sentry/net/hostsock.py)
        return hostsock.interface_query(call, req)
    if req in PASSED_IOCTLS:
        return PASS
    if req in (TIOCSTI, TIOCLINUX):
        raise SyscallError(errno.EPERM)
    if req == TIOCGPTPEER:
        return tty.pty_peer(call)
    if req in (TIOCGPGRP, TIOCGSID):
        return _pid_out(call, call.args[2], lambda kernel, v: kernel.vpid(v))
    if req == TIOCSPGRP:
        return _pid_in(call, 2, lambda call, v: call.kernel.host_id(v, group=True) if v > 0 else v)
    if req in (FIOGETOWN, SIOCGPGRP):
        return _pid_out(call, call.args[2], _owner_to_guest)
    if req in (FIOSETOWN, SIOCSPGRP):
        return _pid_in(call, 2, _owner_to_host)
    if req in INODE_FLAG_SETTERS:
        return _set_inode_flags(call, req)
    if req in (links.SIOCSIFFLAGS, links.SIOCSIFMTU):
        done = links.ioctl(call, req, call.args[2])
        return PASS if done is None else done
    if (req >> 8) & 0xFF == process.PIDFS_IOCTL_TYPE:
        outcome = process.pidfd_ioctl(call, req)
        if outcome is not PASS:
            return outcome
    return _refuse_ioctl(call, req)


def _refuse_ioctl(call, req):
    """ENOTTY for a request sentry does not offer, after the fd checks the
    kernel makes first (EBADF: not open, the Sentry's, O_PATH)."""
    fd = call.fd(0)
    if fd < 0 or is_hidden(fd):
        raise SyscallError(errno.EBADF)
    what = call.host_fd_path(fd)
    try:
        flags = int(fdinfo(call.tid, fd)["flags"], 8)
    except (OSError, KeyError, ValueError):
        raise SyscallError(errno.EBADF)
    if flags & O_PATH_FLAG:
        raise SyscallError(errno.EBADF)
    key = ("ioctl", req)
    if key not in call.kernel.warned:
        call.kernel.warned.add(key)
        log.warning("ioctl %#x on %s: not offered by sentry (ENOTTY)", req, what)
    raise SyscallError(errno.ENOTTY)


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IOC32_GETFLAGS, FS_IOC32_SETFLAGS = 0x80086601, 0x40086602, 0x80046601, 0x40046602
FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR = 0x801C581F, 0x401C5820
INODE_FLAG_SETTERS = {FS_IOC_SETFLAGS: FS_IOC_GETFLAGS, FS_IOC32_SETFLAGS: FS_IOC32_GETFLAGS,
                      FS_IOC_FSSETXATTR: FS_IOC_FSGETXATTR}
FS_IMMUTABLE_FL, FS_APPEND_FL = 0x10, 0x20
FS_XFLAG_IMMUTABLE, FS_XFLAG_APPEND = 0x8, 0x10


def _set_inode_flags(call, req):
    """chattr: the owner (or CAP_FOWNER) may set a file's inode flags.  Done
    by the Sentry on its copy of the fd, for files in the sandbox's writable
    mounts only; the immutable and append-only flags are refused (EPERM, as
    without CAP_LINUX_IMMUTABLE): the Sentry could not remove such files."""
    size = 28 if req == FS_IOC_FSSETXATTR else 4
    new = call.read(call.args[2], size)
    with Borrowed(call, call.fd(0)) as b:
        b.not_o_path().check_changeable()
        check_owner(call, os.fstat(b.fd))
        old = fcntl.ioctl(b.fd, INODE_FLAG_SETTERS[req], bytes(size))
        guarded = (FS_XFLAG_IMMUTABLE | FS_XFLAG_APPEND) if size == 28 else (FS_IMMUTABLE_FL | FS_APPEND_FL)
        if (struct.unpack_from("<I", old)[0] ^ struct.unpack_from("<I", new)[0]) & guarded:
            raise SyscallError(errno.EPERM)
        fcntl.ioctl(b.fd, req, new)
    return 0


F_SETOWN, F_GETOWN, F_SETOWN_EX, F_GETOWN_EX = 8, 9, 15, 16
F_OWNER_PGRP = 2


@handler("fcntl", support="partial", note="owners and lock holders are virtual pids; "
         "an owner outside the sandbox is refused (ESRCH); locks and leases as flock (syscalls/locks.py)")
def sys_fcntl(call):
    not_hidden(call)
    cmd = call.args[1]
    kernel = call.kernel
    if cmd == F_SETOWN:                  # arg is an unsigned long, of which F_SETOWN reads an int
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
    if cmd in locks.LOCK_CMDS:
        return locks.fcntl_lock(call, cmd)
    return PASS
