"""Clocks: those that name a process, and the ones a guest would set (the
kernel refuses it: the guest holds no CAP_SYS_TIME).

The CPU-time clocks of another pid or tid name a process.

A negative clockid can carry a pid (`clock_getcpuclockid`,
`pthread_getcpuclockid`): the kernel decodes it as ~(clockid >> 3), with the
low three bits choosing the clock (bit 2: a thread's).  Left untranslated, a
guest could read any host process's CPU time, and learn which host pids
exist.  BPF lets the common clocks run free (syscalls/table.py); these trap,
and the pid inside is translated as any other pid argument.
"""
import errno

from sentry.kernel.syscall import PASS, Rewrite
from sentry.errors import SyscallError
from syscalls import timens
from syscalls.registry import handler

CLOCKFD = 3          # low bits of a clockid naming a posix clock device by fd
PER_THREAD = 4


def names_a_pid(clockid):
    """Whether a clockid (as the kernel reads it: an int) carries a pid."""
    return clockid < 0 and clockid & 7 != CLOCKFD and ~(clockid >> 3) != 0


def host_clockid(call, clockid):
    """The host's clockid for a guest's: the pid inside translated.
    A pid that names no sandbox task is EINVAL, as Linux says for a pid that
    does not exist."""
    if not names_a_pid(clockid):
        return clockid
    try:
        host = call.kernel.host_id(~(clockid >> 3), task=bool(clockid & PER_THREAD))
    except SyscallError:
        raise SyscallError(errno.EINVAL)
    return (~host << 3) | (clockid & 7)


# the calls a time namespace's offsets change (syscalls/timens.py)
SHIFTED_CALLS = {timens.SYS_CLOCK_GETTIME: timens.clock_gettime, timens.SYS_CLOCK_NANOSLEEP: timens.clock_nanosleep}


@handler("clock_gettime", "clock_getres", "clock_nanosleep", "clock_settime", "clock_adjtime",
         note="a CPU-time clock of another process names a virtual pid; the kernel refuses any change "
              "of the host's clocks (no CAP_SYS_TIME: EPERM, as in a container), reads pass; in a time "
              "namespace with offsets, MONOTONIC and BOOTTIME are shifted (syscalls/timens.py)")
def sys_clock(call):
    shifted = SHIFTED_CALLS.get(call.nr)
    if shifted is not None and call.process.timens is not None:
        outcome = shifted(call)          # a time namespace's offset applies
        if outcome is not None:
            return outcome
    clockid = call.args[0]
    host = host_clockid(call, clockid)
    if host == clockid:
        return PASS
    return Rewrite(args={0: host & 0xFFFFFFFFFFFFFFFF}, restore=True)
