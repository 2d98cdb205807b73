"""The clocks of a process in a time namespace of its own (sentry/kernel/timens.py).

The host kernel knows nothing of the sandbox's time namespaces, and the
vDSO reads its clocks from a page the Sentry cannot shift.  So the first
time a process makes one (unshare or clone3 with CLONE_NEWTIME), it loads
one more seccomp filter of its own (kept by its children and across exec),
which traps the calls whose answer or meaning a namespace's offsets change:
clock_gettime and clock_nanosleep on CLOCK_MONOTONIC, _RAW, _COARSE,
CLOCK_BOOTTIME and _ALARM, timerfd_settime, timer_settime, and the futex
commands whose timeout is an absolute CLOCK_MONOTONIC time.  Its vDSO's
clock_gettime is sent to the syscall (sentry/loader/vdso.py), now and after
each execve into a namespace with offsets.  Then, in a namespace with
offsets:
  - clock_gettime is answered by the Sentry: the host's clock read in the
    Sentry plus the offset, written to the guest (the kernel never writes a
    host time there, which a racing thread could read);
  - an absolute clock_nanosleep runs on a copy of its time, converted to the
    host's clock, in the staging area (never the guest's memory, which a
    racing thread could change after the conversion);
  - an absolute timerfd_settime is made by the Sentry on its own copy of the
    fd (pidfd_getfd), so the clock it checks is the timer's it sets;
  - an absolute timer_settime runs on a converted copy; the timer's clock is
    read from /proc/<pid>/timers;
  - a futex wait to an absolute CLOCK_MONOTONIC time (pthread_cond_timedwait
    on that clock, sem_clockwait: Python's lock timeouts) on a converted copy;
  - sysinfo's uptime and /proc/uptime add the boottime offset.
A process outside any such namespace pays nothing: none of this is loaded.
The process that makes one pays a trap per clock_gettime of those clocks
(its vDSO is redirected before its first child enters the namespace).
"""
import errno
import os
import struct

from sentry._native import ffi, lib
from sentry.errors import SyscallError
from sentry.kernel import fdtraps, timens
from sentry.kernel.syscall import PASS, Rewrite, sint
from sentry.loader import vdso
from sentry.host import fdinfo
from syscalls.registry import handler

SYS_CLOCK_GETTIME, SYS_CLOCK_NANOSLEEP, SYS_TIMER_SETTIME, SYS_TIMERFD_SETTIME = 228, 230, 223, 286
SYS_FUTEX = 202
# the futex commands whose timeout is an absolute CLOCK_MONOTONIC time
# unless FUTEX_CLOCK_REALTIME is set (futex_init_timeout): WAIT_BITSET,
# WAIT_REQUEUE_PI, LOCK_PI2, private or not -- as whole values of the op,
# since the kernel refuses any other bit (ENOSYS)
FUTEX_PRIVATE = 128
FUTEX_MONOTONIC_ABS = [cmd | private for cmd in (9, 11, 13) for private in (0, FUTEX_PRIVATE)]
ABSTIME = 1                          # TIMER_ABSTIME, TFD_TIMER_ABSTIME: the flag at argument 1
TFD_TIMER_CANCEL_ON_SET = 2
TIMESPEC = struct.Struct("<qq")
ITIMERSPEC = struct.Struct("<qqqq")  # it_interval, it_value
NSEC = timens.NSEC
KTIME_MAX = 2 ** 63 - 1
# what the filter traps: clock_gettime and clock_nanosleep of the shifted
# clocks (the low half of clockid, as the kernel reads it), the timers' setters
TRAPS = {
    SYS_CLOCK_GETTIME: [[(0, c, c)] for c in sorted(timens.SHIFTED)],
    SYS_CLOCK_NANOSLEEP: [[(0, c, c)] for c in (timens.CLOCK_MONOTONIC, timens.CLOCK_BOOTTIME,
                                                 timens.CLOCK_BOOTTIME_ALARM)],
    SYS_TIMERFD_SETTIME: None,
    SYS_TIMER_SETTIME: None,
    SYS_FUTEX: [[(1, op, op)] for op in FUTEX_MONOTONIC_ABS],
}


def ensure_traps(call):
    """Before a process (or its child) enters a time namespace of its own:
    its clock calls trap from then on, and its vDSO's clock_gettime is the
    syscall (else EPERM: its children's vDSO would read the host's clocks)."""
    fdtraps.ensure_process_filter(call, timens.CLOCKS, TRAPS, ready=redirected)


def redirected(proc):
    """Its vDSO's clock_gettime sent to the syscall now (setns into a
    namespace with offsets); False if it could not be."""
    return vdso.redirect_clock_gettime(proc.tgid)


def _shift(call, clockid):
    """The caller's offset for `clockid` (0: none, or not in such a namespace)."""
    return timens.offset(call.process.timens, clockid)


def _to_ns(raw):
    sec, nsec = TIMESPEC.unpack(raw)
    return sec, nsec, 0 <= nsec < NSEC and sec >= 0


def _to_host(value_ns, offset):
    """timens_ktime_to_host: an absolute time in the namespace, on the
    host's clock; one before the offset has passed already (0)."""
    return 0 if value_ns < offset else min(value_ns - offset, KTIME_MAX)


def _host_timespec(raw, offset):
    """A guest's absolute struct timespec, converted; an invalid one (which
    the kernel refuses with EINVAL) as it is."""
    sec, nsec, valid = _to_ns(raw)
    if not valid or offset == 0:
        return raw
    t = _to_host(min(sec, KTIME_MAX // NSEC + 1) * NSEC + nsec, offset)
    return TIMESPEC.pack(*divmod(t, NSEC))


def clock_gettime(call):
    """clock_gettime of a shifted clock in a namespace with offsets: the
    Sentry's answer; None to let the caller go on as for anyone."""
    clockid = sint(call.args[0])
    offset = _shift(call, clockid)
    if offset == 0:
        return None
    try:
        now = call.process.timens.now(clockid)
    except OSError as e:
        raise SyscallError(e.errno)
    call.write(call.args[1], TIMESPEC.pack(*divmod(now, NSEC)))
    return 0


def clock_nanosleep(call):
    """An absolute clock_nanosleep of a shifted clock: the Rewrite that
    sleeps on its converted copy; None for any other."""
    clockid, flags = sint(call.args[0]), sint(call.args[1])
    offset = _shift(call, clockid)
    if offset == 0 or not flags & ABSTIME:
        return None
    raw = call.read(call.args[2], TIMESPEC.size)
    at, = call.stage(_host_timespec(raw, offset))
    return Rewrite(args={2: at})


@handler("timerfd_settime", note="allowed in BPF; in a time namespace with offsets (syscalls/timens.py) "
                                 "an absolute time of a CLOCK_MONOTONIC or CLOCK_BOOTTIME timerfd is "
                                 "converted and the timer set by the Sentry on its copy of the fd")
def sys_timerfd_settime(call):
    ns, flags = _absolute_when_shifted(call)
    if ns is None:
        return PASS
    if flags & ~(ABSTIME | TFD_TIMER_CANCEL_ON_SET):
        raise SyscallError(errno.EINVAL)
    new = bytearray(call.read(call.args[2], ITIMERSPEC.size))
    if not (_to_ns(bytes(new[:16]))[2] and _to_ns(bytes(new[16:]))[2]):
        raise SyscallError(errno.EINVAL)           # itimerspec64_valid, before the fd
    fd = call.kernel.borrow_fd(call.process, call.fd(0))
    try:
        clockid = _timerfd_clock(fd)
        if clockid is None:
            raise SyscallError(errno.EINVAL)       # not a timerfd
        new[16:] = _host_timespec(bytes(new[16:]), ns.offset(clockid))
        old = ffi.new("char[]", ITIMERSPEC.size)
        r = lib.sn_timerfd_settime(fd, flags, bytes(new), old)
    finally:
        os.close(fd)
    if r < 0:
        raise SyscallError(-r)
    if call.args[3]:
        call.write(call.args[3], ffi.buffer(old)[:])     # time left: relative, as it is
    return 0


def _absolute_when_shifted(call):
    """(the caller's time namespace, the call's flags at argument 1) when
    the namespace shifts a clock and the flags ask for an absolute time;
    (None, flags) otherwise."""
    ns, flags = call.process.timens, sint(call.args[1])
    if ns is None or not ns.has_offsets() or not flags & ABSTIME:
        return None, flags
    return ns, flags


def _timerfd_clock(fd):
    """The clock of the timerfd at the Sentry's `fd`, or None for another file."""
    try:
        return int(fdinfo("self", fd)["clockid"])
    except (OSError, KeyError, ValueError):
        return None


@handler("timer_settime", note="allowed in BPF; in a time namespace with offsets (syscalls/timens.py) "
                               "an absolute time of a CLOCK_MONOTONIC or CLOCK_BOOTTIME timer is converted")
def sys_timer_settime(call):
    ns, _ = _absolute_when_shifted(call)
    if ns is None:
        return PASS
    new = bytearray(call.read(call.args[2], ITIMERSPEC.size))
    offset = ns.offset(_timer_clock(call.process.tgid, sint(call.args[0])))
    new[16:] = _host_timespec(bytes(new[16:]), offset)
    at, = call.stage(bytes(new))
    return Rewrite(args={2: at})


@handler("futex", note="allowed in BPF; in a time namespace with offsets (syscalls/timens.py) the absolute "
                       "CLOCK_MONOTONIC timeout of FUTEX_WAIT_BITSET, _WAIT_REQUEUE_PI and _LOCK_PI2 is converted")
def sys_futex(call):
    ns = call.process.timens
    op = sint(call.args[1])
    if ns is None or op not in FUTEX_MONOTONIC_ABS or not call.args[3]:
        return PASS
    offset = ns.offset(timens.CLOCK_MONOTONIC)
    if offset == 0:
        return PASS
    raw = call.read(call.args[3], TIMESPEC.size)
    at, = call.stage(_host_timespec(raw, offset))
    return Rewrite(args={3: at})


def _timer_clock(tgid, timer_id):
    """The clock of a process's POSIX timer (/proc/<pid>/timers), or -1."""
    try:
        with open(f"/proc/{tgid}/timers") as f:
            mine = False
            for line in f:
                key, _, value = line.partition(":")
                if key == "ID":
                    mine = int(value) == timer_id
                elif key == "ClockID" and mine:
                    return int(value)
    except (OSError, ValueError):
        pass
    return -1

