"""Pinning: a sandbox file held by the guest at one of the Sentry's hidden fd
numbers, for a call that must run in the guest's own context and name that
file (a unix connect or datagram send through /proc/thread-self/fd/H, chdir
as fchdir(H)).

Such a call can be given neither a path the kernel would look up again (a
racing thread could swap a component for a symlink) nor an fd number in the
guest's own table (another thread could dup2 a host object onto it between
the Sentry's check and the kernel's use).  So the Sentry has the guest
  1. open the file O_PATH through its mount's confined root (openat2, with
     the path and open_how on the read-only staging page): fd N;
  2. dup3(N, H), H one of the hidden slots below, which no guest call can
     name, replace or close;
  3. close(N);
then checks that H is the very inode the Sentry resolved, and only then lets
the call run naming H.  Each step is a call injected before the guest's own,
which then traps again; the task's `pin` carries the steps across those
traps.  A slot keeps whatever it last held (a filler, or an old O_PATH fd):
never empty, so the kernel never hands its number out.
"""
import errno
import os
import struct

from sentry.host import CONFINED
from sentry.vfs.mount import O_PATH, PIN_SLOTS, open_final
from sentry.kernel.syscall import Inject
from sentry.errors import SyscallError

SYS_CLOSE, SYS_SCHED_YIELD, SYS_DUP3, SYS_OPENAT2 = 3, 24, 292, 437
# A thread of the same fd table that closes or replaces N between the steps
# makes the pin fail its check: the steps start over, this many times in all,
# before the call fails as if it had lost a rename race.
TRIES = 16
O_CLOEXEC = 0o2000000


class Pin:
    __slots__ = ("key", "slot", "fd", "stage", "tries")

    def __init__(self, key, slot):
        self.key = key
        self.slot = slot
        self.fd = None            # N, once the injected openat2 returned
        self.stage = "open"       # open -> move -> close -> check -> ready
        self.tries = 1


def release(task):
    """The task is done with its pin (its call returned, or it is gone)."""
    pin, task.pin = task.pin, None
    if pin is not None and task.process is not None:
        files = task.process.files
        if files.owner.get(pin.slot) == task.tid:
            del files.owner[pin.slot]


def _take_slot(call):
    files, kernel = call.process.files, call.kernel      # sentry.kernel.task.FdTable
    for slot in PIN_SLOTS:
        owner = files.owner.get(slot)
        holder = kernel.tasks.get(owner) if owner is not None else None
        if holder is None or holder.pin is None or holder.pin.slot != slot:
            files.owner[slot] = call.tid
            return slot
    return None


def pinned(call, loc, key):
    """The hidden fd number at which the guest holds loc's file, checked to be
    that file; raises Inject until the steps are done.  `key` names the call
    (the same key on the next trap continues the same pin)."""
    task = call.task
    key = (key, loc.mount.guest_fd, loc.rel)
    pin = task.pin
    if pin is not None and pin.key != key:
        release(task)
        pin = None
    if pin is None:
        slot = _take_slot(call)
        if slot is None:
            # every slot of this fd table is some thread's, for a moment:
            # yield and trap again
            raise Inject(SYS_SCHED_YIELD, (), lambda result: None)
        pin = task.pin = Pin(key, slot)
    if pin.stage == "failed" and pin.tries < TRIES:
        pin.stage, pin.tries = "open", pin.tries + 1
    if pin.stage == "open":
        how = struct.pack("<QQQ", O_PATH | O_CLOEXEC, 0, CONFINED)
        rel_addr, how_addr = call.stage(os.fsencode(loc.rel) + b"\0", how)

        def opened(result):
            pin.fd, pin.stage = result, "move"
        raise Inject(SYS_OPENAT2, (loc.mount.guest_fd, rel_addr, how_addr, len(how)), opened)
    if pin.stage == "move":
        if pin.fd < 0:
            err = -pin.fd
            release(task)
            raise SyscallError(err)

        def moved(result):
            pin.stage = "close" if result == pin.slot else "failed"
        # no O_CLOEXEC: the slot must stay taken across an exec
        raise Inject(SYS_DUP3, (pin.fd, pin.slot, 0), moved)
    if pin.stage == "close":
        def closed(result):
            pin.stage = "check"
        raise Inject(SYS_CLOSE, (pin.fd,), closed)
    if pin.stage == "check":
        pin.stage = "ready" if _same_file(call, pin.slot, loc) else "failed"
        if pin.stage == "failed" and pin.tries < TRIES:
            return pinned(call, loc, key[0])
    if pin.stage != "ready":
        release(task)
        raise SyscallError(errno.ENOENT)    # the file changed under the call, as a lost rename race
    return pin.slot


def _same_file(call, slot, loc):
    """Whether guest fd `slot` is loc's file, as the Sentry opens it confined."""
    try:
        held = os.stat(f"/proc/{call.tid}/fd/{slot}")
        fd = open_final(loc)
    except (OSError, SyscallError):
        return False
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return (held.st_dev, held.st_ino) == (st.st_dev, st.st_ino)
