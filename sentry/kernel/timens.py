"""Time namespaces a guest makes (`unshare -T`, clone3 with CLONE_NEWTIME):
offsets of CLOCK_MONOTONIC and CLOCK_BOOTTIME (and their _RAW, _COARSE
and _ALARM forms) for the processes in one.

A process is in one namespace and makes its children in another
(time_for_children): unshare(CLONE_NEWTIME) changes only the latter, and a
fork or an execve enters it.  Its offsets are written through
/proc/<pid>/timens_offsets (of the time_for_children namespace) until the
first process enters it; then they are frozen (EACCES).  None stands for
the sandbox's own namespace, which has no offsets.

How a process in one sees its clocks is syscalls/timens.py's.
"""
import errno
import itertools
import re
import time
import weakref

from sentry.errors import SyscallError
from sentry.loader import vdso

CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE = 1, 4, 6
CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM = 7, 9
# each clock a namespace shifts, and whose offset it takes
SHIFTED = {CLOCK_MONOTONIC: CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW: CLOCK_MONOTONIC,
           CLOCK_MONOTONIC_COARSE: CLOCK_MONOTONIC, CLOCK_BOOTTIME: CLOCK_BOOTTIME,
           CLOCK_BOOTTIME_ALARM: CLOCK_BOOTTIME}
NAMES = {CLOCK_MONOTONIC: "monotonic", CLOCK_BOOTTIME: "boottime"}
CLOCKS = "clocks"        # the name of the filter that traps the clock calls (syscalls/timens.py)
NSEC = 10 ** 9
KTIME_SEC_MAX = (2 ** 63 - 1) // NSEC
_idents = itertools.count(0xEFFFE000)    # /proc/<pid>/ns/time numbers, as inode numbers look
_made = weakref.WeakValueDictionary()     # number -> a namespace a guest made, while it lives


class TimeNamespace:
    def __init__(self, owner, parent=None):
        """A new namespace starts with the offsets of `parent`, the
        namespace for children of its maker (clone_time_ns)."""
        self.owner = owner                   # its user namespace (None: the sandbox's)
        self.offsets = dict(parent.offsets) if parent else {CLOCK_MONOTONIC: 0, CLOCK_BOOTTIME: 0}  # ns
        self.frozen = False                  # a process entered it
        self.ident = next(_idents)
        _made[self.ident] = self

    def offset(self, clockid):
        """Nanoseconds added to clock `clockid` here (0 for one not shifted)."""
        base = SHIFTED.get(clockid)
        return 0 if base is None else self.offsets[base]

    def now(self, clockid):
        """Clock `clockid` as read here: the host's plus this namespace's
        offset (OSError for a clock the host refuses)."""
        return time.clock_gettime_ns(clockid) + self.offset(clockid)

    def has_offsets(self):
        return any(self.offsets.values())

    def text(self):
        """What /proc/<pid>/timens_offsets reads."""
        out = []
        for clock in (CLOCK_MONOTONIC, CLOCK_BOOTTIME):
            sec, nsec = divmod(self.offsets[clock], NSEC)
            out.append(f"{NAMES[clock]:<10} {sec:>10} {nsec:>9}\n")
        return "".join(out)

    def write(self, data, capable):
        """A write of `data` to /proc/<pid>/timens_offsets, as the kernel's
        timens_offsets_write and proc_timens_set_offset take it: up to two
        lines "clock sec nsec" (clock by name or number), EINVAL for a bad
        line, EPERM without CAP_SYS_TIME over the namespace, ERANGE for an
        offset that would take the clock below 0 or past half of ktime's
        range, EACCES once a process entered.  Returns the bytes taken."""
        lines, taken = [], len(data)
        pos = 0
        while pos is not None and len(lines) < 2:
            end = data.find(b"\n", pos)
            line = data[pos:] if end < 0 else data[pos:end]
            pos = None if end < 0 or end + 1 == len(data) else end + 1
            fields = line.split()
            if len(fields) < 3:
                raise SyscallError(errno.EINVAL)
            clock, sec, nsec = fields[0][:9], _c_number(fields[1], signed=True), _c_number(fields[2])
            if sec is None or nsec is None or nsec >= NSEC:
                raise SyscallError(errno.EINVAL)
            if clock in (b"monotonic", b"1"):
                lines.append((CLOCK_MONOTONIC, sec, nsec))
            elif clock in (b"boottime", b"7"):
                lines.append((CLOCK_BOOTTIME, sec, nsec))
            else:
                raise SyscallError(errno.EINVAL)
            if len(lines) == 2 and pos is not None:
                taken = pos
        if not capable:
            raise SyscallError(errno.EPERM)
        for clock, sec, nsec in lines:
            if not -KTIME_SEC_MAX <= sec <= KTIME_SEC_MAX:
                raise SyscallError(errno.ERANGE)
            now = time.clock_gettime_ns(clock) + sec * NSEC + nsec
            if now < 0 or now // NSEC > KTIME_SEC_MAX // 2:
                raise SyscallError(errno.ERANGE)
        if self.frozen:
            raise SyscallError(errno.EACCES)
        for clock, sec, nsec in lines:
            self.offsets[clock] = sec * NSEC + nsec
        return taken


def _c_number(word, signed=False):
    """sscanf's %lld (signed) or %lu of a word: its leading digits, after
    an optional sign (%lu wraps a negative one); None for no digits."""
    m = re.match(rb"[+-]?[0-9]+", word)
    if m is None:
        return None
    value = int(m.group())
    return value if signed or value >= 0 else value % 2 ** 64


def with_offsets(text):
    """A time namespace of the sandbox's own (the OCI spec's, with its
    linux.timeOffsets) with the offsets of `text`, as
    /proc/<pid>/timens_offsets takes them ("monotonic SECS NSECS" and
    "boottime SECS NSECS" lines); SyscallError for offsets Linux refuses.
    Each process that is in no namespace of a guest's enters it at its
    execve (syscalls/exec.py), so the container's init and every process
    `exec` adds run in it, as under runc."""
    ns = TimeNamespace(None)
    ns.write(text.encode(), capable=True)
    return ns


def made(ident):
    """The living namespace a guest made whose /proc number is `ident`, or None."""
    return _made.get(ident)


def enter(ns):
    """A process enters `ns` (a fork or an execve in the namespace of its
    parent's or its own children): its offsets are frozen."""
    if ns is not None:
        ns.frozen = True
    return ns


def offset(ns, clockid):
    return 0 if ns is None else ns.offset(clockid)


def exec_in(proc):
    """An execve: the process enters its namespace for children, and the
    new image's vDSO (the host's again) has its clock_gettime redirected
    where that namespace shifts a clock (syscalls/timens.py).  False if
    it could not be: the image must not run (its vDSO would read the
    host's clocks)."""
    proc.timens = enter(proc.timens_children)
    if CLOCKS in proc.process_traps and proc.timens is not None and proc.timens.has_offsets():
        return vdso.redirect_clock_gettime(proc.tgid)
    return True


def text(ns):
    """/proc/<pid>/timens_offsets of namespace `ns` (None: the sandbox's, no offsets)."""
    return (ns or _SANDBOX).text()


_SANDBOX = TimeNamespace(None)
