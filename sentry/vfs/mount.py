"""The mount table: sandbox path -> backend.

Each backend is rooted at a host directory.  The Sentry holds an O_PATH fd on
that root for its own confined lookups, and every guest process holds one at a
hidden fd number (HIDDEN_FD_BASE + index), inherited across fork and exec, so
that a rewritten `openat2` can name the mount's root without a host path.
"""
import errno
import itertools
import os
import stat
import weakref

from sentry.errors import SyscallError
from sentry.host import openat2

from sentry._native import ffi as _ffi, lib as _lib

HIDDEN_FD_BASE = _lib.SN_HIDDEN_FD_BASE   # guest fds from here are the Sentry's (syscalls/file.py)
MAX_MOUNTS = _lib.SN_MAX_MOUNTS           # the hidden range's size: mounts' fds, then lock slots
HIDDEN_FD_END = HIDDEN_FD_BASE + MAX_MOUNTS


def is_hidden_fd(fd):
    """Whether a guest fd number is one of the Sentry's (a mount's root, a
    lock slot): every guest call naming one gets EBADF, as for a
    closed fd (native/tracer.c has the same test for the fast path)."""
    return HIDDEN_FD_BASE <= fd < HIDDEN_FD_END

O_PATH = 0o10000000


# What a path call is about to change at a resolved location (Mount.prepare_change).
CREATE = "create"          # a new name at loc (absent)
CREATE_IN = "create-in"    # an unnamed file inside directory loc (O_TMPFILE)
REMOVE = "remove"          # loc's name goes away or is replaced
MOVE = "move"              # loc, and all beneath it, gets another name
WRITE = "write"            # loc's content changes
TRUNCATE = "truncate"      # loc's content is replaced whole (O_TRUNC): nothing to keep
ATTRS = "attrs"            # loc's attributes or xattrs change, or it gains a hard link


def below(path, top):
    """Whether sandbox path `path` lies strictly below sandbox path `top`."""
    return path != top and (top == "/" or path.startswith(top + "/"))


def open_final(loc, flags=O_PATH):
    """A confined fd on the final component of a resolved location itself
    (never a symlink's target that the Sentry did not resolve)."""
    return openat2(loc.mount.fd, loc.rel, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


class Mount:
    """A host directory, or a single host file, seen at `path` in the sandbox.

    A file is rooted at its name inside its directory (`root_rel`), as a
    hidden path's stand-in is (fsimpl/hidden.py): the mount's fd is the
    directory's, and every lookup in the mount names that one file, its root
    (a name below it is ENOTDIR).  It is the host's file itself, not a copy,
    so what either side writes the other reads, as through a bind mount."""

    kind = "bind"
    stable_links = True    # its symlinks mean the same to every caller (vfs/linkcache.py)
    # Whether a unix socket found here may be connected to: not in the host's
    # own tree (the default root), where /run/docker.sock and friends are
    # host endpoints (design note §1.3); a --rootfs or a bind mount is the
    # user's choice.
    host_sockets = True
    # The mount's root as a path relative to its fd: "." but where one host
    # directory serves many entries of the table (fsimpl/hidden.py).
    root_rel = "."
    # Whether /proc/mounts lists it: not a part of a synthetic tree that is
    # shown as one mount (fsimpl/kernelfs.py SysfsNetView, under /sys).
    listed = True
    # Relative paths (as locate gives them) of the other mounts' roots that
    # lie inside this one, in any mount namespace (MountTable._nest): a
    # directory holding one cannot be moved.
    nested = ()
    # Made by a guest's mount(2) (syscalls/mount.py), which umount2 may
    # undo; the sandbox's own mounts are locked, as Linux locks the mounts
    # a less privileged mount namespace inherits (EINVAL): unmounting /dev or
    # a hidden path's stand-in would show what lies beneath.
    made_by_guest = False
    attached = 0           # when a guest's mount(2) put it in its table (MountTable.attach)
    # One of the Sentry's synthetic trees (/proc, /dev, /sys): read-only to
    # every guest whatever a remount says (its names are the Sentry's to make).
    synthetic = False

    def __init__(self, path, host_root, readonly=False, host_sockets=None):
        self.path = path
        self.host_root = os.path.realpath(host_root)
        self.readonly = readonly
        if host_sockets is not None:
            self.host_sockets = host_sockets
        if os.path.isdir(self.host_root):
            self.fd = os.open(self.host_root, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            self.fd = _file_root(self.host_root)
            self.root_rel = os.path.basename(self.host_root)
        self.guest_fd = None
        self.allows_exec = True

    @property
    def owner(self):
        """The mount table's entry this belongs to (an overlay owns its layers)."""
        return self

    def backings(self):
        """The host directories behind this mount, each with its own fds."""
        return [self]

    def check_writable(self):
        """Changing names or attributes in this mount (mkdir, chmod, ...)."""
        if self.readonly:
            raise SyscallError(errno.EROFS)

    def check_content_writable(self, rel):
        """Opening `rel` for writing (or truncating it)."""
        self.check_writable()

    def file_owner(self, rel):
        """(uid, gid), the sandbox's, that own `rel` where they are not its
        host file's (fsimpl/proc.py: a process's files are its own); None
        to take the host file's."""
        return None

    def control_file(self, rel):
        """What `rel` controls when written (fsimpl/proc.py: a process's
        uid_map), for a write the Sentry parses (syscalls/controlfiles.py);
        None for a file of the mount itself."""
        return None

    def namespace_file(self, host_path):
        """(kind, number, the sandbox's own) of a namespace file at a host
        path (fsimpl/proc.py: what /proc/<pid>/ns/<name> reaches), for
        setns(2); None for anything else."""
        return None

    def live_file(self, rel):
        """An O_PATH fd on the kernel's own file that `rel` stands for, which
        every open of `rel` opens afresh and hands to the guest (a setting of
        the sandbox's own namespace: fsimpl/proc.py); None for a file of the
        mount itself."""
        return None

    def prepare_change(self, loc, what):
        """The location to act on for a change of kind `what` (CREATE, WRITE…)
        at resolved location loc; EROFS where this mount allows none.  An
        overlay copies up first and answers with the upper layer's twin."""
        self.check_mount_point(loc.rel, what)
        self.check_move(loc.rel, what)
        if what in (WRITE, TRUNCATE):
            self.check_content_writable(loc.rel)
        else:
            self.check_writable()
        return loc

    def check_mount_point(self, rel, what):
        """The mount's own root (but the sandbox's /) cannot be removed or
        renamed, as a mount point on Linux (EBUSY); nor can it be created:
        a file's root gone from the host (its owner removed it) stays gone
        (ENOENT) rather than made anew in the host's directory beside it."""
        if rel == self.root_rel and self.path != "/":
            if what in (REMOVE, MOVE):
                raise SyscallError(errno.EBUSY)
            if what == CREATE:
                raise SyscallError(errno.ENOENT)

    def spath_of(self, rel):
        """The sandbox path of `rel`, a path below the mount's fd (what a
        rewritten call restarted after a signal names: syscalls/file.py)."""
        if self.root_rel == ".":
            return self.path if rel == "." else self.path.rstrip("/") + "/" + rel
        if rel == self.root_rel:
            return self.path
        if rel.startswith(self.root_rel + "/"):
            return self.path.rstrip("/") + rel[len(self.root_rel):]
        raise SyscallError(errno.ENOENT)

    def check_move(self, rel, what):
        """EBUSY for moving a directory that holds another mount's root in
        any namespace: the tables are keyed by path, so the moved tree would
        show what that mount covers (a hidden file's content, say) under its
        new name.  (Linux moves the mount along.)"""
        if what == MOVE:
            for n in self.owner.nested:
                if rel == "." or n == rel or n.startswith(rel + "/"):
                    raise SyscallError(errno.EBUSY)

    def rel_of(self, rest):
        """The relative path of sandbox path `rest` below the mount's root."""
        if self.root_rel == ".":
            return rest
        return self.root_rel if rest == "." else self.root_rel + "/" + rest

    def expose(self, loc, stat_only=False):
        """The location to hand to the guest for resolved loc, the end of a
        walk (an overlay copies up a directory before its identity is seen;
        stat_only: only a stat's is, which may come from loc.twin)."""
        return loc

    def find(self, rel):
        """(backing that holds rel, its lstat) for the walk, which has checked
        every component before."""
        return self, self.lstat(rel)

    def prepare(self, rel, ctx, final=True):
        """Called before `rel` is looked up: synthetic backends make it exist
        (all of it when it is the final component: it may be listed)."""

    def allows(self, rel):
        """Whether `rel` (a confined relative path) is part of this mount."""
        return True

    def open_parent(self, rel):
        """(O_PATH fd of rel's parent directory, final name), confined."""
        parent, _, name = rel.rpartition("/")
        return openat2(self.fd, parent or ".", O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), name or "."

    def lstat(self, rel):
        if rel == ".":
            return os.fstat(self.fd)
        fd, name = self.open_parent(rel)
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as e:
            raise SyscallError(e.errno)
        finally:
            os.close(fd)

    def lstat_direct(self, rel):
        """lstat of rel in one confined lookup; ELOOP if any component
        but the last is a symlink."""
        fd = openat2(self.fd, rel, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def readlink(self, rel):
        fd, name = self.open_parent(rel)
        try:
            return os.readlink(name, dir_fd=fd)
        except OSError as e:
            raise SyscallError(e.errno)
        finally:
            os.close(fd)


def _file_root(host_path):
    """An O_PATH fd on the directory of host file host_path, which must be a
    regular file (a device node or a socket is never mounted alone: the
    guest would reach the host object behind it)."""
    parent, name = os.path.split(host_path)
    fd = os.open(parent or "/", O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            raise ValueError(f"{host_path}: not a directory or a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


DELETED = " (deleted)"


def split_deleted(host_path):
    """(path, deleted) of what /proc/<tid>/fd/N or cwd says."""
    if host_path.endswith(DELETED):
        return host_path[:-len(DELETED)], True
    return host_path, False


# How the walk (native/resolve.c) treats each kind of backing: (kind, whether
# the native fast path may answer for it alone).  A hidden path's stand-in
# and /dev/pts are plain directories to the walk, but their calls stay
# Python's (syscalls/tty.py, the stand-ins' EBUSY); anything else is
# synthetic, and the walk asks Python for each name in it.
WALK_KINDS = {
    "bind": (_lib.SN_MOUNT_DIR, True),
    "tmpfs": (_lib.SN_MOUNT_DIR, True),
    "mqueue": (_lib.SN_MOUNT_DIR, True),
    "sysfs": (_lib.SN_MOUNT_DIR, True),
    "hidden": (_lib.SN_MOUNT_DIR, False),
    "devpts": (_lib.SN_MOUNT_DIR, False),
    "dev": (_lib.SN_MOUNT_DEV, True),
}


def walk_kind(backing):
    if backing.kind == "layer":
        # an overlay a guest made read-only (syscalls/mount.py): its upper
        # layer is the host's to write, so Python refuses each change (EROFS)
        return (_lib.SN_MOUNT_LOWER if backing.readonly else _lib.SN_MOUNT_UPPER), not backing.overlay.readonly
    return WALK_KINDS.get(backing.kind, (_lib.SN_MOUNT_PYTHON, False))


class MountTable:
    """A mount namespace's table: the sandbox's, and a copy of it for each
    mount namespace a guest makes (copy).  Its native twin
    (native/resolve.c) is the one the path walk uses; the sandbox's is the
    fast path's too (a process with a table of its own is Python's)."""

    tables = weakref.WeakSet()      # every live table: what one changes of shared state, all see
    serials = itertools.count(1)
    attachments = itertools.count(1)

    def __init__(self, private=False):
        from sentry.vfs.linkcache import LinkCache
        self.mounts = {}       # sandbox path -> Mount
        self.covered = {}      # sandbox path -> the mounts under the one there, the latest last
        # mount -> {path: the mounts at a path below it, hidden when it was
        # put over them (the latest last)}: seen again when it goes
        self.under = {}
        self.private = private
        self.serial = next(MountTable.serials)     # its identity (/proc/<pid>/ns/mnt)
        # where the tmpfs mounts guests make live (fsimpl/guestmounts.py),
        # one host directory behind one hidden fd for all
        self.store = None
        self.owner = None      # the user namespace owning it (kernel/userns.py; None: the sandbox's)
        if private:
            table = _lib.sn_table_new_private()
            self.table = _ffi.gc(table, _lib.sn_table_free) if table != _ffi.NULL else table
        else:
            self.table = _lib.sn_table_new()
        if self.table == _ffi.NULL:
            raise MemoryError("mount table")
        MountTable.tables.add(self)
        self.entries = []      # the native table's entries, in order: backings()
        self.links = LinkCache(self.table)
        # how /proc/mounts names the mounts at these paths, {path: (source,
        # type, flags)} (the OCI spec's words); the rest by their kind
        self.shown = {}

    def add(self, mount):
        """Add a mount; one at the same path replaces it (--mount over /tmp).
        Entries that share one host directory (a backing with a `store`:
        fsimpl/hidden.py) share its hidden fd too."""
        old = self.mounts.get(mount.path)
        in_use = {b.guest_fd for m in self.mounts.values() if m is not old for b in m.backings()}
        if self.store is not None:
            in_use.add(self.store.guest_fd)
        free = sorted(set(range(HIDDEN_FD_BASE, HIDDEN_FD_END)) - in_use)
        for b in mount.backings():
            store = getattr(b, "store", None)
            if store is not None and store.guest_fd in in_use:
                b.guest_fd = store.guest_fd
                continue
            if not free:
                raise ValueError(f"too many mounts (at most {MAX_MOUNTS} host directories)")
            b.guest_fd = free.pop(0)
            in_use.add(b.guest_fd)
            if store is not None:
                store.guest_fd = b.guest_fd
        self.mounts[mount.path] = mount
        self._nest()
        self._register()

    def set_store(self, store):
        """Give the guest mount store (fsimpl/guestmounts.py) a hidden fd of
        its own, which every guest process holds from the start."""
        in_use = {b.guest_fd for b in self.backings()}
        free = sorted(set(range(HIDDEN_FD_BASE, HIDDEN_FD_END)) - in_use)
        if not free:
            raise ValueError(f"too many mounts (at most {MAX_MOUNTS} host directories)")
        store.guest_fd = free[0]
        self.store = store

    def copy(self):
        """A table of its own for a new mount namespace (unshare(CLONE_NEWNS)):
        the same mounts, which the two change apart from then on."""
        new = MountTable(private=True)
        new.mounts = dict(self.mounts)
        new.covered = {path: list(below) for path, below in self.covered.items()}
        new.under = {m: {p: list(s) for p, s in hidden.items()} for m, hidden in self.under.items()}
        new.shown = dict(self.shown)
        new.store = self.store
        new._changed()
        return new

    def attach(self, mounts):
        """Mounts a guest made (syscalls/mount.py), in order, each over
        whatever is at its path; their backings name hidden fds every guest
        holds already (the store's, or those of what they bind).  ENOSPC,
        and none made, past the native table's size (as past fs.mount-max)."""
        if len(self.entries) + sum(len(m.backings()) for m in mounts) > _lib.SN_MAX_ENTRIES:
            raise SyscallError(errno.ENOSPC)
        for mount in mounts:
            mount.attached = next(MountTable.attachments)
            self._place(mount)
        self._changed()

    def _place(self, mount):
        """Put mount at its path, over what is there and over the mounts
        below that path, which it hides until it goes (self.under)."""
        path = mount.path
        below = path.rstrip("/") + "/"
        hidden = {p: self.covered.pop(p, []) + [self.mounts.pop(p)] for p in list(self.mounts) if p.startswith(below)}
        if hidden:
            self.under[mount] = hidden
        old = self.mounts.get(path)
        if old is not None:
            self.covered.setdefault(path, []).append(old)
        self.mounts[path] = mount

    def replace(self, mount):
        """Put `mount` in the place of the one at its path (a remount)."""
        old = self.mounts[mount.path]
        if old in self.under:
            self.under[mount] = self.under.pop(old)
        self.mounts[mount.path] = mount
        self._changed()

    def mounted_on(self, top):
        """The paths of the mounts attached on the tree of the mount at
        `top`: below it, and attached after it (a mount the table held
        before stays: the sandbox's own, a hidden path's stand-in)."""
        since = self.mounts[top].attached
        return [p for p, m in self.mounts.items() if below(p, top) and m.attached > since]

    def detach_tree(self, top, then=()):
        """Take away the mount at `top` and those on its tree (mounted_on),
        deepest first: what each covered is seen again; then attach
        then(taken), if given (a move).  The mounts taken, the shallowest
        first."""
        taken = []
        while True:
            on = self.mounted_on(top)
            if not on:
                break
            taken.append(self._uncover(max(on, key=len)))
        taken.append(self._uncover(top))
        taken.reverse()
        if then:
            self.attach(then(taken))
        else:
            self._changed()
        if self.store is not None:
            self.store.release_unused(list(MountTable.tables))
        return taken

    def _uncover(self, path):
        """Take the mount at path away, showing what it covered."""
        mount = self.mounts.pop(path)
        under = self.covered.get(path)
        if under:
            self.mounts[path] = under.pop()
            if not under:
                del self.covered[path]
        for p, stack in self.under.pop(mount, {}).items():
            if p in self.mounts:                      # not expected: kept beneath
                stack = stack + self.covered.pop(p, []) + [self.mounts[p]]
            self.mounts[p] = stack[-1]
            if stack[:-1]:
                self.covered[p] = stack[:-1]
        return mount

    def stacked(self):
        """Every mount, each path's covered ones before the one seen there
        (as /proc/mounts lists them)."""
        hidden = [m for h in self.under.values() for stack in h.values() for m in stack]
        return hidden + [m for path, top in self.mounts.items() for m in self.covered.get(path, []) + [top]]

    def pivot(self, new_root, put_old, moved, root="/"):
        """pivot_root(2) in this table, for a process whose root is `root`
        (a mount point; "/" but after chroot(2)): the mount at new_root, and
        the mounts on its tree, go to root; the rest of root's tree (the old
        root's) goes below put_old (a path at or below new_root); mounts
        outside root stay.  moved(m, path) is a copy of m at path.  A mount under new_root is on its
        tree if attached with it or after (a sandbox's own mount under one
        of the sandbox's own goes along); one attached before stays with
        the old root, under the new one.  The old root becomes a guest's:
        it may be unmounted, with all its tree (MNT_DETACH), as Linux's
        namespace root.  Attachment order stays but the new tree's comes
        first, so that an old root stacked on the new one (put_old ==
        new_root) is the later, as on Linux."""
        top, old_root = self.mounts[new_root], self.mounts[root]
        below = new_root.rstrip("/") + "/"
        base = root.rstrip("/")                 # "" for the sandbox's root
        old_at = base + (put_old[len(new_root.rstrip("/")):] or "/")
        outside, new_tree, old_tree = [], [], []
        for m in sorted(self.stacked(), key=lambda m: (m.path.count("/"), m.path)):
            path = m.path
            if m is top or (path.startswith(below) and m.attached >= top.attached):
                new_tree.append((m, base + path[len(below) - 1:] if m is not top else root))
            elif path == root or path.startswith(base + "/"):
                old_tree.append((m, old_at.rstrip("/") + path[len(base):] if path != root else old_at))
            else:
                outside.append(m)
        self.mounts, self.covered, self.under = {}, {}, {}
        for m in sorted(outside, key=lambda m: m.attached):
            self._place(m)
        # placed again in attachment order, each over what it covered or
        # hid before (and an old root over the new root hides all of it)
        order = sorted(new_tree, key=lambda e: e[0].attached) + sorted(old_tree, key=lambda e: e[0].attached)
        for m, path in order:
            new = moved(m, path)
            if m is old_root:
                new.made_by_guest = True
            new.attached = next(MountTable.attachments)
            self._place(new)
        self._changed()

    def all_mounts(self):
        """Every mount of the table, seen or covered."""
        return list(self.mounts.values()) + [m for below in self.covered.values() for m in below] + \
            [m for h in self.under.values() for stack in h.values() for m in stack]

    def _changed(self):
        self._nest()
        self._register()
        self.links.clear()            # a remembered symlink may lead across what changed

    def _register(self):
        """State the table to the walk: every backing, an overlay's upper
        layer before its lower one."""
        t = self.table
        _lib.sn_table_reset(t)
        self.entries = self.backings()
        for i, b in enumerate(self.entries):
            kind, fast = walk_kind(b)
            if _lib.sn_table_add(t, b.path.encode(), b.root_rel.encode(), os.fsencode(b.host_root), b.fd,
                                 -1 if b.guest_fd is None else b.guest_fd, int(bool(b.readonly)), kind, int(fast)):
                raise ValueError(f"mount {b.path}: too many mounts or path too long")
            if not self.private or getattr(b, "walk_table", None) is None:
                b.walk_table, b.walk_index = t, i     # the sandbox's table's, where it has one
            overlay = getattr(b, "overlay", None)
            if overlay is not None:
                for dev, ino in overlay.placeholders.ids:
                    _lib.sn_table_add_placeholder(t, dev, ino)
            if kind == _lib.SN_MOUNT_DEV:
                _lib.sn_table_set_dev(t, " ".join(sorted(b.names)).encode(),
                                      " ".join(sorted(getattr(b, "FAST_NODES", ()))).encode())

    def _nest(self):
        """Tell each mount which other mounts' roots lie inside it, in any
        table (a mount is shared by the tables copied from one)."""
        nested = {}
        for table in list(MountTable.tables):
            for m in table.mounts.values():
                nested.setdefault(m, set())
            for path in table.mounts:
                if path == "/":
                    continue
                cut = path
                while True:
                    cut = cut[:cut.rfind("/")] or "/"
                    outer = table.mounts.get(cut)
                    if outer is not None:
                        break
                nested.setdefault(outer, set()).add(outer.rel_of(path[len(cut):].lstrip("/")))
        for m, rels in nested.items():
            m.nested = tuple(sorted(rels))

    def locate(self, spath):
        """(mount, relative path) for a normalised sandbox path: the mount at
        its longest prefix."""
        rel = _ffi.new("char[]", 4096)
        i = _lib.sn_locate(self.table, os.fsencode(spath), rel, 4096)
        if i < 0:
            raise SyscallError(errno.ENOENT)
        return self.entries[i].owner, os.fsdecode(_ffi.string(rel))

    def sandbox_path(self, host_path):
        """Map a host path (from /proc/<tid>/fd) back into the sandbox; None
        when it lies outside every mount.  A deleted file's " (deleted)" mark
        is the caller's to handle (split_deleted)."""
        out = _ffi.new("char[]", 4096)
        i = _lib.sn_host_to_sandbox(self.table, os.fsencode(host_path), out, 4096)
        return None if i < 0 else os.fsdecode(_ffi.string(out))

    def backing_of(self, host_path):
        """The host directory (a mount, or an overlay's layer) whose root is
        the longest prefix of host_path; None outside every mount."""
        i = _lib.sn_host_to_sandbox(self.table, os.fsencode(host_path), _ffi.NULL, 0)
        return None if i < 0 else self.entries[i]

    def backings(self):
        return [b for m in self.mounts.values() for b in m.backings()]

    def spath_at(self, fd, rel):
        """The sandbox path of `rel`, a path below hidden fd `fd` (a
        rewritten call restarted: syscalls/file.py): that of the backing on
        that fd whose root is the longest prefix of rel (many share one fd:
        the hidden paths' stand-ins, binds, a guest's tmpfs mounts)."""
        best = None
        for b in self.backings():
            root = b.root_rel
            if b.guest_fd == fd and (root == "." or rel == root or rel.startswith(root + "/")):
                if best is None or best.root_rel == "." or len(root) > len(best.root_rel):
                    best = b
        if best is None:
            raise SyscallError(errno.EBADF)
        return best.spath_of(rel)

    def hidden_fds(self):
        """(Sentry's fd, guest's fd number) of every hidden fd the guest
        holds for the table: its backings' (those a guest's mount covers or
        hides too: their numbers stay reserved) and the guest mount store's."""
        held = {(b.fd, b.guest_fd) for m in self.all_mounts() for b in m.backings()}
        if self.store is not None:
            held.add((self.store.fd, self.store.guest_fd))
        return sorted(held)

    def __iter__(self):
        return iter(self.mounts.values())
