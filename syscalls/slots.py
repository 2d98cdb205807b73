"""The Sentry's hidden fd slots, through which a guest call names exactly
the file the Sentry checked.

A call the kernel must run in the guest's own context names its file by a
number of the guest's fd table, and another thread of a process that shares
that table can dup2 another file over the number between the Sentry's check
(on its pidfd_getfd copy) and the kernel's use.  A hidden slot closes that
gap: the Sentry hands its copy into one of its hidden fd numbers
(platform/handover.py: atomically; no guest call can name, close or dup2
onto a hidden number), and the call is rewritten to name the slot.  Between
uses a slot holds the inert filler (O_PATH /dev/null), one of which always
stays free to refill the others from.

Two users: record locks (syscalls/locks.py), whose slot stays with its file
while the process holds locks on it, and the socket calls that change a
socket's state (connect, bind, and sendto/sendmsg with MSG_FASTOPEN, which
connect as they send: syscalls/socket.py), whose slot is given back
as soon as the call returns (`through`).  Both record a slot in use in the
process's "lock_inflight" registry, so neither takes the other's.
"""
import errno
import struct

from sentry.errors import SyscallError
from sentry.kernel.syscall import Handover, Inject, PASS, Rewrite
from sentry.kernel.hiddenslots import a_filler, hidden_slots, holds_socket, slot  # noqa: F401 (locks.py)
from sentry.vfs.mount import is_hidden_fd

SYS_DUP3, SYS_NANOSLEEP = 292, 35
ERESTARTSYS = 512
WAIT_MIN, WAIT_MAX = 1_000_000, 32_000_000    # ns a waiter sleeps before it tries again


def calls(proc, name, kernel, but=None):
    """{tid: (slot, key)} of the process's calls running through a slot
    (name "lock_inflight"), or of its slots being closed (name
    "lock_closing"); a task gone is forgotten, as is `but`."""
    got = getattr(proc, name, None)
    if got is None:
        got = {}
        setattr(proc, name, got)
    for tid in [t for t in got if t not in kernel.tasks or t == but]:
        del got[tid]
    return got


def wait_and_retry(call):
    """The guest sleeps a while, then its call runs again (it traps again).
    A signal that interrupts the sleep interrupts the call: ERESTARTSYS lets
    the kernel restart it or answer EINTR, as SA_RESTART says."""
    task = call.task
    delay = min(max(getattr(task, "lock_wait", 0) * 2, WAIT_MIN), WAIT_MAX)
    task.lock_wait = delay
    (ts,) = call.stage(struct.pack("<qq", 0, delay))

    def slept(result):
        if result == 0:
            return None
        task.lock_wait = 0
        return -ERESTARTSYS
    raise Inject(SYS_NANOSLEEP, (ts, 0), slept)


# ---- one call through a slot: connect, bind ----------------------------------------

def through(call, handle, direct=None):
    """Run handle(call, fd) -> outcome (an int, PASS, a Rewrite, or raises),
    where fd is the number the kernel must name the guest's socket by (arg
    0): the guest's own when nothing can change it meanwhile -- a process
    whose fd table is its alone, or a sandbox where no socket could turn
    harmful by it (no outbound connections: --network=none or host) --
    else a hidden slot holding the Sentry's copy of it, prepared first (the
    call then traps again).  handle borrows the socket through that same
    number, so what it checks is what the kernel acts on.  The slot gets
    its filler back once the call has returned.  direct(call), before a
    slot is prepared: the call's answer where it needs no call of the
    kernel's on the socket (decided on the Sentry's copy), else None."""
    task, key = call.task, (call.nr, call.raw)
    prepared = getattr(task, "sock_slot", None)
    if prepared is not None and (prepared[0] != key or getattr(task, "sock_slot_renew", False)):
        # left by a call a signal ended, or the call put another socket at the
        # guest's number (net/connect.py: an outbound socket): refilled first
        task.sock_answer, task.sock_slot_renew = None, False
        _give_back(call, prepared[1], None)
        prepared = None                           # (no filler left to refill it from)
    if prepared is None or prepared[0] != key:
        if call.kernel.outbound is None or call.process.alone():
            return handle(call, call.fd(0))
        out = direct(call) if direct is not None else None
        if out is not None:
            return out
        _prepare(call, key)
    h = prepared[1]
    pending = getattr(task, "sock_answer", None)
    if pending is not None:
        task.sock_answer = None
        return _give_back(call, h, pending)
    try:
        out = handle(call, h)
    except SyscallError as e:
        return _give_back(call, h, -e.errno)
    except Inject as inj:
        inj.then = _answer_later(task, inj.then)
        raise
    if out is PASS:
        out = Rewrite()
    if isinstance(out, Rewrite):
        return _rewrite(call, h, out)
    return _give_back(call, h, out)


def _prepare(call, key):
    kernel, proc, task, fd = call.kernel, call.process, call.task, call.fd(0)
    if fd < 0 or is_hidden_fd(fd):
        raise SyscallError(errno.EBADF)
    busy = calls(proc, "lock_inflight", kernel, but=task.tid)
    taken = {h for h, _ in list(busy.values()) + list(calls(proc, "lock_closing", kernel).values())}
    fillers, left = [], []
    for h in hidden_slots(kernel):
        state = slot(task.tid, h) if h not in taken else None
        if state is not None and state[0] is None:
            fillers.append(h)
        elif state is not None and holds_socket(task.tid, h):
            left.append(h)                        # by a call whose thread died first: replaced
    candidates = left + fillers[1:]               # one filler stays, to refill slots from
    if not candidates:
        wait_and_retry(call)                      # others' calls return theirs soon
    task.lock_wait = 0
    h = candidates[0]
    dup = kernel.borrow_fd(proc, fd)
    busy[task.tid] = (h, ("socket", fd))
    task.sock_slot_renew = False

    def copied(result):
        if result != h:
            calls(proc, "lock_inflight", kernel).pop(task.tid, None)
            return result if result < 0 else -errno.EBADF
        task.sock_slot = (key, h)
        return None
    raise Handover(dup, copied, at=h)


def _answer_later(task, then):
    """An injected step's callback whose value would end the call: the call
    runs once more instead, to give its slot back and answer that value.
    A restart code (a signal) ends it at once, as the kernel must see it
    there; that slot is given back at the thread's next call."""
    def wrapped(result):
        out = then(result)
        if out is None or -out in (errno.EINTR, 512, 513, 514, 516):
            return out
        task.sock_answer = out
        return None
    return wrapped


def _rewrite(call, h, rw):
    kernel = call.kernel
    rw.args[0] = h
    rw.restore = True            # a restarted call names the guest's fd, and prepares again
    inner = rw.on_exit

    def done(t, result):
        out = inner(t, result) if inner is not None else None
        if _refill_after(kernel, t, h, result if out is None else out):
            return None                      # the injected refill returns it
        return out
    rw.on_exit = done
    return rw


def _release(kernel, task):
    task.sock_slot = None
    calls(task.process, "lock_inflight", kernel).pop(task.tid, None)


def _refill_after(kernel, task, h, result):
    """From an exit stop: the filler back into slot h, then the call
    returns result; False where no filler is left to refill from."""
    _release(kernel, task)
    filler = a_filler(task.tid, kernel, h)
    if filler is None:
        return False
    task.lock_refill = (filler, h)
    kernel.inject_after(task, SYS_DUP3, (filler, h, 0), result)
    return True


def _give_back(call, h, result):
    """At a seccomp stop: the filler back into slot h, then the call
    returns result (None: it runs again).  Returns result itself where no
    filler is left to refill from (the slot keeps its copy until then)."""
    kernel, task = call.kernel, call.task
    _release(kernel, task)
    filler = a_filler(task.tid, kernel, h)
    if filler is None:
        return result
    task.lock_refill = (filler, h)
    raise Inject(SYS_DUP3, (filler, h, 0), lambda r: result)
