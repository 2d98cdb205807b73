"""File permissions the host does not check for the guest.

The host checks every access as sentry's own uid: right for a guest that is
root in its namespace (it could override any mode), wrong for one that
dropped to another user.  For such a guest (Credentials.checks_files) the
Sentry checks what Linux would, with the guest's emulated ids: search on
every directory a lookup passes (vfs/resolve.py asks `Call.may_search`), and
here the final operation -- open, exec, access, and every change to a
directory (create, remove, rename) before the mount prepares it.
"""
import errno
import os

from sentry.errors import SyscallError
from sentry.vfs.mount import CREATE, CREATE_IN, MOVE, REMOVE, TRUNCATE, WRITE

R, W, X = 4, 2, 1


def _creds(call):
    creds = call.task.creds
    return creds if creds is not None and creds.checks_files else None


def parent_st(call, loc):
    """The st of the directory holding loc (through the mount table: an
    overlay's parent may be in either layer)."""
    mount, rel = call.mounts.locate(os.path.dirname(loc.spath) or "/")
    return mount.find(rel)[1]


def change(call, loc, what):
    """Check, then loc.mount.prepare_change(loc, what): the one way a
    handler announces a change."""
    check_change(call, loc, what)
    return loc.mount.prepare_change(loc, what)


def check_change(call, loc, what):
    """change's checks alone: the guest's permission, a busy program."""
    creds = _creds(call)
    if creds is not None:
        if what in (CREATE, CREATE_IN, REMOVE, MOVE):
            dir_st = loc.st if what == CREATE_IN else parent_st(call, loc)
            creds.check(dir_st, W | X)
            if what in (REMOVE, MOVE) and loc.exists:
                creds.check_sticky(dir_st, loc.st)
        elif what in (WRITE, TRUNCATE) and loc.exists:
            creds.check(loc.st, W, owner=loc.mount.file_owner(loc.rel))
    if what in (WRITE, TRUNCATE) and loc.exists and call.kernel.text_busy(loc.st):
        # a program a sandbox process runs: the kernel would not know, should
        # the write go to an overlay's copy of it
        raise SyscallError(errno.ETXTBSY)


def access_bits(flags):
    """R and W as open flags' access mode gives them (none for mode 3)."""
    access = flags & os.O_ACCMODE
    return (R if access in (os.O_RDONLY, os.O_RDWR) else 0) | (W if access in (os.O_WRONLY, os.O_RDWR) else 0)


def open_want(flags):
    """The mode bits an open with these flags needs: its access, and
    write for O_TRUNC."""
    return access_bits(flags) | (W if flags & os.O_TRUNC else 0)


def check_open(call, loc, flags):
    """An existing file opened with these flags (not O_PATH)."""
    creds = _creds(call)
    if creds is None or not loc.exists:
        return
    creds.check(loc.st, open_want(flags), owner=loc.mount.file_owner(loc.rel))


def check_mode(call, st, want):
    """check, for a file known by its stat alone (an open file's)."""
    creds = _creds(call)
    if creds is not None:
        creds.check(st, want)


def check(call, loc, want, real=False):
    creds = _creds(call)
    if creds is not None and loc.exists:
        creds.check(loc.st, want, real, owner=loc.mount.file_owner(loc.rel))
