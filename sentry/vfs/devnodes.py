"""Device nodes a guest makes: never real ones on the host.

Linux lets a process with CAP_MKNOD make a character or block device node,
as container runtimes allow their root (debootstrap, `cp -a` of a /dev
tree, a rootfs unpacked with its nodes).  A real node in a host directory
would outlive the sandbox and open the host's device to whoever can reach
it, so the Sentry makes a stand-in: an empty regular file with the node's
permission bits, the sticky bit (meaningless on a regular file to Linux:
the cheap sign the walk and the C fast path look for) and the xattr XATTR
naming the device ("c 1 3").  The one resolver (vfs/resolve.py) shows it
as that node, so every stat, permission and type check sees a device;
opening it -- or a real node some host directory holds -- gives the
sandbox's own /dev node of that number, or what a container's device
policy gives for any other (EPERM).  The guest can
neither read nor set the xattr (it lies under the Sentry's reserved
prefix, fsimpl/overlay.py RESERVED).
"""
import os
import stat

from sentry.vfs.views import stat_as

XATTR = "user.sentry.device"
MARK = stat.S_ISVTX
KINDS = {b"c": stat.S_IFCHR, b"b": stat.S_IFBLK}

# the nodes of the sandbox's /dev (fsimpl/dev.py DevMount.NODES), by the
# numbers Linux gives them (Documentation/admin-guide/devices.txt)
SANDBOX_NODES = {(stat.S_IFCHR, 1, 3): "null", (stat.S_IFCHR, 1, 5): "zero",
                 (stat.S_IFCHR, 1, 7): "full", (stat.S_IFCHR, 1, 8): "random",
                 (stat.S_IFCHR, 1, 9): "urandom", (stat.S_IFCHR, 5, 0): "tty"}


def encode(kind, rdev):
    return b"%s %d %d" % (b"c" if kind == stat.S_IFCHR else b"b", os.major(rdev), os.minor(rdev))


def may_be_standin(st):
    return stat.S_ISREG(st.st_mode) and st.st_mode & MARK


def is_standin(path, st):
    """Whether the host file at path (a /proc/self/fd path), of stat st,
    is a stand-in (a guest's own sticky regular file is not)."""
    if not may_be_standin(st):
        return False
    try:
        os.getxattr(path, XATTR)
        return True
    except OSError:
        return False


def view(fd, st):
    """st (of fd, O_PATH or not) as the guest sees it: the device a
    stand-in stands for, or st itself."""
    if not may_be_standin(st):
        return st
    try:
        kind, major, minor = os.getxattr(f"/proc/self/fd/{fd}", XATTR).split()
        kind = KINDS[kind]
        rdev = os.makedev(int(major), int(minor))
    except (OSError, KeyError, ValueError):
        return st
    return stat_as(st, kind | (st.st_mode & 0o7777 & ~MARK), st_size=0, st_blocks=0, st_rdev=rdev)


# mounts of host directories, where a node is a stand-in or a host's own; the
# sandbox's device file systems (dev, devpts) hold the real, allowed ones
HOST_DIRECTORY_KINDS = frozenset(("bind", "layer", "overlay", "tmpfs"))


def in_host_directory(loc):
    """Whether loc is a device node (a stand-in, or a node some host
    directory holds) that the device policy governs."""
    st = loc.st
    return st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) \
        and loc.mount.kind in HOST_DIRECTORY_KINDS


def node_name(st):
    """The sandbox's /dev name of the device st stands for, or None."""
    return SANDBOX_NODES.get((stat.S_IFMT(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev)))
