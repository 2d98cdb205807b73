"""Identity and UTS: what the guest learns about who and where it is."""
import os

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
