"""/proc/sysvipc: the sandbox's System V IPC objects, as the kernel lists them.

The kernel binds each table to the IPC namespace of whoever opens it, so the
namespace helper opens them inside the sandbox's (vfs/mountns.py) and the
Sentry reads those files again from the start at each lookup: the host's
objects and other sandboxes' never show.  The kernel names processes and
owners there as the helper sees them: by host pid, and by host id (its user
namespace, if any, maps the Sentry's ids to themselves).  Those columns get
the guest's names: the sandbox's pids (0 for a process outside it, as Linux
shows one outside the reader's PID namespace), and ids as every stat shows
them to the guest (kernel/idmap.py).
"""
import os

# Each table's line as the kernel prints it (ipc/msg.c, sem.c, shm.c), and
# the columns that hold a pid.  Python's % conversions are C's.
LINE = {
    "msg": ("%10d %10d  %4o  %10d %10d %5d %5d %5d %5d %5d %5d %10d %10d %10d\n", (5, 6)),
    "sem": ("%10d %10d  %4o %10d %5d %5d %5d %5d %10d %10d\n", ()),
    "shm": ("%10d %10d  %4o %21d %5d %5d  %5d %5d %5d %5d %5d %10d %10d %10d %21d %21d\n", (4, 5)),
}
# where each table's uid, gid, cuid and cgid columns start
ID_COLUMNS = {"msg": 7, "sem": 4, "shm": 7}
PERMS = 2                       # the column printed in octal
READ_MAX = 1 << 24


def read(fd):
    """The whole table behind an open /proc/sysvipc file, from its start."""
    chunks, offset = [], 0
    while offset < READ_MAX:
        data = os.pread(fd, 1 << 16, offset)
        if not data:
            break
        chunks.append(data)
        offset += len(data)
    return b"".join(chunks)


def translated(name, text, vpid, ids):
    """Table `name`'s text with its pid columns given by vpid(host pid) and
    its id columns by ids.uid_view and ids.gid_view (an IdMap)."""
    fmt, pid_columns = LINE[name]
    lines = text.splitlines(keepends=True)
    out = lines[:1]                               # the header
    for line in lines[1:]:
        fields = line.split()
        try:
            values = [int(f, 8 if i == PERMS else 10) for i, f in enumerate(fields)]
            for i in pid_columns:
                values[i] = vpid(values[i]) if values[i] > 0 else values[i]
            first = ID_COLUMNS[name]
            for i, view in zip(range(first, first + 4), (ids.uid_view, ids.gid_view) * 2):
                values[i] = view(values[i])
            out.append((fmt % tuple(values)).encode())
        except (ValueError, TypeError, IndexError):
            continue                # a line of a format this kernel changed: left out, never shown raw
    return b"".join(out)
