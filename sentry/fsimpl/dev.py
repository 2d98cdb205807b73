"""/dev: the host's device nodes that every program expects, and no other."""
import errno

from sentry.vfs.mount import Mount
from syscalls.errors import SyscallError


class DevMount(Mount):
    """The host's /dev, narrowed to a few device nodes.

    Only these names resolve.  Their content may be written (they are devices,
    not files of the host); their names and attributes may not: a chmod of
    /dev/null would change the host's."""

    kind = "dev"
    NODES = {"null", "zero", "full", "random", "urandom", "tty"}
    # symlinks into /proc/self/fd, resolved like any other (to the synthetic /proc)
    LINKS = {"fd", "stdin", "stdout", "stderr"}

    def __init__(self, path="/dev"):
        super().__init__(path, "/dev", readonly=True)

    def allows(self, rel):
        return rel == "." or rel in self.NODES or rel in self.LINKS

    def check_content_writable(self, rel):
        if rel not in self.NODES:
            raise SyscallError(errno.EROFS)
