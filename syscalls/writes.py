"""The write family, where it traps: BPF lets it through, but for fds a
process filter of their own names (kernel/fdtraps.py) and under --strace.
Those are files whose writes the Sentry answers itself: a network setting
whose write the namespace helper makes (syscalls/settings.py), a process's
uid_map, gid_map or setgroups (syscalls/controlfiles.py); and set-id files
whose bits a CAP_FSETID holder's write keeps (syscalls/fsetid.py).  Each looks at
what the fd is now and answers, or PASSes: any other file at that number
gets the guest's own call."""
import struct

from sentry.kernel import fdtraps
from sentry.kernel.syscall import PASS
from syscalls import controlfiles, fsetid, settings
from syscalls.registry import handler

UIO_MAXIOV = 1024
IOVEC = struct.Struct("<QQ")
KINDS = (settings, controlfiles, fsetid)


def _write(call, chunks, offset=None):
    for kind in KINDS:
        outcome = kind.write(call, chunks, offset)
        if outcome is not PASS:
            return outcome
    return PASS


def _iovecs(call, addr, count):
    """The guest's iovec array, or None for a count the kernel refuses."""
    if not 0 <= count <= UIO_MAXIOV:
        return None
    raw = call.read(addr, count * IOVEC.size) if count else b""
    return [IOVEC.unpack_from(raw, i * IOVEC.size) for i in range(count)]


NOTE = ("allowed in BPF; trapped only on fds a process filter names: a network setting whose writes the "
        "namespace helper makes, a process's uid_map, gid_map or setgroups (syscalls/writes.py), a set-id "
        "file a CAP_FSETID holder writes (syscalls/fsetid.py), and --strace")


@handler("write", note=NOTE)
def sys_write(call):
    return _write(call, [(call.args[1], call.args[2])])


@handler("pwrite64", note=NOTE)
def sys_pwrite64(call):
    if call.args[3] < 0:
        return PASS
    return _write(call, [(call.args[1], call.args[2])], call.args[3])


@handler("writev", note=NOTE)
def sys_writev(call):
    iov = _iovecs(call, call.args[1], call.args[2])
    return PASS if iov is None else _write(call, iov)


@handler("pwritev", "pwritev2", note=NOTE)
def sys_pwritev(call):
    # pos_l holds the whole offset on x86-64 (pos_h is ignored); pwritev2's
    # offset -1 is the file position, and its flags are the kernel's to judge
    offset = call.args[3]
    if call.nr == fdtraps.SYS_PWRITEV2 and (call.args[5] or offset == 2 ** 64 - 1):
        return PASS if call.args[5] else _pwritev(call, None)
    if offset >= 2 ** 63:
        return PASS                           # negative: the kernel's EINVAL
    return _pwritev(call, offset)


def _pwritev(call, offset):
    iov = _iovecs(call, call.args[1], call.args[2])
    return PASS if iov is None else _write(call, iov, offset)
