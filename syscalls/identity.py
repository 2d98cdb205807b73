"""Identity and UTS: what the guest learns about who and where it is."""
import errno
import os

from syscalls.errors import SyscallError

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
        n = call.args[1]
        if n > UTS_LEN - 1:
            raise SyscallError(errno.EINVAL)
        call.kernel.uts[key] = call.read(call.args[0], n).decode(errors="surrogateescape")
        return 0
    return set_name


handler("sethostname", note="changes the sandbox's UTS state only")(_set_uts("hostname"))
handler("setdomainname", note="changes the sandbox's UTS state only")(_set_uts("domainname"))


CLOCK_REALTIME, CLOCK_TAI = 0, 11


@handler("clock_settime", support="partial",
         note="the host's clocks are not the sandbox's to set: EPERM (EINVAL for a clock no one may set)")
def sys_clock_settime(call):
    clock = call.args[0] & 0xFFFFFFFF
    if clock not in (CLOCK_REALTIME, CLOCK_TAI):
        raise SyscallError(errno.EINVAL)
    raise SyscallError(errno.EPERM)
