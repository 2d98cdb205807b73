"""mount(2), umount2(2) and pivot_root(2): a guest changes its mount namespace's table.

Nothing reaches the host's mount table: each call changes the caller's
table (vfs/mount.py; a copy of the sandbox's after unshare(CLONE_NEWNS)),
which every later lookup of every process in that namespace resolves in.
What a guest may mount (fsimpl/guestmounts.py): a new tmpfs (a private
directory of the Sentry's; size= is taken and shown, not enforced), a bind
of a path the sandbox shows (resolved by the Sentry as the caller sees it,
never a host path), the sandbox's own /proc or /sys again, a remount that
makes a mount read-only, noexec and the like, and propagation changes
(taken; every mount is private: nothing propagates between namespaces).
The sandbox's own mounts are locked, as those a less privileged namespace
inherits on Linux: umount2 of one is EINVAL, a non-recursive bind of a
tree holding one is EINVAL, and one read-only stays so (EPERM).  It takes
CAP_SYS_ADMIN in the user namespace owning the mount namespace, as on
Linux, and the checks come in Linux's order (path_mount, path_umount).
"""
import errno
import os

from sentry.errors import SyscallError
from sentry.fsimpl import guestmounts
from sentry.kernel.credentials import CAP_SYS_ADMIN
from sentry.kernel.syscall import AT_FDCWD, sint
from sentry.vfs.mount import below
from syscalls import owner
from syscalls.lookup import lookup
from syscalls.registry import handler

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_SILENT = 32, 4096, 8192, 16384, 32768
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_NOUSER = 1 << 31
MS_MGC_VAL, MS_MGC_MSK = 0xC0ED0000, 0xFFFF0000
PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE
# the per-mount flags /proc/mounts shows, in its order
SHOWN_FLAGS = ((MS_NOSUID, "nosuid"), (MS_NODEV, "nodev"), (MS_NOEXEC, "noexec"))
MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW = 1, 2, 4, 8
PAGE_SIZE = 4096

# the sandbox's own synthetic trees a guest may mount again, by type
AGAIN = {"proc": "proc", "sysfs": "/sys", "devpts": "devpts", "mqueue": "mqueue"}


def _string(call, i, limit=PAGE_SIZE):
    """A string argument, None for NULL (copy_mount_string)."""
    if call.args[i] == 0:
        return None
    return os.fsdecode(call.string(i, limit))


def _options(call, i):
    """mount(2)'s data as a string ("" for NULL): at most a page, cut there
    (copy_mount_options)."""
    if call.args[i] == 0:
        return ""
    try:
        return os.fsdecode(call.string(i, PAGE_SIZE))
    except SyscallError as e:
        if e.errno != errno.ENAMETOOLONG:
            raise
        return os.fsdecode(call.read(call.args[i], PAGE_SIZE - 1))


def _may_mount(call, table):
    """may_mount: CAP_SYS_ADMIN over the user namespace owning the table."""
    if not call.task.creds.ns_capable(table.owner, CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)


@handler("mount", support="partial",
         note="emulated on the caller's mount namespace's table (syscalls/mount.py): tmpfs, bind (MS_REC), "
              "proc/sysfs/devpts/mqueue (the sandbox's own again), remount (ro, nosuid, nodev, noexec), "
              "propagation flags taken (every mount private), MS_MOVE of a guest's mount; other types ENODEV")
def sys_mount(call):
    source, fstype = _string(call, 0), _string(call, 2)
    flags = call.args[3]              # an unsigned long
    data = _options(call, 4)
    target = lookup(call, AT_FDCWD, call.path(1))
    if flags & MS_MGC_MSK == MS_MGC_VAL:
        flags &= ~MS_MGC_MSK
    if flags & MS_NOUSER:
        raise SyscallError(errno.EINVAL)
    table = call.mounts
    _may_mount(call, table)
    if flags & (MS_REMOUNT | MS_BIND) == MS_REMOUNT | MS_BIND:
        return _remount(table, target, flags, None)
    if flags & MS_REMOUNT:
        return _remount(table, target, flags, data)
    if flags & MS_BIND:
        return _bind(call, table, target, source, bool(flags & MS_REC))
    if flags & PROPAGATION:
        if table.mounts.get(target.spath) is None:
            raise SyscallError(errno.EINVAL)          # not a mount point
        kind = flags & ~(MS_REC | MS_SILENT)
        if kind & (kind - 1):
            raise SyscallError(errno.EINVAL)          # more than one kind
        return 0                                      # every mount is private already
    if flags & MS_MOVE:
        return _move(call, table, target, source)
    _new(call, table, target, source, fstype, flags, data)
    call.kernel.audit.event("mount", call.task, call=call, path=target.spath, type=fstype)
    return 0


def _new(call, table, target, source, fstype, flags, data):
    """do_new_mount: a file system of type fstype at target."""
    if fstype is None:
        raise SyscallError(errno.EINVAL)
    if fstype == "tmpfs" and table.store is not None:
        mode, opts = guestmounts.tmpfs_options(data)
        if not target.is_dir:
            raise SyscallError(errno.ENOTDIR)
        mount = table.store.tmpfs(target.spath, mode, owner.creator(call))
        _set_flags(mount, flags)
    elif fstype in AGAIN:
        own = AGAIN[fstype]
        found = [m for m in table if m.kind == own or m.path == own]
        if not found:
            raise SyscallError(errno.ENODEV)
        if not target.is_dir:
            raise SyscallError(errno.ENOTDIR)
        pidns = call.process.pidns
        if fstype == "proc" and pidns is not None and pidns is not call.kernel.pids and table.store is not None:
            mount = found[0].view(target.spath, pidns, table.store)    # its mounter's PID namespace's
        else:
            mount = guestmounts.moved(found[0], target.spath)
        mount.made_by_guest = True
        _set_flags(mount, flags)
        opts = []
    else:
        raise SyscallError(errno.ENODEV)    # a type the sandbox has none of (no block device either)
    mount.shown_as = (source or "none", fstype, opts + _flag_names(flags))
    table.attach([mount])


def _bind(call, table, target, source, recurse):
    """do_loopback: what source names, at target; with recurse, the mounts
    below it too, else none of the sandbox's may lie below it (EINVAL:
    the bind would show what they cover)."""
    if not source:
        raise SyscallError(errno.EINVAL)
    src = lookup(call, AT_FDCWD, os.fsencode(source))
    owner, rel = table.locate(src.spath)
    nested = sorted((p, m) for p, m in table.mounts.items() if below(p, src.spath))
    if not recurse:
        # a hidden path's stand-in goes along always: the bind must not show
        # what it hides; any other of the sandbox's own mounts below is
        # locked there, as Linux's has_locked_children
        if any(not m.made_by_guest and m.kind != "hidden" for _, m in nested):
            raise SyscallError(errno.EINVAL)
        nested = [(p, m) for p, m in nested if m.kind == "hidden"]
    if src.is_dir != target.is_dir:
        raise SyscallError(errno.ENOTDIR)
    mounts = [guestmounts.bound(owner, rel, target.spath, rel == owner.root_rel)]
    for path, m in nested:
        copy = guestmounts.moved(m, _moved_path(path, src.spath, target.spath))
        copy.carried = not recurse       # part of the bind: no child that makes umount2 EBUSY
        mounts.append(copy)
    table.attach(mounts)
    call.kernel.audit.event("mount", call.task, call=call, path=target.spath, source=src.spath)
    return 0


def _remount(table, target, flags, data):
    """do_reconfigure_mnt (data None: MS_BIND) and do_remount: the mount at
    target takes flags' read-only, nosuid, nodev and noexec.  The table
    gets a copy of its own: another namespace's is another mount."""
    mount = table.mounts.get(target.spath)
    if mount is None:
        raise SyscallError(errno.EINVAL)          # not a mount point
    if guestmounts.locked_readonly(mount) and not flags & MS_RDONLY:
        raise SyscallError(errno.EPERM)
    if data and getattr(mount, "store_of", None) is not None:
        guestmounts.tmpfs_options(data)          # EINVAL for one tmpfs does not know
    new = guestmounts.moved(mount, mount.path)
    _set_flags(new, flags)
    shown = getattr(mount, "shown_as", None)
    if shown is not None:
        kept = [o for o in shown[2] if o not in dict(SHOWN_FLAGS).values()]
        new.shown_as = (shown[0], shown[1], kept + _flag_names(flags))
    table.replace(new)
    return 0


def _set_flags(mount, flags):
    mount.readonly = bool(flags & MS_RDONLY) or mount.synthetic
    mount.allows_exec = not flags & MS_NOEXEC
    for b in mount.backings():
        b.allows_exec = mount.allows_exec
        if b is not mount and mount.kind != "overlay":
            b.readonly = mount.readonly


def _flag_names(flags):
    return [name for bit, name in SHOWN_FLAGS if flags & bit]


def _move(call, table, target, source):
    """do_move_mount_old: a mount a guest made, and what is below it, to
    target; the sandbox's own are locked (EINVAL)."""
    if not source:
        raise SyscallError(errno.EINVAL)
    src = lookup(call, AT_FDCWD, os.fsencode(source))
    mount = table.mounts.get(src.spath)
    if mount is None or not mount.made_by_guest or src.spath == "/" or below(target.spath, src.spath) \
            or target.spath == src.spath:
        raise SyscallError(errno.EINVAL)
    if src.is_dir != target.is_dir:
        raise SyscallError(errno.ENOTDIR)
    table.detach_tree(src.spath, then=lambda taken: [
        guestmounts.moved(m, _moved_path(m.path, src.spath, target.spath)) for m in taken])
    return 0


def _moved_path(path, old_top, new_top):
    """Where `path`, at or below old_top, goes when old_top goes to new_top."""
    return new_top.rstrip("/") + path[len(old_top.rstrip("/")):] or "/"


@handler("umount2", support="partial",
         note="a mount a guest made, in the caller's mount namespace (syscalls/mount.py): EBUSY while "
              "mounts lie below it but with MNT_DETACH (open files and cwds inside do not count); the "
              "sandbox's own mounts are locked (EINVAL)")
def sys_umount2(call):
    flags = sint(call.args[1])
    if flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW):
        raise SyscallError(errno.EINVAL)
    target = lookup(call, AT_FDCWD, call.path(0), follow=not flags & UMOUNT_NOFOLLOW)
    table = call.mounts
    _may_mount(call, table)
    mount = table.mounts.get(target.spath)
    if mount is None or not mount.made_by_guest:
        raise SyscallError(errno.EINVAL)          # not a mount point, or a locked one
    if flags & MNT_EXPIRE:
        if flags & (MNT_FORCE | MNT_DETACH):
            raise SyscallError(errno.EINVAL)
        if not getattr(mount, "expiry_mark", False):
            mount.expiry_mark = True
            raise SyscallError(errno.EAGAIN)
    if not flags & MNT_DETACH and any(not getattr(table.mounts[p], "carried", False)
                                      for p in table.mounted_on(target.spath)):
        raise SyscallError(errno.EBUSY)
    table.detach_tree(target.spath)
    call.kernel.audit.event("mount", call.task, call=call, path=target.spath)
    return 0


@handler("pivot_root", support="partial",
         note="emulated on the caller's mount namespace's table (syscalls/mount.py): the new root's tree "
              "becomes the root's (the process's, after chroot), the old root's goes below put_old")
def sys_pivot_root(call):
    """pivot_root(2) in Linux's order: CAP_SYS_ADMIN, both lookups (each a
    directory), then the mount rules."""
    table = call.mounts
    _may_mount(call, table)
    new = lookup(call, AT_FDCWD, call.path(0))
    old = lookup(call, AT_FDCWD, call.path(1))
    for loc in (new, old):
        if not loc.is_dir:
            raise SyscallError(errno.ENOTDIR)
    root = call.process.root               # "/", or a chroot's
    new_mnt, old_mnt, root_mnt = table.locate(new.spath)[0], table.locate(old.spath)[0], table.mounts.get(root)
    # a locked mount: the sandbox's own, but for its root in the sandbox's
    # own user namespace (Linux locks a copied root too, for a namespace
    # a less privileged user namespace owns: lock_mnt_tree)
    if not new_mnt.made_by_guest and (new_mnt is not root_mnt or table.owner is not None):
        raise SyscallError(errno.EINVAL)
    if new_mnt is root_mnt or old_mnt is root_mnt:
        raise SyscallError(errno.EBUSY)
    if root_mnt is None or table.mounts.get(new.spath) is not new_mnt or not below(new.spath, root) \
            or not (old.spath == new.spath or below(old.spath, new.spath)):
        raise SyscallError(errno.EINVAL)              # a root or new_root no mount point, put_old outside
    table.pivot(new.spath, old.spath, guestmounts.moved, root)
    call.kernel.audit.event("mount", call.task, call=call, path=new.spath)
    return 0
