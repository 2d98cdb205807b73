"""From a syscall's (dirfd, path) arguments to a resolved sandbox location.

Every path-taking handler goes through `lookup`; the host paths the kernel
reports for guest fds are mapped back into the sandbox here, so a dirfd never
leads outside it.
"""
import errno
import os
import stat

from sentry.vfs import resolve as _resolve
from sentry.vfs.mount import is_hidden_fd, split_deleted
from sentry.kernel.syscall import AT_FDCWD
from sentry.errors import SyscallError


def fd_sandbox_path(call, fd, deleted_ok=False):
    """Sandbox path of the file behind guest fd `fd` (ENOENT if none)."""
    if is_hidden_fd(fd):
        raise SyscallError(errno.EBADF)        # the Sentry's own: not the guest's to name
    return host_to_sandbox(call, call.host_fd_path(fd), deleted_ok)


def cwd_sandbox_path(call):
    """Sandbox path of the guest's cwd, as the kernel keeps it."""
    try:
        host = os.readlink(f"/proc/{call.tid}/cwd")
    except OSError:
        raise SyscallError(errno.ENOENT)
    return host_to_sandbox(call, host)


def host_to_sandbox(call, host, deleted_ok=False):
    """Sandbox path of a host path the kernel reported; ENOENT outside the
    sandbox, for non-paths (pipe:[…]) and, unless deleted_ok, deleted files."""
    host, deleted = split_deleted(host)
    if deleted and not deleted_ok:
        raise SyscallError(errno.ENOENT)
    spath = call.mounts.sandbox_path(host) if host.startswith("/") else None
    if spath is None:
        raise SyscallError(errno.ENOENT)
    return spath


def start_dir(call, dirfd, path, scoped=False):
    """The sandbox directory a relative path starts from (for a scoped
    openat2, an absolute one too: it starts at dirfd's)."""
    if path.startswith("/") and not scoped:
        return "/"
    if dirfd == AT_FDCWD:
        return cwd_sandbox_path(call)
    if is_hidden_fd(dirfd):
        raise SyscallError(errno.EBADF)
    try:
        st = os.stat(f"/proc/{call.tid}/fd/{dirfd}")
    except OSError:
        raise SyscallError(errno.EBADF)
    if not stat.S_ISDIR(st.st_mode):
        raise SyscallError(errno.ENOTDIR)
    return fd_sandbox_path(call, dirfd)


def lookup(call, dirfd, path, follow=True, must_exist=True, identity=False, scope=0):
    """Resolve guest path bytes relative to dirfd (an int, AT_FDCWD allowed).
    identity: the guest gets the file's identity (a stat, an fd), so an
    overlay copies a directory up first (Mount.expose); resolve.STAT_ONLY:
    a stat's, which a lower directory's twin gives without a copy-up.
    scope: openat2's RESOLVE_* flags (sentry/vfs/resolve.py)."""
    p = os.fsdecode(path)
    scoped = bool(scope & _resolve.SCOPED)
    start = start_dir(call, dirfd, p, scoped=scoped)
    root = call.process.root
    if root != "/" and not scoped:
        start, p, scope = _from_root(root, start, p)
    return _resolve.resolve(call.mounts, start, p, follow, must_exist, ctx=call,
                            expose=identity, scope=scope)


def _from_root(root, start, path):
    """A chrooted process's path as the walk takes it: an absolute one, or
    a relative one from a directory below the root, from the root, where
    `..` and absolute symlinks stop; a relative one from a directory
    outside it (a cwd left there) is not held, as on Linux."""
    if path.startswith("/"):
        return root, path, _resolve.CHROOT
    below = view_from(root, start)
    if below is None or not path:
        return start, path, 0
    return root, below.rstrip("/") + "/" + path, _resolve.CHROOT


def view_from(root, spath):
    """Sandbox path `spath` as a process whose root is `root` names it
    (chroot(2)); None where it lies outside that root."""
    if root == "/":
        return spath
    if spath == root:
        return "/"
    if spath.startswith(root + "/"):
        return spath[len(root):]
    return None


def ends_in_dots(path):
    """Whether path's last name is "." or ".." (or the path is "/" or
    empty), as Linux's walk sees it (LAST_DOT, LAST_DOTDOT, LAST_ROOT): it
    names a directory that must exist, never a name to create."""
    stripped = path.rstrip(b"/")
    return not stripped or stripped.rpartition(b"/")[2] in (b".", b"..")


class Parent:
    """The confined parent directory of a resolved location, for *at calls on
    a single name: `with Parent(loc) as (fd, name): os.mkdir(name, dir_fd=fd)`."""

    def __init__(self, loc):
        self.loc = loc

    def __enter__(self):
        if self.loc.rel == ".":
            raise SyscallError(errno.EBUSY)     # the mount point itself
        self.fd, self.name = self.loc.mount.open_parent(self.loc.rel)
        return self.fd, self.name

    def __exit__(self, *exc):
        os.close(self.fd)
        if exc[0] is not None and issubclass(exc[0], OSError) and not isinstance(exc[1], SyscallError):
            raise SyscallError(exc[1].errno)
        return False
