"""Helpers on a guest fd that several handler families share (file.py,
path.py, locks.py, tty.py, socket.py): whether the number is the Sentry's,
and the Sentry's own copy of the open file it names."""
import errno
import fcntl
import os
import stat

from sentry.errors import SyscallError
from sentry.vfs import devnodes, sockperm
from sentry.vfs.mount import O_PATH, is_hidden_fd, split_deleted

is_hidden = is_hidden_fd


class Borrowed:
    """A Sentry-side duplicate of guest fd `fd` (pidfd_getfd) and the host
    directory (a mount, or an overlay's layer) its file lives in -- a deleted
    one's too -- or None: outside every mount (a host file handed over on
    stdin, the host's terminal), or no file at all (a pipe, a socket, an
    anonymous inode).  Checks and actions use the duplicate only, never the
    fd number again: a racing thread may put another file at that number
    meanwhile, never into the duplicate.  A context manager: closes it."""

    def __init__(self, call, fd, hidden_ok=False):
        if fd < 0 or (is_hidden(fd) and not hidden_ok):
            raise SyscallError(errno.EBADF)
        self.fd = call.kernel.borrow_fd(call.process, fd, hidden_ok)
        try:
            host = split_deleted(os.readlink(f"/proc/self/fd/{self.fd}"))[0]
            self.flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        except OSError:
            os.close(self.fd)
            raise SyscallError(errno.EBADF)
        self.backing = call.mounts.backing_of(host) if host.startswith("/") else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
        if exc[0] is not None and issubclass(exc[0], OSError) and not isinstance(exc[1], SyscallError):
            raise SyscallError(exc[1].errno or errno.EIO)
        return False

    def detach(self):
        """The duplicate, handed to the caller to close (leaving the block
        does not close it then)."""
        fd, self.fd = self.fd, None
        return fd

    @property
    def proc_path(self):
        return f"/proc/self/fd/{self.fd}"

    @property
    def in_writable_mount(self):
        return self.backing is not None and not self.backing.readonly

    def not_o_path(self):
        """Calls on the open file itself (fchmod, fsetxattr, ioctl…) do not
        take an O_PATH fd."""
        if self.flags & O_PATH:
            raise SyscallError(errno.EBADF)
        return self

    def check_changeable(self):
        """The Sentry changes a file's attributes for the guest (with its own
        privileges, after checking the guest's emulated ones) only inside the
        sandbox's writable mounts: EROFS in a read-only mount (an overlay's
        lower layer, a node of /dev), EPERM outside every mount, where the
        file is the host's and the guest, which holds no capability there,
        could not either."""
        if self.backing is None:
            raise SyscallError(errno.EPERM)
        self.backing.check_writable()
        return self


def check_owner(call, st):
    """The file's owner, or CAP_FOWNER (EPERM): chmod, times, inode flags."""
    call.task.creds.check_chmod(st)


def chown_fd(call, fd, uid, gid, empty_path=False):
    """fchown, and fchownat(fd, "", AT_EMPTY_PATH) (which takes an O_PATH fd)."""
    with Borrowed(call, fd) as b:
        if not empty_path:
            b.not_o_path()
        b.check_changeable()
        host = call.task.creds.chown_ids(os.fstat(b.fd), uid, gid)
        os.chown(b.proc_path, *host)
    return 0


def chmod_fd(call, fd, mode, empty_path=False):
    """fchmod, and fchmodat2(fd, "", AT_EMPTY_PATH)."""
    with Borrowed(call, fd) as b:
        if not empty_path:
            b.not_o_path()
        b.check_changeable()
        st = os.fstat(b.fd)
        if stat.S_ISLNK(st.st_mode):
            raise SyscallError(errno.EOPNOTSUPP)
        check_owner(call, st)
        chmod_host(b.proc_path, st, call.task.creds.chmod_mode(st, mode))
    return 0


def chmod_host(path, st, mode):
    """chmod of the host file at path (whose stat was st) to the guest's
    new mode, keeping what the Sentry's stand-ins add on the host: a
    device's sticky mark (vfs/devnodes.py), a socket's ACL entry for
    sentry's uid (vfs/sockperm.py)."""
    if devnodes.is_standin(path, st):
        mode |= devnodes.MARK
    os.chmod(path, mode)
    if stat.S_ISSOCK(st.st_mode) and st.st_uid != os.geteuid():
        sockperm.grant(path, mode)
