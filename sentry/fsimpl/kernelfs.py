"""Real kernel file systems, mounted by the helper in the Sentry's private
mount namespace (vfs/mountns.py): the sandbox's own devpts instance at
/dev/pts, a tmpfs for `--mount type=tmpfs,size=…`, and the IPC namespace's
mqueue file system."""
import fcntl
import os
import struct

from sentry import hostids
from sentry.vfs.mount import Mount

TTY_GID = 5          # the host's devpts gives slaves group tty, mode 620
TIOCGPTN, TIOCSPTLCK, TIOCGPTPEER = 0x80045430, 0x40045431, 0x5441


class KernelMount(Mount):
    """A file system the helper mounted on host_root, a directory of the
    Sentry's private one.  The kernel reports its files' paths from there (in
    the helper's namespace), so the mount table maps them back as for any
    mount; in the host's namespace that directory stays empty."""

    def __init__(self, path, mountns, fstype, host_root, options):
        os.mkdir(host_root, 0o700)
        fd = mountns.mount(fstype, os.path.realpath(host_root), options)
        super().__init__(path, host_root)
        os.close(self.fd)          # the empty directory of the host's namespace
        self.fd = fd
        self.dev = os.fstat(fd).st_dev


class PtsMount(KernelMount):
    """/dev/pts: a devpts instance of the sandbox's own (newinstance).  Its
    ptys are numbered from 0 and no other pty is in it, so no name, number or
    race reaches a pty of the host.  Its ptmx is open to all (ptmxmode=0666):
    /dev/ptmx leads to it, as in containers."""

    kind = "devpts"

    def __init__(self, path, mountns, host_root):
        options = "newinstance,ptmxmode=0666,mode=0620"
        # the helper's user namespace (its own when unprivileged, rootless
        # podman's) may not map gid 5: devpts refuses an unmapped gid= (EINVAL)
        if os.geteuid() == 0 and hostids.mapped("gid", TTY_GID):
            options += f",gid={TTY_GID}"
        super().__init__(path, mountns, "devpts", host_root, options)

    def owns(self, st):
        """Whether a stat result is of a file of this instance (a master
        opened through its ptmx, a slave)."""
        return st.st_dev == self.dev

    def open_pty(self):
        """A new pty of this instance, for the Sentry's own use (the OCI
        console): (master, slave, its number), both ends close-on-exec and
        not the caller's controlling terminal."""
        master = os.open("ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=self.fd)
        try:
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            os.close(master)
            raise
        return master, slave, number


class TmpfsMount(KernelMount):
    """A tmpfs whose size= the kernel enforces (ENOSPC past it)."""

    kind = "tmpfs"

    def __init__(self, path, mountns, host_root, size):
        super().__init__(path, mountns, "tmpfs", host_root, f"size={size},mode=1777")


class MqueueMount(KernelMount):
    """/dev/mqueue (an OCI spec's mqueue mount): the message queue file
    system of the sandbox's IPC namespace (the helper's), so its listing is
    the queues the sandbox's mq_open made, as in a container."""

    kind = "mqueue"

    def __init__(self, path, mountns, host_root):
        super().__init__(path, mountns, "mqueue", host_root, None)
