"""The owner and group a stat call writes, as a task in a user namespace of
its own sees them (sentry/kernel/userns.py).

Whoever writes the struct -- the kernel on the guest's own call or a
rewrite of it, or a handler -- the ids in it are the sandbox's; for such a
task they are read back once the call is done and rewritten through its
namespace's maps (the overflow id for one they do not cover).  The C fast
path leaves these calls of such a task to Python (its identity row's
id_view), and fstat, which BPF lets through, traps in its process
(ensure_traps below).
"""
import functools
import struct

from sentry.errors import SyscallError
from sentry.kernel import fdtraps, userns
from sentry.kernel.syscall import PASS, Rewrite

STAT_IDS = 28                # struct stat: st_uid, then st_gid
STATX_IDS = 20               # struct statx: stx_uid, then stx_gid
SYS_FSTAT = 5


def _rewrite(task, addr, offset):
    from sentry.platform import memory
    try:
        uid, gid = struct.unpack("<II", memory.read(task.tid, addr + offset, 8))
        memory.write(task.tid, addr + offset,
                     struct.pack("<II", userns.view(task.creds, "u", uid), userns.view(task.creds, "g", gid)))
    except SyscallError:
        pass                            # unmapped meanwhile: what the guest reads is its own doing


def viewed(out_arg, offset):
    """A stat handler whose struct (at argument out_arg; its uid and gid at
    `offset`) shows ids as the caller's user namespace sees them."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(call):
            outcome = fn(call)
            if call.task.creds.userns is None:
                return outcome
            addr = call.args[out_arg]
            if isinstance(outcome, int) and not isinstance(outcome, bool):
                if outcome == 0:
                    _rewrite(call.task, addr, offset)
                return outcome
            if outcome is PASS:
                outcome = Rewrite()
            if isinstance(outcome, Rewrite):
                then = outcome.on_exit

                def done(task, result):
                    new = then(task, result) if then else None
                    if (result if new is None else new) == 0:
                        _rewrite(task, addr, offset)
                    return new
                outcome.on_exit = done
            return outcome
        return run
    return wrap


def ensure_traps(call):
    """Before a process (or its child) enters a user namespace of its own:
    its fstat, which BPF lets through, must trap from then on (one more
    filter of its own, kept by its children and across exec); where it
    cannot be loaded the call fails with EPERM: fstat would show the
    sandbox's ids."""
    fdtraps.ensure_process_filter(call, "fstat", {SYS_FSTAT: None})
