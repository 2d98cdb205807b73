"""Path resolution, the Sentry's, against the mount table, with Linux semantics.

The walk itself is native/resolve.c, the one implementation the native fast
path uses too: symlinks resolve inside the sandbox, `..` stops at its root,
40 links at most (ELOOP), ENOTDIR for a non-directory in the middle or before
a trailing "/", ENAMETOOLONG past PATH_MAX or NAME_MAX.  Each name is found
with one confined lookup from its mount's root (RESOLVE_BENEATH|
RESOLVE_NO_SYMLINKS), so a guest that swaps a directory for a symlink
meanwhile gets an error, never a host file.  The result is a (mount, relative
path) pair free of symlinks and `..`.

Python serves the names of synthetic mounts (/proc, /sys: they are made when
looked up, and depend on who asks), and checks search permission for a guest
held to its own ids: the walk stops and asks (SN_WALK_LOOKUP,
SN_WALK_SEARCH_DIR), then goes on.
"""
import errno
import os
import stat

from sentry._native import ffi, lib
from syscalls.errors import SyscallError

MAX_LINKS = 40
PATH_MAX = 4096
NAME_MAX = 255


class UnnamedTarget(SyscallError):
    """Following /proc/<pid>/fd/N led to an object with no path (a pipe, a
    socket, an anonymous inode).  Linux reaches the object itself; callers
    that can (open, stat) do the same through the fd, the rest see ENOENT."""

    def __init__(self, pid, fd):
        super().__init__(errno.ENOENT)
        self.pid, self.fd = pid, fd


class Resolved:
    __slots__ = ("spath", "mount", "rel", "st")

    def __init__(self, spath, mount, rel, st):
        self.spath = spath     # normalised sandbox path
        self.mount = mount     # the backing that holds it (an overlay's layer), or
                               # the mount itself when absent (to be created)
        self.rel = rel         # path under the mount's host root ("." = root)
        self.st = st           # lstat of the final component, None if absent

    @property
    def exists(self):
        return self.st is not None

    @property
    def is_dir(self):
        return self.st is not None and stat.S_ISDIR(self.st.st_mode)


def split(path):
    return [c for c in path.split("/") if c and c != "."]


_walks = []        # sn_walk states to reuse (a walk may start another: _fd_target)


def resolve(mounts, start, path, follow=True, must_exist=True, record=True, ctx=None, expose=False):
    """Resolve `path` (str or bytes) relative to sandbox directory `start`.

    ctx: the syscall on whose behalf (synthetic backends such as /proc
    answer differently for each caller).

    follow: follow a symlink in the final component.
    must_exist: raise ENOENT for a missing final component; otherwise return
    it with st=None (for creation), provided its parent exists.
    record: let the walk remember the symlinks it followed (vfs/linkcache.py).
    expose: the guest gets the result's identity, a stat or an fd
    (Mount.expose: an overlay copies a directory up first).
    """
    loc = _walk(mounts, start, path, follow, must_exist, record, ctx)
    return loc.mount.owner.expose(loc) if expose and loc.exists else loc


def _walk(mounts, start, path, follow, must_exist, record, ctx):
    w = _walks.pop() if _walks else ffi.new("struct sn_walk *")
    flags = lib.SN_WALK_CALLBACKS
    if follow:
        flags |= lib.SN_WALK_FOLLOW
    if must_exist:
        flags |= lib.SN_WALK_MUST_EXIST
    if record:
        flags |= lib.SN_WALK_RECORD
    if ctx is not None and getattr(ctx, "checks_search", False):
        flags |= lib.SN_WALK_SEARCH    # a guest held to its own ids
    lib.sn_walk_init(w, os.fsencode(start), os.fsencode(path), flags)
    answer = None                       # what Python found for the last name it served
    try:
        while True:
            r = lib.sn_walk(mounts.table, w)
            if r == lib.SN_WALK_DONE:
                break
            if r < 0:
                raise SyscallError(-r)
            if r == lib.SN_WALK_SEARCH_DIR:
                ctx.may_search(_dir_st(mounts, os.fsdecode(ffi.string(w.spath))))
                continue
            assert r == lib.SN_WALK_LOOKUP, r
            answer = _serve(mounts, w, ctx)
        spath = os.fsdecode(ffi.string(w.spath))
        rel = os.fsdecode(ffi.string(w.rel))
        if not w.exists:
            return Resolved(spath, mounts.entries[w.index].owner, rel, None)
        if w.python:
            return Resolved(spath, answer[0], rel, answer[1])
        try:
            st = os.fstat(w.fd)
        finally:
            os.close(w.fd)
            w.fd = -1
        return Resolved(spath, mounts.entries[w.index], rel, st)
    finally:
        _walks.append(w)


def _serve(mounts, w, ctx):
    """Look up one name of a mount Python serves, for the walk."""
    mount = mounts.entries[w.index]
    rel = os.fsdecode(ffi.string(w.rel))
    w.answered = 1
    w.ans = lib.SN_ANS_ABSENT
    if mount.allows(rel):
        mount.prepare(rel, ctx, bool(w.final))
        try:
            backing, st = mount.find(rel)
        except SyscallError as e:
            if e.errno != errno.ENOENT:
                raise
            return None
        if stat.S_ISLNK(st.st_mode):
            w.ans = lib.SN_ANS_LINK
            if w.follows:
                target = backing.readlink(rel)
                ref = mount.fd_of(rel, ctx) if hasattr(mount, "fd_of") else None
                if ref is not None:
                    # /proc/<pid>/fd/N: follow its path only if that path still
                    # leads to the open file (not a pipe, not a file outside the
                    # sandbox's view, not one renamed or deleted since)
                    target = _fd_target(mounts, ctx, ref, target)
                t = os.fsencode(target)
                if len(t) >= PATH_MAX:
                    raise SyscallError(errno.ENAMETOOLONG)
                w.target = t
        else:
            w.ans = lib.SN_ANS_DIR if stat.S_ISDIR(st.st_mode) else lib.SN_ANS_OTHER
        return backing, st
    return None


def _dir_st(mounts, spath):
    """The st of directory spath (it was reached before)."""
    mount, rel = mounts.locate(spath)
    return mount.find(rel)[1]


def _fd_target(mounts, ctx, ref, target):
    pid, fd = ref
    try:
        st = os.stat(f"/proc/{ctx.kernel.host_pid(pid)}/fd/{fd}")
    except OSError:
        raise SyscallError(errno.ENOENT)
    if target.startswith("/"):
        try:
            found = resolve(mounts, "/", target, record=False, ctx=ctx)
            if (found.st.st_dev, found.st.st_ino) == (st.st_dev, st.st_ino):
                return found.spath
        except SyscallError:
            pass
    raise UnnamedTarget(pid, fd)
