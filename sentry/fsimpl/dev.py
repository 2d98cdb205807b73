"""/dev: the host's device nodes that every program expects, and no other."""
import errno
import os

from sentry.vfs.mount import O_PATH, Mount
from syscalls.errors import SyscallError


class DevMount(Mount):
    """The host's /dev, narrowed to a few device nodes.

    Only these names resolve.  Their content may be written (they are devices,
    not files of the host); their names and attributes may not: a chmod of
    /dev/null would change the host's.

    With ptys (a devpts instance of the sandbox's own at /dev/pts), `ptmx` is
    a symlink to pts/ptmx, as in containers: the host's /dev/ptmx would make
    ptys of the host's instance.  That symlink lives in a private directory
    (links_dir) and is served in place of the host's node."""

    kind = "dev"
    NODES = {"null", "zero", "full", "random", "urandom", "tty"}
    # symlinks into /proc/self/fd, resolved like any other (to the synthetic /proc)
    LINKS = {"fd", "stdin", "stdout", "stderr"}
    PTY_LINKS = {"ptmx": "pts/ptmx"}
    # what the native fast path may open alone: /dev/tty is checked first
    # (syscalls/tty.py), it may be the terminal of whoever ran sentry
    FAST_NODES = NODES - {"tty"}

    def __init__(self, path="/dev", links_dir=None):
        super().__init__(path, "/dev", readonly=True)
        self.own_links = set()
        self.links_fd = None
        if links_dir is not None:
            os.mkdir(links_dir, 0o755)
            for name, target in self.PTY_LINKS.items():
                os.symlink(target, os.path.join(links_dir, name))
            self.own_links = set(self.PTY_LINKS)
            self.links_fd = os.open(links_dir, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def allows(self, rel):
        return rel == "." or rel in self.NODES or rel in self.LINKS or rel in self.own_links

    def check_content_writable(self, rel):
        if rel not in self.NODES:
            raise SyscallError(errno.EROFS)

    def open_parent(self, rel):
        if rel in self.own_links:
            return os.dup(self.links_fd), rel
        return super().open_parent(rel)

    def lstat_direct(self, rel):
        if rel in self.own_links:
            return os.stat(rel, dir_fd=self.links_fd, follow_symlinks=False)
        return super().lstat_direct(rel)
