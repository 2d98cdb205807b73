"""File locks: flock(2), fcntl's record and OFD locks, leases.

Every lock request traps (none runs in BPF), and is decided on the Sentry's
pidfd_getfd copy of the guest's fd -- the open file itself, which a racing
thread cannot swap as it can the fd number:

- a file of one of the sandbox's writable mounts gets the host kernel's own
  locks (other processes and sandboxes see them, as they see the file).  A
  process whose fd table is its alone (one thread, no CLONE_FILES) makes the
  call itself, unchanged: nothing can change what its fd number names while
  it is stopped.  Otherwise flock and OFD locks, which belong to the open
  file description, are taken by the Sentry on its copy (the same
  description); record locks and leases, which belong to the process, are
  taken by the guest through the Sentry's copy of its fd, handed into one of
  the Sentry's hidden fd slots (platform/handover.py: atomically, so no
  racing thread can put another file there), where no guest call reaches;
- any other file -- the default root's read-only lower layer (the host's own
  inode), a host file handed over, a pipe -- gets the sandbox's own locks
  (sentry/kernel/locktable.py): the host's lockers never see them.  Leases
  on such a file are refused (EAGAIN, as when a conflicting open exists).

A request that must wait (LOCK_EX without LOCK_NB, F_SETLKW, F_OFD_SETLKW)
for a lock the Sentry keeps or takes is never waited for by the Sentry: the
guest sleeps in its own context (an injected nanosleep, 1 to 32 ms) and its
call runs again; a signal meanwhile interrupts it as on Linux (EINTR, or a
restart under SA_RESTART).
"""
import errno
import fcntl
import os
import struct

from sentry._native import lib
from sentry.kernel.locktable import OFFSET_MAX, RD, UN, WR, LockTable, Owner
from sentry.vfs.mount import is_hidden_fd, split_deleted
from sentry.kernel.syscall import Handover, Inject, PASS, Rewrite, sint
from sentry.errors import SyscallError
from syscalls.fdutil import Borrowed
from syscalls.slots import wait_and_retry as _wait_and_retry, a_filler as _a_filler, calls as _calls, hidden_slots as _hidden_slots, slot as _slot
from syscalls.registry import handler

F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
F_SETLEASE = 1024
LOCK_CMDS = {F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_SETLEASE}
OFD_CMDS = {F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW}
WAITING_CMDS = {F_SETLKW, F_OFD_SETLKW}
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN, LOCK_MAND = 1, 2, 4, 8, 32
FLOCK_TYPES = {LOCK_SH: RD, LOCK_EX: WR, LOCK_UN: UN}
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
FLOCK = struct.Struct("<hh4xqqi4x")           # struct flock
PID_AT = 24                                   # its l_pid
SYS_DUP3 = 292
O_PATH = 0o10000000
GC_MIN = 256                                  # descriptions held before every inode is pruned


def _table(kernel):
    t = getattr(kernel, "locks", None)
    if t is None:
        t = kernel.locks = LockTable()
        t.gc_at = GC_MIN
    return t


def _readable(flags):
    return flags & os.O_ACCMODE in (os.O_RDONLY, os.O_RDWR)


def _writable(flags):
    return flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


def _shared(call):
    """Whether another task may change the caller's fd table meanwhile."""
    return not call.process.alone()


def _own_writable_file(call, fd):
    """Whether fd names a file of a writable mount -- read by its number,
    which only a caller whose fd table is its alone may trust (nothing can
    change it while the caller is stopped): one readlink, no copy."""
    host = split_deleted(call.host_fd_path(fd))[0]
    backing = call.mounts.backing_of(host) if host.startswith("/") else None
    return backing is not None and not backing.readonly


def _key(b):
    st = os.fstat(b.fd)
    return st.st_dev, st.st_ino


# ---- waiting: in the guest's own context ----------------------------------------

def _done(call, result=0):
    call.task.lock_wait = 0
    return result


# ---- the sandbox's own locks ----------------------------------------------------------

def _same_file(pid1, fd1, pid2, fd2):
    return lib.sn_kcmp_file(pid1, pid2, fd1, fd2) == 0


def _release(owner):
    os.close(owner.dup)


def _fds_on(pid, key):
    """The fd numbers of process pid on the file key."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return
    for name in names:
        try:
            st = os.stat(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == key:
            yield int(name)


def _alive(kernel, key):
    """Whether an owner of locks on key still is: a live process with an fd
    on the file, a description some guest fd still refers to."""
    me = os.getpid()

    def alive(owner):
        if owner.tgid is not None:
            return owner.tgid in kernel.processes and next(_fds_on(owner.tgid, key), None) is not None
        return any(_same_file(me, owner.dup, pid, fd)
                   for pid in list(kernel.processes) for fd in _fds_on(pid, key))
    return alive


def _ofd_owner(call, key, b):
    """The owner that is b's open file description (kcmp against the copies
    the table holds), or a new one holding b's copy."""
    t = _table(call.kernel)
    me = os.getpid()
    for owner in t.ofd_owners(key):
        if _same_file(me, owner.dup, me, b.fd):
            return owner
    return Owner(dup=b.detach())


def _collect(call):
    """Bound the copies the table holds: prune every inode once they grow."""
    t = _table(call.kernel)
    held = t.all_ofd_owners()
    if len(held) > t.gc_at:
        for key in list(t.inodes):
            t.prune(key, _alive(call.kernel, key), _release)
        t.gc_at = max(GC_MIN, 2 * len(t.all_ofd_owners()))


def _try(call, key, owner, attempt):
    """attempt(inode) -> success; on failure the owners found gone are
    dropped and it is tried once more."""
    t = _table(call.kernel)
    ok = attempt(t.inode(key))
    if not ok:
        t.prune(key, _alive(call.kernel, key), _release)
        ok = attempt(t.inode(key))
    t.settle(key, owner, _release)
    return ok


def _emulated_flock(call, b, kind, nonblocking):
    key = _key(b)
    owner = _ofd_owner(call, key, b)
    if _try(call, key, owner, lambda node: node.flock(owner, kind)):
        _collect(call)
        return _done(call)
    if nonblocking:
        raise SyscallError(errno.EWOULDBLOCK)
    _wait_and_retry(call)


def _span(b, whence, start, length):
    """[start, end] of a struct flock, as flock64_to_posix_lock computes it."""
    if whence == SEEK_SET:
        base = 0
    elif whence == SEEK_CUR:
        try:
            base = os.lseek(b.fd, 0, os.SEEK_CUR)     # the same description: the same offset
        except OSError:
            base = 0
    elif whence == SEEK_END:
        base = os.fstat(b.fd).st_size
    else:
        raise SyscallError(errno.EINVAL)
    start += base
    if start < 0 or start > OFFSET_MAX:
        raise SyscallError(errno.EINVAL)
    if length > 0:
        if length - 1 > OFFSET_MAX - start:
            raise SyscallError(errno.EOVERFLOW)
        return start, start + length - 1
    if length < 0:
        if start + length < 0:
            raise SyscallError(errno.EINVAL)
        return start + length, start - 1
    return start, OFFSET_MAX


def _emulated_record(call, cmd, b, raw):
    ltype, whence, lstart, llen, lpid = FLOCK.unpack(raw)
    getlk = cmd in (F_GETLK, F_OFD_GETLK)
    if getlk and ltype not in (RD, WR):
        raise SyscallError(errno.EINVAL)
    start, end = _span(b, whence, lstart, llen)
    if ltype not in (RD, WR, UN):
        raise SyscallError(errno.EINVAL)
    if not getlk and ((ltype == RD and not _readable(b.flags)) or (ltype == WR and not _writable(b.flags))):
        raise SyscallError(errno.EBADF)
    if cmd in OFD_CMDS and lpid != 0:
        raise SyscallError(errno.EINVAL)
    t, key = _table(call.kernel), _key(b)
    owner = _ofd_owner(call, key, b) if cmd in OFD_CMDS else t.process_owner(call.process.tgid)
    if getlk:
        found = [None]

        def test(node):
            found[0] = node.conflict(owner, ltype, start, end)
            return found[0] is None
        _try(call, key, owner, test)
        c = found[0]
        if c is None:
            out = FLOCK.pack(UN, whence, lstart, llen, lpid)
        else:
            pid = call.kernel.vpid(c.owner.tgid) if c.owner.tgid is not None else -1
            out = FLOCK.pack(c.type, SEEK_SET, c.start, 0 if c.end == OFFSET_MAX else c.end - c.start + 1, pid)
        call.write(call.args[2], out)
        return _done(call)
    if _try(call, key, owner, lambda node: node.setlk(owner, ltype, start, end) is None):
        _collect(call)
        return _done(call)
    if cmd not in WAITING_CMDS:
        raise SyscallError(errno.EAGAIN)
    _wait_and_retry(call)


# ---- the kernel's own locks, never through a number a racing thread swaps ----------------

def _getlk_translated(call):
    """F_GETLK/F_OFD_GETLK run by the guest: the holder's pid is the host's."""
    kernel, addr = call.kernel, call.args[2]

    def done(task, result):
        if result == 0:
            try:
                raw = call.read(addr, FLOCK.size)
                ltype, pid = struct.unpack_from("<h", raw)[0], struct.unpack_from("<i", raw, PID_AT)[0]
                if ltype != UN and pid > 0:        # -1: an OFD lock's
                    call.write(addr + PID_AT, struct.pack("<i", kernel.vpid(pid)))
            except SyscallError:
                pass
        return result
    return Rewrite(on_exit=done)


def _by_the_sentry(call, cmd, b, raw, nonblocking):
    """flock/OFD locks of a shared fd table: the Sentry's copy is the very
    open file description they belong to."""
    try:
        if cmd is None:
            fcntl.flock(b.fd, raw | (0 if raw & LOCK_UN else LOCK_NB))
        elif cmd == F_OFD_GETLK:
            out = bytearray(fcntl.fcntl(b.fd, F_OFD_GETLK, raw))
            ltype, pid = struct.unpack_from("<h", out)[0], struct.unpack_from("<i", out, PID_AT)[0]
            if ltype != UN and pid > 0:
                struct.pack_into("<i", out, PID_AT, call.kernel.vpid(pid))
            call.write(call.args[2], bytes(out))
        else:
            fcntl.fcntl(b.fd, F_OFD_SETLK, raw)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES) or nonblocking:
            raise SyscallError(e.errno)
        _wait_and_retry(call)
    return _done(call)


def _holds_record_locks(tgid, key):
    """Whether process tgid holds POSIX locks on inode key (/proc/locks; by
    inode number only, which errs on the side of "yes")."""
    try:
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "POSIX" and parts[4] == str(tgid) \
                        and parts[5].rsplit(":", 1)[-1] == str(key[1]):
                    return True
    except OSError:
        return True
    return False


def _may_close(proc, kernel, key, but=None):
    """Whether a slot holding a copy of a fd on `key` may be closed (or
    replaced): closing any fd of a file drops the process's record locks on
    it, so only while it holds none and no call of its is taking one."""
    busy = _calls(proc, "lock_inflight", kernel, but)
    closing = _calls(proc, "lock_closing", kernel)
    return all(k != key for _, k in list(busy.values()) + list(closing.values())) \
        and not _holds_record_locks(proc.tgid, key)


def _through_slot(call, cmd, b, key, want):
    """Record locks and leases of a shared fd table: the guest makes the
    call through a hidden slot that holds a copy of its fd (the Sentry's
    own, handed over; the call then traps again and finds it there).  A slot
    stays with its file while the process holds record locks on it (closing
    it would drop them); then it is the filler again."""
    kernel, proc, tid = call.kernel, call.process, call.tid
    busy = _calls(proc, "lock_inflight", kernel, but=tid)
    closing = _calls(proc, "lock_closing", kernel)
    taken = {h for h, _ in list(busy.values()) + list(closing.values())}
    same, free, fillers = None, [], []
    for h in _hidden_slots(kernel):
        state = _slot(tid, h)
        if state is None or h in taken:
            continue
        k, flags = state
        if k is None:
            fillers.append(h)
        elif cmd != F_SETLEASE and k == key and (want != RD or _readable(flags)) and (want != WR or _writable(flags)):
            same = h
        elif _may_close(proc, kernel, k, but=tid):
            free.append((h, k))
    if same is not None:
        return _rewrite_to_slot(call, same, key)
    candidates = free + [(h, None) for h in fillers[1:]]   # one filler stays, to refill slots from
    if not candidates:
        raise SyscallError(errno.ENOLCK)
    h, old = candidates[0]
    fd, arg, task = call.fd(0), call.args[2], call.task
    if old is not None:
        closing[tid] = (h, old)
    # the slot is this call's from now, not only once it runs again: another
    # thread must neither take it as its "same" slot nor give it back its
    # filler between the handover and this call's return (it sent EBADF)
    busy[tid] = (h, key)

    def copied(result):
        closing.pop(task.tid, None)
        task.lock_slot = (fd, cmd, arg, h if result == h else None)
    raise Handover(os.dup(b.fd), copied, at=h)


def _rewrite_to_slot(call, h, key):
    kernel, proc = call.kernel, call.process
    closing = _calls(proc, "lock_closing", kernel)
    if any(k == key for _, k in closing.values()):
        _wait_and_retry(call)               # a slot of that file is being closed: its locks would go
    busy = _calls(proc, "lock_inflight", kernel)
    busy[call.tid] = (h, key)

    def done(task, result):
        _calls(proc, "lock_inflight", kernel).pop(task.tid, None)
        if not _may_close(proc, kernel, key):
            return None
        filler = _a_filler(task.tid, kernel, h)
        if filler is not None:
            # the filler back into the slot; run from the syscall
            # instruction, this dup3 traps as any onto a hidden fd would:
            # syscalls/file.py lets it through
            closing[task.tid] = (h, key)
            task.lock_refill = (filler, h)
            kernel.inject_after(task, SYS_DUP3, (filler, h, 0), result,
                                lambda r: closing.pop(task.tid, None))
        return None
    # restore: a call the kernel restarts (F_SETLKW interrupted, a ptrace
    # stop) runs again with the guest's own fd, never the slot's number
    return Rewrite(args={0: h}, on_exit=_done_then(call, done), restore=True)


def _done_then(call, done):
    def after(task, result):
        if result >= 0:
            task.lock_wait = 0
        return done(task, result)
    return after


def _refill_and_retry(call, h):
    """A slot that turned out to hold a file the sandbox keeps locks for (a
    racing thread swapped the fd before the copy): the filler goes back in
    and the call runs again from the start."""
    filler = _a_filler(call.tid, call.kernel, h)
    if filler is None:
        raise SyscallError(errno.ENOLCK)
    raise Inject(SYS_DUP3, (filler, h, 0), lambda result: None)


# ---- the calls --------------------------------------------------------------------

@handler("flock", note="on files of the sandbox's writable mounts the kernel's locks; on others (the "
         "default root's lower layer, host files handed over, pipes) the sandbox's own, never the host "
         "inode's (sentry/kernel/locktable.py)")
def sys_flock(call):
    cmd = call.args[1]
    if cmd & LOCK_MAND:
        return 0                            # ignored, as Linux does since 5.15
    kind = FLOCK_TYPES.get(cmd & ~LOCK_NB)
    if kind is None:
        raise SyscallError(errno.EINVAL)
    fd = call.args[0]                       # an unsigned int
    if fd >= 1 << 31 or is_hidden_fd(fd):
        raise SyscallError(errno.EBADF)     # the Sentry's fds look closed
    if not _shared(call) and _own_writable_file(call, fd):
        return PASS                         # the kernel's lock, as natively
    with Borrowed(call, fd) as b:
        if b.flags & O_PATH or (kind != UN and b.flags & os.O_ACCMODE == os.O_ACCMODE):
            raise SyscallError(errno.EBADF)
        if b.in_writable_mount:
            if not _shared(call):
                return PASS
            return _by_the_sentry(call, None, b, cmd, cmd & LOCK_NB)
        return _emulated_flock(call, b, kind, cmd & LOCK_NB)


def fcntl_lock(call, cmd):
    """fcntl's lock commands (syscalls/file.py hands them over)."""
    task = call.task
    prepared, task.lock_slot = getattr(task, "lock_slot", None), None
    fd = call.fd(0)
    slot = None
    if prepared is not None and prepared[:3] == (fd, cmd, call.args[2]):
        slot = prepared[3]
    if slot is not None:
        state, own = _slot(call.tid, slot), _slot(call.tid, fd)
        if state is None or state[0] is None or own is None or state[0] != own[0]:
            # the copy handed into the slot is not there (another thread's
            # call gave the slot back its filler meanwhile) or no longer of
            # the guest's file: start over from the guest's own fd
            slot = None
    if slot is None and not _shared(call) and _own_writable_file(call, fd):
        # the kernel's lock, as natively
        return _getlk_translated(call) if cmd in (F_GETLK, F_OFD_GETLK) else PASS
    with Borrowed(call, slot if slot is not None else fd, hidden_ok=slot is not None) as b:
        if b.flags & O_PATH:
            raise SyscallError(errno.EBADF)
        if slot is not None and not b.in_writable_mount:
            _refill_and_retry(call, slot)
        if cmd == F_SETLEASE:
            return _lease(call, b, slot)
        raw = call.read(call.args[2], FLOCK.size)
        if not b.in_writable_mount:
            return _emulated_record(call, cmd, b, raw)
        if slot is not None:
            return _rewrite_to_slot(call, slot, _key(b))
        if not _shared(call):               # (it became writable meanwhile? a rename)
            return _getlk_translated(call) if cmd in (F_GETLK, F_OFD_GETLK) else PASS
        if cmd in OFD_CMDS:
            return _by_the_sentry(call, cmd, b, raw, cmd != F_OFD_SETLKW)
        if cmd == F_GETLK:
            # a lock test changes nothing: at worst a racing thread has it
            # test another file it holds, whose holder shows as pid 0
            return _getlk_translated(call)
        ltype = struct.unpack_from("<h", raw)[0]
        if (ltype == RD and not _readable(b.flags)) or (ltype == WR and not _writable(b.flags)):
            raise SyscallError(errno.EBADF)      # the guest's own fd decides, not the slot's copy
        return _through_slot(call, cmd, b, _key(b), ltype)


def _lease(call, b, slot):
    kind = sint(call.args[2])
    if not b.in_writable_mount:
        if kind in (RD, WR, UN):
            raise SyscallError(errno.EAGAIN)     # as for a file open elsewhere; no lease to remove
        raise SyscallError(errno.EINVAL)
    if slot is not None:
        return _rewrite_to_slot(call, slot, _key(b))
    if not _shared(call):
        return PASS
    return _through_slot(call, F_SETLEASE, b, _key(b), None)
