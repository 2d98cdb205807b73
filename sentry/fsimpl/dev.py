"""/dev: the device nodes every program expects, and no other."""
import errno
import os

from sentry.vfs.mount import Mount
from sentry.errors import SyscallError


class DevMount(Mount):
    """A /dev of the sandbox's own: the host's null, zero, full, random,
    urandom and tty, the usual symlinks, and nothing else, not even in a
    listing.

    Given the private mount namespace (vfs/mountns.py), it is a small
    read-only tmpfs the helper fills: the nodes made anew (mknod, as root) or
    the host's bound over empty files (in a user namespace, where mknod is
    refused; a listing then says DT_REG for them, as in rootless containers);
    `ptmx` a symlink to pts/ptmx when the sandbox has its own devpts, as in
    containers; directories where /dev/pts and /dev/shm are mounted.  Without
    the namespace it is the host's /dev, narrowed to those names: they alone
    resolve, though a listing shows the host's.

    Device content may be written; names and attributes may not (EROFS): a
    chmod of the host's /dev/null would change the host's."""

    kind = "dev"
    synthetic = True
    NODES = {"null", "zero", "full", "random", "urandom", "tty"}
    # symlinks into /proc/self/fd, resolved like any other (to the synthetic /proc)
    LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2"}
    PTY_LINKS = {"ptmx": "pts/ptmx"}
    # what the native fast path may open alone: /dev/tty is checked first
    # (syscalls/tty.py), it may be the terminal of whoever ran sentry
    FAST_NODES = NODES - {"tty"}

    def __init__(self, path="/dev", mountns=None, host_root=None, pts=False, mounted=()):
        """With mountns: a private /dev on host_root (a directory of the
        Sentry's private one), with ptmx if pts, and a directory for each
        mount point in `mounted` (names under /dev)."""
        if mountns is None:
            super().__init__(path, "/dev", readonly=True)
            self.names = self.NODES | set(self.LINKS)
            return
        links = dict(self.LINKS, **(self.PTY_LINKS if pts else {}))
        os.mkdir(host_root, 0o700)
        fd = mountns.make_dev(os.path.realpath(host_root), sorted(self.NODES), links, sorted(mounted))
        super().__init__(path, host_root, readonly=True)
        os.close(self.fd)          # the empty directory of the host's namespace
        self.fd = fd
        self.names = self.NODES | set(links) | set(mounted)

    def allows(self, rel):
        return rel == "." or rel in self.names

    def check_content_writable(self, rel):
        if rel not in self.NODES:
            raise SyscallError(errno.EROFS)
