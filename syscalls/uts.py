"""The sandbox's UTS names: what uname tells the guest of where it runs
(--hostname, --kernel-release), and the calls that change them, for the
sandbox only."""
import errno
import os

from sentry.kernel.credentials import CAP_SYS_ADMIN
from sentry.errors import SyscallError
from syscalls.registry import handler

UTS_LEN = 65


def _field(s):
    b = s.encode()[:UTS_LEN - 1]
    return b + b"\0" * (UTS_LEN - len(b))


@handler("uname", note="answers from the sandbox's UTS state (hostname from --hostname)")
def sys_uname(call):
    u = os.uname()
    uts = call.process.uts
    data = b"".join(_field(x) for x in (u.sysname, uts.get("hostname", u.nodename),
                                         uts.get("release", u.release), uts.get("version", u.version),
                                         u.machine, uts.get("domainname", "(none)")))
    call.write(call.args[0], data)
    return 0


def _set_uts(key):
    def set_name(call):
        # CAP_SYS_ADMIN in the user namespace owning the UTS namespace,
        # checked first; len is an int
        if not call.task.creds.ns_capable(call.process.uts.owner, CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        n = call.args[1]            # an int
        if not 0 <= n <= UTS_LEN - 1:
            raise SyscallError(errno.EINVAL)
        call.process.uts[key] = call.read(call.args[0], n).decode(errors="surrogateescape")
        return 0
    return set_name


handler("sethostname", note="changes the sandbox's UTS state only; needs CAP_SYS_ADMIN")(_set_uts("hostname"))
handler("setdomainname", note="changes the sandbox's UTS state only; needs CAP_SYS_ADMIN")(_set_uts("domainname"))
