"""Files whose writes the Sentry parses: a process's /proc/<pid>/uid_map,
gid_map and setgroups (kernel/userns.py), and its timens_offsets
(kernel/timens.py); the write family's handlers are syscalls/writes.py's.

Writing one is an act, not content: the kernel checks the writer and the
map at the write and answers EPERM or EINVAL there.  So an fd opened for
writing on one gets its write family trapped (kernel/fdtraps.py: that fd
number and its copies), and a trapped write on it is answered here from
what the guest passed; the file shows the maps once written (fsimpl/proc.py).
Any other file at that number (a racing dup2) runs the guest's own call.
"""
import errno

from sentry.errors import SyscallError
from sentry.kernel import fdtraps
from sentry.kernel.credentials import CAP_SETGID, CAP_SETUID, CAP_SYS_TIME
from sentry.kernel.syscall import PASS
from sentry.vfs.mount import MountTable

# the write family, as for a network setting, and the calls that copy the fd
CONTROL_TRAPS = fdtraps.SETTING_TRAPS
PAGE_SIZE = 4096             # map_write takes at most a page


def control_of(kernel, host_path):
    """(pid, name) of the control file at a guest fd's host path, or None."""
    for mount in [m for table in list(MountTable.tables) for m in table.mounts.values()]:
        root = getattr(mount, "host_root", None)
        if root and host_path.startswith(root + "/"):
            found = mount.control_file(host_path[len(root) + 1:])
            if found is not None:
                return found
    return None


fdtraps.CLASSIFIERS.append(lambda kernel, path: CONTROL_TRAPS if control_of(kernel, path) else None)


def trapped_on_open(call):
    """The on_exit of an open for writing of a control file: its fd's
    writes trap from then on."""
    call.slot()                          # the exit stop stages the filter
    kernel = call.kernel

    def opened(task, result):
        if result >= 0:
            fdtraps.trap_after(kernel, task, result, CONTROL_TRAPS, result)
    return opened


def _apply(call, pid, name, data):
    """The write of `data` to /proc/<pid>/<name> by the calling task."""
    with call.kernel.viewed_from(call.kernel.pids):      # /proc's numbers are the sandbox's
        target = call.kernel.task_of(pid)
    if target is None or target.creds is None:
        raise SyscallError(errno.ESRCH)
    writer = call.task.creds
    if name == "timens_offsets":
        return _set_time_offsets(target.process, writer, data)
    ns = target.creds.userns
    text = data.decode(errors="replace")
    if ns is None:
        raise SyscallError(errno.EPERM)           # the sandbox's maps are set for good
    if name == "setgroups":
        ns.write_setgroups(text)
        return len(data)
    # map_write: the writer is in the namespace or in its parent, and holds
    # CAP_SETUID (CAP_SETGID) over it
    kind, cap = ("u", CAP_SETUID) if name == "uid_map" else ("g", CAP_SETGID)
    if not (writer.userns is ns or writer.userns is ns.parent) or not writer.ns_capable(ns, cap):
        raise SyscallError(errno.EPERM)
    if len(data) >= PAGE_SIZE:
        raise SyscallError(errno.EINVAL)
    ns.write_map(kind, text, writer, writer.ns_capable(ns.parent, cap))
    return len(data)


def _set_time_offsets(proc, writer, data):
    """proc_timens_set_offset: the offsets of the process's namespace for
    children, by a writer holding CAP_SYS_TIME over its user namespace.
    The sandbox's own namespace has processes in it: EACCES (EPERM without
    the capability)."""
    ns = proc.timens_children
    if ns is None:
        raise SyscallError(errno.EACCES if writer.capable(CAP_SYS_TIME) else errno.EPERM)
    return ns.write(data, writer.ns_capable(ns.owner, CAP_SYS_TIME))


def write(call, chunks, offset=None):
    """The guest's write of `chunks` ([(address, length)]) on its fd arg 0
    (at `offset`, or its file position), or PASS (syscalls/writes.py)."""
    fd = call.args[0] & 0xFFFFFFFF            # fdget takes an int
    try:
        found = control_of(call.kernel, call.host_fd_path(fd))
    except SyscallError:
        return PASS                           # closed: the kernel's EBADF
    if found is None:
        return PASS                           # another file at that number now
    if offset not in (None, 0):
        raise SyscallError(errno.EINVAL)      # map_write: one write, at its start
    if any(n < 0 for _, n in chunks):
        return PASS
    data = b"".join(call.read(addr, n) for addr, n in chunks if n)
    return _apply(call, *found, data)
