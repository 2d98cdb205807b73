"""The namespaces a guest may make of its own, and the limits it is shown.

New UTS, PID, user, time and mount namespaces are emulated (task.UtsNamespace,
pidns.py, userns.py, timens.py, vfs/mount.py MountTable.copy); network
namespaces are made by the namespace helper beside the sandbox's own, where
it has one (netns.py).  The sandbox offers no other kind: a guest's IPC and
cgroup namespaces would each need an emulation of their own (the host's would
hand the guest capabilities and new kernel attack surface).  So the sandbox
behaves as a Linux whose administrator set those kinds' limits to 0:
/proc/sys/user/max_<kind>_namespaces reads 0 for each (proc.py), and making
one fails as the kernel fails it then, in the kernel's order — a new user
namespace needs no capability and is ENOSPC at once; the others need
CAP_SYS_ADMIN (EPERM) and are ENOSPC past it.  Programs read either signal:
LTP's network tests and sandboxing tools (bubblewrap, Chromium's zygote)
check the limit and carry on without namespaces.
"""
import errno

from sentry.errors import SyscallError
from sentry.vfs.mount import MountTable

CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_THREAD, CLONE_NEWNS, CLONE_SYSVSEM, CLONE_NEWCGROUP = 0x10000, 0x20000, 0x40000, 0x02000000
CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x04000000, 0x08000000, 0x10000000, 0x20000000
CLONE_NEWNET, CLONE_NEWTIME = 0x40000000, 0x80
CLONE_UNTRACED, CSIGNAL = 0x00800000, 0xFF

# The kinds other than user, in the order the kernel makes them
# (create_new_namespaces): the first one refused decides nothing else
# was made.
NAMESPACE_KINDS = (("mnt", CLONE_NEWNS), ("uts", CLONE_NEWUTS), ("ipc", CLONE_NEWIPC),
                   ("pid", CLONE_NEWPID), ("cgroup", CLONE_NEWCGROUP), ("net", CLONE_NEWNET),
                   ("time", CLONE_NEWTIME))
CLONE_NEW_OTHERS = sum(flag for _, flag in NAMESPACE_KINDS)
# what clone(2) may ask for: its low byte is the exit signal, which leaves
# CLONE_NEWTIME to clone3
CLONE_NEW_ANY = (CLONE_NEW_OTHERS | CLONE_NEWUSER) & ~CSIGNAL
OFFERED = CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWUSER | CLONE_NEWTIME | CLONE_NEWNS
OFFERED_KINDS = {name for name, flag in NAMESPACE_KINDS + (("user", CLONE_NEWUSER),) if flag & OFFERED}


# Mount namespaces live at once: each costs the Sentry a walk table of its
# own (native/resolve.h, about 1.4 MB), so a guest may not make them without
# bound; /proc/sys/user/max_mnt_namespaces reads this when the host's is more.
MNT_NAMESPACES_MAX = 64


def _host_limit(kind):
    try:
        with open(f"/proc/sys/user/max_{kind}_namespaces") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def offered(net):
    """The kinds offered; net: whether network namespaces are (the sandbox
    has one of its own to make them beside: kernel/netns.py)."""
    return OFFERED | (CLONE_NEWNET if net else 0)


def limit(kind, net=False):
    """/proc/sys/user/max_<kind>_namespaces as the sandbox shows it: the
    host's for a kind it offers, 0 for the rest."""
    if kind == "net":
        return _host_limit(kind) if net else 0
    if kind not in OFFERED_KINDS:
        return 0
    return min(_host_limit(kind), MNT_NAMESPACES_MAX) if kind == "mnt" else _host_limit(kind)


def check_new(flags, capable_sys_admin, net=False):
    """What unshare(2) and clone(2) check of the namespaces other than a
    user namespace that `flags` asks for, once their own flag rules and a
    new user namespace's passed (kernel/userns.py new_child):
    CAP_SYS_ADMIN in the user namespace they will belong to (EPERM), then
    each kind's limit (ENOSPC for one not offered)."""
    if not flags & CLONE_NEW_OTHERS:
        return
    if not capable_sys_admin:
        raise SyscallError(errno.EPERM)
    if flags & CLONE_NEW_OTHERS & ~offered(net):
        raise SyscallError(errno.ENOSPC)
    if flags & CLONE_NEWNS and sum(t.private for t in list(MountTable.tables)) >= limit("mnt"):
        raise SyscallError(errno.ENOSPC)
