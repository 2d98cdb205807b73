"""Real kernel file systems, mounted by the helper in the Sentry's private
mount namespace (vfs/mountns.py): the sandbox's own devpts instance at
/dev/pts, a tmpfs for `--mount type=tmpfs,size=…`, the IPC namespace's
mqueue file system, and the network namespace's interfaces in sysfs
(/sys/class/net)."""
import fcntl
import os
import struct

from sentry import hostids
from sentry.host import openat2
from sentry.vfs.mount import O_PATH, Mount

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


# /sys/class/net and what its links lead to: the two directories of a sysfs
# that list a network namespace's interfaces (both tagged by namespace)
NET_VIEWS = ("class/net", "devices/virtual/net")


class SysfsNetView(Mount):
    """/sys/class/net or /sys/devices/virtual/net: that directory of a sysfs
    the namespace helper mounted (read-only) from inside the sandbox's
    network namespace.  A sysfs shows the interfaces of its mounter's
    network namespace, so these list the sandbox's (lo, eth0) and nothing of
    the host's; their files (address, mtu, operstate, statistics/...) are
    the kernel's own, read natively, and agree with rtnetlink and the
    interface ioctls because they are the same interfaces.  The rest of
    that sysfs (the host's devices, block, firmware...) is never in the
    table: these two directories are its only roots, confined as any
    mount's (a `..` from them is the sandbox's /sys, the Sentry's walk)."""

    kind = "sysfs"
    synthetic = True
    listed = False           # parts of /sys, not mounts of their own (/proc/mounts)

    def __init__(self, path, fd, host_root):
        self.path, self.host_root, self.readonly = path, host_root, True
        self.fd, self.guest_fd, self.allows_exec = fd, None, False


def sysfs_net_views(mountns, host_root):
    """[SysfsNetView] for /sys/class/net and /sys/devices/virtual/net, from a
    sysfs mounted at host_root (a new directory of the Sentry's private one)
    by the namespace helper, in the sandbox's network namespace."""
    os.mkdir(host_root, 0o700)
    root = mountns.mount("sysfs", os.path.realpath(host_root), None, readonly=True)
    views = []
    try:
        for rel in NET_VIEWS:
            fd = openat2(root, rel, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            views.append(SysfsNetView("/sys/" + rel, fd, os.path.join(os.path.realpath(host_root), rel)))
    except BaseException:
        for v in views:
            os.close(v.fd)
        raise
    finally:
        os.close(root)
    return views
