"""unshare(2): the namespaces a guest may make of its own.

A new UTS namespace is emulated (sentry/kernel/task.py UtsNamespace): the
caller's process gets its own copy of the names, which its children
inherit, so `unshare -u hostname x` changes the names it and they see
only.  A new PID namespace too (sentry/kernel/pidns.py): the caller's next
child is its init, pid 1, and that child's descendants are numbered there
(`unshare -p -f`).  Each takes CAP_SYS_ADMIN, as on Linux.  A new user
namespace (sentry/kernel/userns.py) takes none, and holds that capability
for the namespaces made with or after it (`unshare -r`, `unshare -Uu`).  A
new time namespace (CAP_SYS_ADMIN) is the one the caller's next children
and next image enter, with the offsets written to /proc/<pid>/timens_offsets
before (sentry/kernel/timens.py, syscalls/timens.py).  A new network
namespace (CAP_SYS_ADMIN) is a kernel one the namespace helper makes, whose
sockets the caller and its children get from the helper
(sentry/kernel/netns.py, syscalls/socket.py).  A new mount namespace
(CAP_SYS_ADMIN) gives the process a copy of its mount table, which its
mount(2) and umount2(2) change from then on, and its children inherit
(vfs/mount.py MountTable.copy, syscalls/mount.py); a process of many
threads cannot make one (EINVAL): the table is the process's, where
Linux's is each task's.  The other kinds are refused
as by a Linux whose limits for them are 0 (sentry/kernel/namespaces.py).
Undoing sharing with CLONE_FILES or CLONE_FS is EPERM: it would split a
process's fd table or cwd between its tasks, which the Kernel keeps per
process; where nothing is shared it is a no-op, as on Linux.
"""
import errno

from sentry.kernel.credentials import CAP_SYS_ADMIN
from sentry.kernel.namespaces import (CLONE_FILES, CLONE_FS, CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET,
                                      CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWTIME, CLONE_NEWUSER, CLONE_NEWUTS,
                                      CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD, CLONE_VM, check_new)
from sentry.kernel import fdtraps, userns
from sentry.kernel import timens as time_namespaces
from sentry.kernel.clone import SYS_CLONE
from sentry.kernel.syscall import sint
from sentry.kernel.timens import TimeNamespace
from syscalls import idview, timens
from syscalls import socket as sockets
from sentry.kernel.pidns import LEVELS_MAX, PidNamespace
from sentry.errors import SyscallError
from syscalls.registry import handler

UNSHARE_FLAGS = (CLONE_THREAD | CLONE_FS | CLONE_NEWNS | CLONE_SIGHAND | CLONE_VM | CLONE_FILES
                 | CLONE_SYSVSEM | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUSER
                 | CLONE_NEWPID | CLONE_NEWCGROUP | CLONE_NEWTIME)


def _implied(flags):
    """The kernel's ksys_unshare: a new user namespace unshares the thread
    group and fs; VM implies SIGHAND, SIGHAND THREAD, a mount namespace fs."""
    if flags & CLONE_NEWUSER:
        flags |= CLONE_THREAD | CLONE_FS
    if flags & CLONE_VM:
        flags |= CLONE_SIGHAND
    if flags & CLONE_SIGHAND:
        flags |= CLONE_THREAD
    if flags & CLONE_NEWNS:
        flags |= CLONE_FS
    return flags


@handler("unshare", support="partial",
         note="CLONE_NEWUTS, CLONE_NEWPID, CLONE_NEWTIME, CLONE_NEWNS, CLONE_NEWNET (CAP_SYS_ADMIN) and CLONE_NEWUSER "
              "emulated (kernel/userns.py; a mount namespace: a copy of the mount table, EINVAL from a process of many "
              "threads; kernel/netns.py: CLONE_NEWNET where the sandbox has a network namespace); "
              "other namespaces as with their limits at 0 (ENOSPC; EPERM without CAP_SYS_ADMIN); "
              "CLONE_FILES/CLONE_FS of a shared table or cwd EPERM")
def sys_unshare(call):
    flags = call.args[0]           # an unsigned long: a high bit is EINVAL, as check_unshare_flags says
    if flags & ~UNSHARE_FLAGS:
        raise SyscallError(errno.EINVAL)
    flags = _implied(flags)
    # check_unshare_flags: the thread group, signal handlers and memory
    # can be unshared only by a task that shares them with no other
    if flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWNS) and len(call.process.threads) > 1:
        raise SyscallError(errno.EINVAL)
    if (flags & CLONE_FS and call.process.fs_shared) or (flags & CLONE_FILES and call.process.files.shared):
        raise SyscallError(errno.EPERM)
    creds = call.task.creds
    new_userns = new_user_namespace(call, flags)
    if flags & CLONE_NEWPID:
        check_new_pidns(call.process)
        # the process's threads must stay in its own PID namespace: clone(2)
        # with CLONE_THREAD, which BPF lets through, traps from now on (its
        # clone3 is Python's already: the row's nested_pidns), for EINVAL
        fdtraps.ensure_process_filter(call, "clone threads", {SYS_CLONE: [[(0, fdtraps.ANY_BIT, CLONE_THREAD)]]})
    if new_userns is not None:
        creds.enter_userns(new_userns)
        call.kernel.publish(call.task)
    if flags & CLONE_NEWUTS:
        call.process.uts = call.process.uts.unshared(creds.userns)
    if flags & CLONE_NEWNS:
        call.process.mounts = call.mounts.copy()
        call.process.mounts.owner = creds.userns
        call.kernel.publish_process(call.process)    # its paths are Python's now
    if flags & CLONE_NEWPID:
        call.process.pidns_children = PidNamespace(call.process.pidns)
        call.kernel.publish_process(call.process)    # its clones are Python's now (sys_clone3)
    if flags & CLONE_NEWTIME:
        call.process.timens_children = TimeNamespace(creds.userns, call.process.timens_children)
    if flags & CLONE_NEWNET:
        call.process.netns = new_network_namespace(call, creds.userns)
    return 0


def new_network_namespace(call, owner):
    """A new, empty network namespace (kernel/netns.py) owned by user
    namespace `owner`, made by the namespace helper; ENOMEM where it cannot
    be (as the kernel's own allocation failure)."""
    try:
        return call.kernel.netns.new(call.kernel.mountns, owner)
    except OSError:
        raise SyscallError(errno.ENOMEM)


def new_user_namespace(call, flags):
    """What unshare and clone check of the namespaces `flags` asks for, in
    the kernel's order: a new user namespace made first (returned, not yet
    entered; None if not asked for, its fstat trap loaded before: idview),
    then the other kinds, which belong to it and so answer to its full set
    of capabilities, or else to the caller's own."""
    creds = call.task.creds
    new = None
    if flags & CLONE_NEWUSER:
        idview.ensure_traps(call)
        new = userns.new_child(creds, call.process.root != "/")
    check_new(flags, new is not None or creds.capable_own(CAP_SYS_ADMIN), net=call.kernel.netns is not None)
    if flags & CLONE_NEWTIME:
        timens.ensure_traps(call)      # before any process can enter it
    if flags & CLONE_NEWNET:
        sockets.ensure_netns_traps(call)   # its sockets are made there by the helper
    return new


def check_new_pidns(proc):
    """copy_pid_ns and create_pid_namespace: EINVAL while the process's
    children are to go to a namespace other than its own already, ENOSPC
    past the nesting limit."""
    if proc.pidns_children is not proc.pidns:
        raise SyscallError(errno.EINVAL)
    if proc.pidns.level + 1 > LEVELS_MAX:
        raise SyscallError(errno.ENOSPC)


@handler("setns", support="partial",
         note="a time namespace's file (/proc/<pid>/ns/time, time_for_children) is joined as on Linux "
              "(CAP_SYS_ADMIN over it and in the caller's; EUSERS with other threads); joining any other "
              "kind is not offered (EPERM)")
def sys_setns(call):
    """setns(2) into a time namespace (kernel/timens.py): the caller and its
    next children are in it at once (timens_install and timens_commit)."""
    fd, nstype = call.fd(0), sint(call.args[1])
    host_path = call.host_fd_path(fd)
    found = _namespace_file(call, host_path)
    if found is None:
        # a pidfd names a process's namespaces, which are not offered; any
        # other file is no namespace at all
        raise SyscallError(errno.EPERM if host_path == PIDFD_LINK else errno.EINVAL)
    if found[0] != "time":
        raise SyscallError(errno.EPERM)
    _, number, sandbox_own = found
    if nstype and nstype != CLONE_NEWTIME:
        raise SyscallError(errno.EINVAL)
    ns = None if sandbox_own else time_namespaces.made(number)
    if ns is None and not sandbox_own:
        raise SyscallError(errno.EINVAL)          # gone: no process of the sandbox is in it
    proc, creds = call.process, call.task.creds
    if len(proc.threads) > 1:
        raise SyscallError(errno.EUSERS)
    if not (creds.ns_capable(ns.owner if ns else None, CAP_SYS_ADMIN) and creds.capable_own(CAP_SYS_ADMIN)):
        raise SyscallError(errno.EPERM)
    if ns is not None and ns.has_offsets():
        timens.ensure_traps(call)                 # its clocks, and its vDSO's, from now on
        if not timens.redirected(proc):
            raise SyscallError(errno.EPERM)
    proc.timens = proc.timens_children = time_namespaces.enter(ns)
    return 0


PIDFD_LINK = "anon_inode:[pidfd]"


def _namespace_file(call, host_path):
    """(kind, number, the sandbox's own) of the namespace file at a guest fd's host path, or None."""
    for mount in call.mounts.mounts.values():
        found = mount.namespace_file(host_path)
        if found is not None:
            return found
    return None
