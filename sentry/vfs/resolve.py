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
import re
import stat

from sentry._native import ffi, lib
from sentry.vfs import devnodes, sockperm
from sentry.vfs.mount import open_final
from sentry.errors import SyscallError

# openat2's resolve flags (the guest's own; the Sentry's confinement holds
# whatever they say)
RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x01, 0x02, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_CACHED = 0x08, 0x10, 0x20
SCOPED = RESOLVE_BENEATH | RESOLVE_IN_ROOT
# not openat2's: the process's root (chroot(2)), where ".." and absolute
# paths stop as for RESOLVE_IN_ROOT, `start` being that root
CHROOT = lib.SN_RESOLVE_CHROOT
# /proc's magic links: they name an object, not a path (fd/N, cwd, root, exe …)
MAGIC = re.compile(r"\d+(/task/\d+)?/(fd/\d+|cwd|root|exe|map_files/[^/]+|ns/[^/]+)")

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


STAT_ONLY = "stat"       # resolve()'s expose: the identity a stat shows, nothing more


class Resolved:
    __slots__ = ("spath", "mount", "rel", "st", "twin")

    def __init__(self, spath, mount, rel, st):
        self.spath = spath     # normalised sandbox path
        self.mount = mount     # the backing that holds it (an overlay's layer), or
                               # the mount itself when absent (to be created)
        self.rel = rel         # path under the mount's host root ("." = root)
        self.st = st           # lstat of the final component, None if absent
        self.twin = None       # where a stat's identity comes from, if not here
                               # (an overlay's lower directory: Mount.expose(stat_only))

    @property
    def exists(self):
        return self.st is not None

    @property
    def is_dir(self):
        return self.st is not None and stat.S_ISDIR(self.st.st_mode)


def split(path):
    return [c for c in path.split("/") if c and c != "."]


_walks = []        # sn_walk states to reuse (a walk may start another: _fd_target)


def _viewed(st):
    """Whether st may be a file the guest sees otherwise than the host:
    a device node's stand-in (vfs/devnodes.py), a socket whose mode an ACL
    carries (vfs/sockperm.py)."""
    return devnodes.may_be_standin(st) or stat.S_ISSOCK(st.st_mode)


def guest_stat(fd, st):
    """The stat the guest sees of the file behind fd, whose host stat is st:
    a stand-in as its device node, a socket with its ACL'd mode."""
    if not _viewed(st):
        return st
    return sockperm.view(fd, devnodes.view(fd, st))


def resolve(mounts, start, path, follow=True, must_exist=True, record=True, ctx=None, expose=False, scope=0):
    """Resolve `path` (str or bytes) relative to sandbox directory `start`.

    ctx: the syscall on whose behalf (synthetic backends such as /proc
    answer differently for each caller).

    follow: follow a symlink in the final component.
    must_exist: raise ENOENT for a missing final component; otherwise return
    it with st=None (for creation), provided its parent exists.
    record: let the walk remember the symlinks it followed (vfs/linkcache.py).
    expose: the guest gets the result's identity, a stat or an fd
    (Mount.expose: an overlay copies a directory up first); STAT_ONLY: a
    stat's, which an overlay's lower directory takes from its twin.
    scope: openat2's RESOLVE_* flags, as Linux applies them, with `start`
    the directory of the guest's dirfd (for an absolute path too).
    """
    loc = _walk(mounts, start, path, follow, must_exist, record and not scope, ctx, scope)
    if not expose or not loc.exists:
        return loc
    return loc.mount.owner.expose(loc, stat_only=expose == STAT_ONLY)


def _walk(mounts, start, path, follow, must_exist, record, ctx, scope):
    w = _walks.pop() if _walks else ffi.new("struct sn_walk *")
    flags = lib.SN_WALK_CALLBACKS
    if follow:
        flags |= lib.SN_WALK_FOLLOW
    if must_exist:
        flags |= lib.SN_WALK_MUST_EXIST
    if record and not mounts.private:     # a guest's own table remembers no links: nothing clears them there
        flags |= lib.SN_WALK_RECORD
    if ctx is not None and getattr(ctx, "checks_search", False):
        flags |= lib.SN_WALK_SEARCH    # a guest held to its own ids
    lib.sn_walk_init(w, os.fsencode(start), os.fsencode(path), flags, scope)
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
            if r == lib.SN_WALK_READLINK:
                _serve_target(mounts, w, ctx, answer[0])
                continue
            assert r == lib.SN_WALK_LOOKUP, r
            answer = _serve(mounts, w, ctx)
        spath = os.fsdecode(ffi.string(w.spath))
        rel = os.fsdecode(ffi.string(w.rel))
        if not w.exists:
            return Resolved(spath, mounts.entries[w.index].owner, rel, None)
        if w.python:
            loc = Resolved(spath, answer[0], rel, answer[1])
            if _viewed(loc.st) and hasattr(loc.mount, "fd"):
                fd = open_final(loc)
                try:
                    loc.st = guest_stat(fd, loc.st)
                finally:
                    os.close(fd)
            return loc
        try:
            st = guest_stat(w.fd, os.fstat(w.fd))
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
    if not mount.allows(rel):
        return None
    mount.prepare(rel, ctx, bool(w.final))
    try:
        backing, st = mount.find(rel)
    except SyscallError as e:
        if e.errno != errno.ENOENT:
            raise
        return None
    if stat.S_ISLNK(st.st_mode):
        w.ans = lib.SN_ANS_MAGIC if hasattr(mount, "magic_link") and mount.magic_link(rel) else lib.SN_ANS_LINK
    else:
        w.ans = lib.SN_ANS_DIR if stat.S_ISDIR(st.st_mode) else lib.SN_ANS_OTHER
    return backing, st


def _serve_target(mounts, w, ctx, backing):
    """The target of the symlink just served, which the walk follows."""
    mount = mounts.entries[w.index]
    rel = os.fsdecode(ffi.string(w.rel))
    target = backing.readlink(rel)
    ref = mount.fd_of(rel, ctx) if hasattr(mount, "fd_of") else None
    if ref is not None:
        # /proc/<pid>/fd/N: follow its path only if that path still leads to
        # the open file (not a pipe, not a file outside the sandbox's view,
        # not one renamed or deleted since)
        target = _fd_target(mounts, ctx, ref, target)
    t = os.fsencode(target)
    if len(t) >= PATH_MAX:
        raise SyscallError(errno.ENAMETOOLONG)
    w.target = t
    w.answered = 2


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
            if (found.st.st_dev, found.st.st_ino) == (st.st_dev, st.st_ino) or _live_is(found, st):
                return found.spath
        except SyscallError:
            pass
    raise UnnamedTarget(pid, fd)


def _live_is(found, st):
    """Whether resolved location `found` is a stand-in for the kernel's file
    st (Mount.live_file: a setting of the sandbox's own namespace), which
    an open of that path opens again: then a reopen through /proc/<pid>/fd
    is an open of that path, as on Linux a new open of the same file."""
    live = found.mount.live_file(found.rel) if found.exists else None
    if live is None:
        return False
    held = os.fstat(live)
    return (held.st_dev, held.st_ino) == (st.st_dev, st.st_ino)
