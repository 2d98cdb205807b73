"""Identity and UTS: what the guest learns about who and where it is."""
import errno
import os
import struct

from sentry.kernel.credentials import CAP_SYS_ADMIN
from sentry.errors import SyscallError

from sentry.kernel.syscall import Rewrite
from syscalls.registry import handler

UTS_LEN = 65


def _field(s):
    b = s.encode()[:UTS_LEN - 1]
    return b + b"\0" * (UTS_LEN - len(b))


@handler("uname", note="answers from the sandbox's UTS state (hostname from --hostname)")
def sys_uname(call):
    u = os.uname()
    uts = call.kernel.uts
    data = b"".join(_field(x) for x in (u.sysname, uts.get("hostname", u.nodename),
                                         uts.get("release", u.release), uts.get("version", u.version),
                                         u.machine, uts.get("domainname", "(none)")))
    call.write(call.args[0], data)
    return 0


def _set_uts(key):
    def set_name(call):
        # CAP_SYS_ADMIN in the user namespace owning the UTS namespace (the
        # sandbox's), checked first; len is an int
        if not call.task.creds.capable(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        n = call.args[1]            # an int
        if not 0 <= n <= UTS_LEN - 1:
            raise SyscallError(errno.EINVAL)
        call.kernel.uts[key] = call.read(call.args[0], n).decode(errors="surrogateescape")
        return 0
    return set_name


handler("sethostname", note="changes the sandbox's UTS state only; needs CAP_SYS_ADMIN")(_set_uts("hostname"))
handler("setdomainname", note="changes the sandbox's UTS state only; needs CAP_SYS_ADMIN")(_set_uts("domainname"))


CLOCK_REALTIME, CLOCK_TAI = 0, 11


@handler("clock_settime", support="partial",
         note="the host's clocks are not the sandbox's to set: EPERM (EINVAL for a clock no one may set)")
def sys_clock_settime(call):
    clock = call.args[0] & 0xFFFFFFFF
    if clock not in (CLOCK_REALTIME, CLOCK_TAI):
        raise SyscallError(errno.EINVAL)
    raise SyscallError(errno.EPERM)


SYSINFO_RAM, SYSINFO_PROCS, SYSINFO_UNIT = 32, 80, 104


@handler("sysinfo", note="memory as --memory sets it; procs counts the sandbox's tasks")
def sys_sysinfo(call):
    info, kernel = call.args[0], call.kernel

    def done(task, result):
        if result == 0:
            try:
                raw = bytearray(call.read(info, 112))
                total, free = struct.unpack_from("<QQ", raw, SYSINFO_RAM)
                (unit,) = struct.unpack_from("<I", raw, SYSINFO_UNIT)
                struct.pack_into("<QQ", raw, SYSINFO_RAM, *kernel.limits.sysinfo(
                    total, free, unit, kernel.resident_bytes() if kernel.limits.memory else 0))
                struct.pack_into("<H", raw, SYSINFO_PROCS, min(len(kernel.tasks), 0xFFFF))
                call.write(info, bytes(raw))
            except SyscallError:
                pass
        return result
    return Rewrite(on_exit=done)
