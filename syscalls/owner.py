"""Who owns what a guest creates.

On Linux a new file, directory, fifo, socket or symlink belongs to its
creator's fsuid, and to its fsgid -- or to the parent directory's group when
that directory is set-group-id, a new directory then inheriting S_ISGID too
(credentials(7), mkdir(2) "BSD group semantics").  The host kernel does the
group part itself, but every object it makes for the guest is made either by
the Sentry (mkdir, mknod, symlink, a unix socket's bind) or by the guest's own
host process (open with O_CREAT, rewritten to openat2), both running as the
Sentry's host uid.  So an object made for a guest whose emulated ids map to
other host ids is given them afterwards, here, by one rule:

  - `creator(call)`: the host (uid, gid) the task's new objects get, or None
    when those are the Sentry's own (a root guest: nothing to do, no cost);
  - `adopt_name(...)`: right after the Sentry made `name` in the confined
    parent directory -- it opens it O_PATH|O_NOFOLLOW there and adopts that;
  - `adopt_opened(...)`: at the exit of a guest's O_CREAT open that the
    Sentry saw no file for, on a borrowed copy of the returned fd, which must
    be the very inode now at that name; O_TMPFILE's nameless file likewise.
    Such an open runs O_EXCL (syscalls/file.py): a file another process made
    meanwhile is EEXIST, and the guest's call runs again and opens it.

An object is adopted only if it is of the kind made, still the Sentry's uid,
and born (statx btime; ctime where the file system keeps none) no earlier
than the moment before the call: a file another process made meanwhile, or
one a racing thread dup2()s over the returned fd number, keeps its owner.
"""
import os
import stat
import struct
import time

from sentry._native import ffi, lib
from sentry.errors import SyscallError
from sentry.kernel import idmap
from sentry.kernel.credentials import CAP_FSETID
from sentry.vfs.mount import open_final
from syscalls.lookup import Parent

AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW = 0x1000, 0x100
STATX_CTIME, STATX_BTIME = 0x80, 0x800
CLOCK_REALTIME_COARSE = 5
SENTRY_UID = os.geteuid()


def now():
    """The moment before a creation: file timestamps come from the coarse
    clock, which may lag a precise reading by a tick."""
    return time.clock_gettime_ns(CLOCK_REALTIME_COARSE)


def creator(call):
    """(host uid, host gid) a new object of the task must be given, or None
    (Credentials.creator_host_ids)."""
    creds = call.task.creds
    return creds.creator_host_ids() if creds is not None else None


def _born(fd):
    """Birth time of fd's file in ns (ctime where there is no btime)."""
    buf = ffi.new("char[256]")
    if lib.sn_statx(fd, b"", AT_EMPTY_PATH, STATX_BTIME | STATX_CTIME, buf) < 0:
        return None
    raw = ffi.buffer(buf, 256)[:]
    (mask,) = struct.unpack_from("<I", raw, 0)
    at = 80 if mask & STATX_BTIME else 96
    sec, nsec = struct.unpack_from("<qI", raw, at)
    return sec * 1_000_000_000 + nsec


def _adopt(call, ids, fd, st, parent_st, since):
    """Give the file open at fd (st: its fstat, checked by the caller) the
    creator's ids; its mode stays as made (a chown clears set-id bits), but
    for the set-group-id bit Linux strips from a file made in a set-group-id
    directory of a group its creator is not in."""
    born = _born(fd)
    if st.st_uid != SENTRY_UID or born is None or born < since:
        return False
    uid, gid = ids
    if parent_st.st_mode & stat.S_ISGID:
        gid = -1                         # the kernel gave it the directory's group
    if (uid, gid) == (st.st_uid, -1 if gid == -1 else st.st_gid):
        return True
    if lib.sn_fchownat(fd, b"", uid & 0xFFFFFFFF, gid & 0xFFFFFFFF, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0:
        return False
    if stat.S_ISLNK(st.st_mode):
        return True
    want = st.st_mode & 0o7777
    creds = call.task.creds
    if (parent_st.st_mode & stat.S_ISGID and not stat.S_ISDIR(st.st_mode)
            and want & (stat.S_ISGID | stat.S_IXGRP) == stat.S_ISGID | stat.S_IXGRP
            and idmap.current.gid_view(st.st_gid) not in (creds.fsgid, *creds.groups)
            and not creds.capable(CAP_FSETID)):
        want &= ~stat.S_ISGID
    if os.fstat(fd).st_mode & 0o7777 != want:
        os.chmod(f"/proc/self/fd/{fd}", want)
    return True


def adopt_fd(call, ids, fd, parent_st, since):
    """The Sentry just created the regular file open at fd (named, or an
    O_TMPFILE) in a directory whose st is parent_st, for the guest: make
    it the creator's."""
    if ids is None:
        return
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            _adopt(call, ids, fd, st, parent_st, since)
    except OSError:
        pass


def adopt_name(call, ids, parent_fd, name, kind, since, then=None):
    """The Sentry just made `name` (of type `kind`, S_IFDIR…) in the
    confined directory parent_fd for the guest: make it the creator's, then
    then(O_PATH fd, its stat) on the very file adopted, if given."""
    if ids is None:
        return
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError:
        return                      # gone already: a racing guest removed it
    try:
        st = os.fstat(fd)
        if stat.S_IFMT(st.st_mode) == kind and _adopt(call, ids, fd, st, os.fstat(parent_fd), since) \
                and then is not None:
            then(fd, st)
    except OSError:
        pass
    finally:
        os.close(fd)


def _the_new_file(call, task, result, loc, tmpfile, act):
    """At the exit of an open that created loc's file (or an O_TMPFILE in
    loc's directory) in the guest's context: act(dup, st, dir_st) on fd
    `result`, borrowed, if it is that new file -- the inode now at loc's
    name (for O_TMPFILE, a nameless one in that directory), a regular file.
    Another thread may have put anything at that fd number before this
    stop: those checks, not the number, decide."""
    if result < 0 or task.process is None:
        return
    try:
        dup = call.kernel.borrow_fd(task.process, result)
    except SyscallError:
        return
    try:
        st = os.fstat(dup)
        if not stat.S_ISREG(st.st_mode):
            return
        if tmpfile:
            dfd = open_final(loc)
            try:
                dir_st = os.fstat(dfd)
            finally:
                os.close(dfd)
            if st.st_nlink == 0 and st.st_dev == dir_st.st_dev:
                act(dup, st, dir_st)
            return
        with Parent(loc) as (pfd, name):
            there = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if (there.st_dev, there.st_ino) == (st.st_dev, st.st_ino):
                act(dup, st, os.fstat(pfd))
    except (OSError, SyscallError):
        pass
    finally:
        os.close(dup)


def adopt_opened(call, task, result, loc, ids, since, tmpfile):
    """The new file of an open the guest made (_the_new_file) is adopted:
    given the creator's ids (_adopt, which also checks it was born during
    the call and is the Sentry's uid's)."""
    _the_new_file(call, task, result, loc, tmpfile,
                  lambda dup, st, dir_st: _adopt(call, ids, dup, st, dir_st, since))
    return None


def setgid_restored(call, task, result, loc):
    """The new file of an open the guest made (_the_new_file) gets back the
    S_ISGID its creator's host process lost (syscalls/file.py _keeps_setgid),
    by the Sentry, which holds CAP_FSETID."""
    def restore(dup, st, dir_st):
        if not st.st_mode & stat.S_ISGID:
            os.chmod(f"/proc/self/fd/{dup}", (st.st_mode & 0o7777) | stat.S_ISGID)
    _the_new_file(call, task, result, loc, False, restore)
    return None
