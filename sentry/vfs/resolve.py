"""Path resolution, the Sentry's, against the mount table, with Linux semantics.

Symlinks resolve inside the sandbox, `..` stops at its root, 40 links at most
(ELOOP), ENOTDIR for a non-directory in the middle, ENAMETOOLONG past PATH_MAX.
The result is a (mount, relative path) pair free of symlinks and `..`; the
host kernel then repeats the walk under RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS,
so a guest that swaps a directory for a symlink meanwhile gets an error, never
a host file.
"""
import errno
import os
import stat
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


def _direct(mounts, comps, follow, trailing, must_exist, ctx):
    """The common case in one confined lookup: when the kernel, forbidden to
    follow any symlink, finds the whole path, there was no symlink to resolve
    and the walk below would reach the same place.  None: take the walk."""
    spath = mounts.links.substitute("/" + "/".join(comps), follow)
    mount, rel = mounts.locate(spath)
    if not mount.allows(rel) or not _reaches(mounts, mount):
        return None
    mount.prepare(rel, ctx)
    try:
        backing, st = mount.find_direct(rel)
    except SyscallError as e:
        # A missing or non-directory component met before any symlink (a
        # symlink would have stopped the kernel with ELOOP first) is met by
        # the walk too, at the same place.
        if must_exist and e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise
        return None
    if stat.S_ISLNK(st.st_mode) and follow:
        return None
    if trailing and not stat.S_ISDIR(st.st_mode):
        return None
    return Resolved(spath, backing, rel, st)


def _reaches(mounts, mount):
    """Whether the walk reaches `mount` through its mount point's ancestors,
    all directories of the mounts below with no symlink among them (the
    shortcut jumps straight to the mount at the longest prefix: under a
    missing, non-directory or symlink ancestor the walk finds no mount)."""
    parent = mount.path.rpartition("/")[0]
    if not parent:
        return True
    try:
        found = _direct(mounts, split(parent), False, False, True, None)
    except SyscallError:
        return False
    return found is not None and found.is_dir


def resolve(mounts, start, path, follow=True, must_exist=True, record=True, ctx=None, via=None, expose=False):
    """Resolve `path` (str) relative to sandbox directory `start`.

    ctx: the syscall on whose behalf (synthetic backends such as /proc
    answer differently for each caller).
    via: a list that receives the mount of every symlink followed.

    follow: follow a symlink in the final component.
    must_exist: raise ENOENT for a missing final component; otherwise return
    it with st=None (for creation), provided its parent exists.
    expose: the guest gets the result's identity, a stat or an fd
    (Mount.expose: an overlay copies a directory up first).
    """
    loc = _walk(mounts, start, path, follow, must_exist, record, ctx, via)
    return loc.mount.owner.expose(loc) if expose and loc.exists else loc


def _walk(mounts, start, path, follow, must_exist, record, ctx, via):
    if len(path) >= PATH_MAX:
        raise SyscallError(errno.ENAMETOOLONG)
    if not path:
        raise SyscallError(errno.ENOENT)
    # "x/" and "x/." (as "x/./", "x//.") name x as a directory: followed,
    # ENOTDIR unless it is one
    trailing = path.endswith("/") or path == "." or path.endswith("/.")
    if trailing:
        follow = True
    stack = [] if path.startswith("/") else split(start)
    todo = split(path)
    # a guest held to its own ids has every directory it passes checked
    search = ctx is not None and getattr(ctx, "checks_search", False)
    dir_st = None             # the st of "/" + stack, once known
    if todo and ".." not in todo and not search:
        found = _direct(mounts, stack + todo, follow, trailing, must_exist, ctx)
        if found is not None:
            return found
    links = 0
    seen_links = []        # symlinks followed, for the native link cache
    st = None
    if not todo:
        # "/" or "." or "a/.." style: the start (or root) itself
        return _at(mounts, "/" + "/".join(stack), ctx)
    while todo:
        comp = todo.pop(0)
        if len(comp) > NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        if search:
            if dir_st is None:
                dir_st = _dir_st(mounts, stack)
            ctx.may_search(dir_st)
        if comp == "..":
            if stack:
                stack.pop()
            dir_st = None
            if not todo:
                return _at(mounts, "/" + "/".join(stack), ctx)
            continue
        last = not todo
        cand = stack + [comp]
        spath = "/" + "/".join(cand)
        mount, rel = mounts.locate(spath)
        backing = mount
        if not mount.allows(rel):
            st = None
        else:
            mount.prepare(rel, ctx, last)
            try:
                backing, st = mount.find(rel)
            except SyscallError as e:
                if e.errno != errno.ENOENT:
                    raise
                st = None
        if st is None:
            if last and not must_exist:
                return Resolved(spath, mount, rel, None)
            raise SyscallError(errno.ENOENT)
        if stat.S_ISLNK(st.st_mode) and (not last or follow):
            seen_links.append(spath)
            if via is not None:
                via.append(mount)
            links += 1
            if links > MAX_LINKS:
                raise SyscallError(errno.ELOOP)
            target = backing.readlink(rel)
            ref = mount.fd_of(rel, ctx) if hasattr(mount, "fd_of") else None
            if ref is not None:
                # /proc/<pid>/fd/N: follow its path only if that path still
                # leads to the open file (not a pipe, not a file outside the
                # sandbox's view, not one renamed or deleted since)
                target = _fd_target(mounts, ctx, ref, target)
            if target.startswith("/"):
                stack = []
                dir_st = None
            todo = split(target) + todo
            if not todo:
                return _at(mounts, "/" + "/".join(stack), ctx)
            continue
        if not last and not stat.S_ISDIR(st.st_mode):
            raise SyscallError(errno.ENOTDIR)
        stack = cand
        dir_st = st
    if trailing and not stat.S_ISDIR(st.st_mode):
        raise SyscallError(errno.ENOTDIR)
    if record:
        for link in seen_links:
            _remember(mounts, link, ctx)
    return Resolved(spath, backing, rel, st)


def _dir_st(mounts, stack):
    """The st of directory "/" + stack (it was reached before)."""
    mount, rel = mounts.locate("/" + "/".join(stack))
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


def _at(mounts, spath, ctx):
    """A directory reached without a final name to look up ("/", "a/..")."""
    mount, rel = mounts.locate(spath)
    mount.prepare(rel, ctx)
    return _found(spath, mount, rel)


def _found(spath, mount, rel):
    backing, st = mount.find(rel)
    return Resolved(spath, backing, rel, st)


def _remember(mounts, link, ctx):
    """Cache a symlink for the native path, unless what it leads to depends on
    who asks (anything through /proc: /dev/stdin, /proc/self/cwd …)."""
    cache = mounts.links
    if link in cache.known or not mounts.locate(link)[0].stable_links:
        return
    via = []
    try:
        target = resolve(mounts, "/", link, record=False, ctx=ctx, via=via)
    except SyscallError:
        return
    if target.mount.stable_links and all(m.stable_links for m in via):
        cache.add(link, target.spath)
