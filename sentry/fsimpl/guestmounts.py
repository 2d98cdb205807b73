"""What a guest's mount(2) adds to its mount namespace's table
(syscalls/mount.py): a tmpfs, a bind of a path the sandbox shows, the
sandbox's own /proc or /sys again.

None of them is a host mount.  A tmpfs is a directory of the Sentry's
private guest mount store, all of them behind the store's one hidden fd,
which every guest process holds from the start: a mount made later needs
no new fd in any process.  A bind is the source's own backing rooted lower
(root_rel), behind the hidden fd the backing has already.  So every
rewritten call still names its file through a hidden fd and a path the
Sentry staged, and the host confines it beneath that fd.
"""
import errno
import itertools
import os
import shutil

from sentry.errors import SyscallError
from sentry.vfs.mount import O_PATH, Mount

# tmpfs's own options (mm/shmem.c); any other is EINVAL, as there
TMPFS_OPTIONS = {"size", "nr_blocks", "nr_inodes", "mode", "uid", "gid", "huge", "mpol", "inode32",
                 "inode64", "noswap", "quota", "usrquota", "grpquota", "usrquota_block_hardlimit",
                 "usrquota_inode_hardlimit", "grpquota_block_hardlimit", "grpquota_inode_hardlimit"}


class GuestMountStore:
    """The private directory holding every tmpfs the guests mount, each a
    directory of its own, and the store's one fd."""

    def __init__(self, root):
        os.mkdir(root, 0o700)
        self.host_root = os.path.realpath(root)
        self.fd = os.open(self.host_root, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.guest_fd = None            # MountTable.set_store
        self.names = itertools.count(1)

    def new_name(self, kind):
        """A name for a new mount's directory in the store."""
        return f"{kind}{next(self.names)}"

    def tmpfs(self, target, mode, owner=None):
        """A new, empty tmpfs for `target`, its root of that mode and, as
        Linux's, its mounter's (owner: host (uid, gid) other than the
        Sentry's own)."""
        name = self.new_name("tmpfs")
        host = os.path.join(self.host_root, name)
        os.mkdir(host, 0o700)
        if owner is not None:
            try:
                os.chown(host, *owner)
            except PermissionError:
                pass                     # an unprivileged Sentry keeps its own
        os.chmod(host, mode)
        return GuestTmpfs(self, target, name)

    def release_unused(self, tables):
        """Remove the tmpfs directories no mount of any table (seen or
        covered, a bind of a part of one too) stands on any more: an fd
        open on a file there keeps that file, as after a lazy umount."""
        used = {m.host_root for t in tables for m in t.all_mounts()}
        for name in os.listdir(self.host_root):
            root = os.path.join(self.host_root, name)
            if not any(u == root or u.startswith(root + "/") for u in used):
                shutil.rmtree(root, ignore_errors=True)


# what the VFS takes from any file system's options (vfs_parse_sb_flag)
GENERIC_OPTIONS = {"ro", "rw", "sync", "async", "dirsync", "lazytime", "nolazytime", "mand", "nomand", "silent"}


def tmpfs_options(data):
    """(mode of the root, the options to show) of tmpfs options as mount(2)'s
    data gives them ("size=1m,mode=755"): EINVAL for one tmpfs does not
    know.  size= and nr_inodes= are shown, not enforced."""
    mode, shown = 0o1777, []
    for opt in filter(None, data.split(",")):
        key, _, value = opt.partition("=")
        if opt in GENERIC_OPTIONS:
            continue
        if key not in TMPFS_OPTIONS:
            raise SyscallError(errno.EINVAL)
        if key == "mode":
            try:
                mode = int(value, 8) & 0o7777
            except ValueError:
                raise SyscallError(errno.EINVAL)
        shown.append(opt)
    return mode, shown


class GuestTmpfs(Mount):
    """One tmpfs a guest mounted: a directory of the store."""

    kind = "tmpfs"
    made_by_guest = True

    def __init__(self, store, path, name):
        self.path = path
        self.store_of = store
        self.root_rel = name
        self.host_root = os.path.join(store.host_root, name)
        self.readonly = False
        self.fd = store.fd
        self.guest_fd = store.guest_fd
        self.allows_exec = True


def _clone(mount):
    """A shallow copy of a mount object (copy.copy, without importing copy
    at every start)."""
    new = object.__new__(type(mount))
    new.__dict__.update(mount.__dict__)
    return new


def base_host_root(mount):
    """The host directory of a backing's fd (its host root less root_rel)."""
    if mount.root_rel == ".":
        return mount.host_root
    return mount.host_root[:-len(mount.root_rel) - 1]


def _rooted(backing, path, rel):
    """A copy of a backing seen at `path`, its root at `rel` below its fd."""
    new = _clone(backing)
    new.path = path
    new.root_rel = rel
    new.host_root = base_host_root(backing) if rel == "." else os.path.join(base_host_root(backing), rel)
    return new


def bound(mount, rel, path, whole):
    """A bind mount at `path` of what `rel` (below the fd of its backing in
    `mount`, a mount of the table) names.  whole: rel is the mount's own
    root, the only part of a synthetic mount (/proc, /sys) that can be
    bound (EINVAL below it: its names are made per lookup); /dev's nodes
    can, one by one (bubblewrap's --dev)."""
    if mount.kind == "overlay":
        new = _clone(mount)
        new.path = path
        new.upper = _rooted(mount.upper, path, rel)
        new.lower = _rooted(mount.lower, path, rel)
        new.upper.overlay = new.lower.overlay = new
        new.root_rel = rel
    elif getattr(mount, "fd", None) is not None and mount.kind in ("bind", "tmpfs", "hidden", "layer", "dev"):
        new = _rooted(mount, path, rel)
    elif whole:
        new = _clone(mount)
        new.path = path
    else:
        raise SyscallError(errno.EINVAL)
    new.made_by_guest = True
    new.nested = ()
    new.locked_readonly = locked_readonly(mount)
    return new


def moved(mount, path):
    """A copy of a mount (all of it) seen at another path: what a
    recursive bind carries along below its source."""
    rel = mount.root_rel
    new = bound(mount, rel, path, True)
    new.made_by_guest = mount.made_by_guest
    return new


def locked_readonly(mount):
    """Whether the mount must stay read-only (EPERM to make it writable):
    a read-only mount of the sandbox's own, and every bind of one, as
    Linux's MNT_LOCK_READONLY.  (The Sentry's synthetic trees are
    read-only whatever a remount says: Mount.synthetic.)"""
    return getattr(mount, "locked_readonly", mount.readonly and not mount.made_by_guest and not mount.synthetic)
