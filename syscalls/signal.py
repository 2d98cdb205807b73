"""The kill family: a guest signals sandbox processes only, never the host.

Targets are virtual pids, translated to the host's; one outside the sandbox
is ESRCH, as if it did not exist.  kill(-1), kill(0) and kill(-pgrp) are
carried out by the Sentry itself on the sandbox's own processes, because the
host kernel's notion of "every process I may signal" or "my process group"
can include host processes (the guest may share the Sentry's group).

The sandbox's init is protected as in a PID namespace: a signal from inside
the sandbox that init has no handler for is dropped, SIGKILL and SIGSTOP
included (pid_namespaces(7)); so is the init of a PID namespace a guest
made, but for SIGKILL and SIGSTOP from outside its namespace.
"""
import errno
import os
import struct
import time

from sentry._native import ffi, lib
from sentry.kernel import fdtraps
from sentry.platform import ptrace, staging

from sentry.kernel.syscall import PASS, Rewrite
from syscalls.clock import host_clockid
from sentry.errors import SyscallError
from sentry.host import fdinfo
from syscalls.registry import handler

NSIG = 65
PROXIED_MAX = 1024

SIGKILL, SIGSTOP = 9, 19


def _check_sig(sig):
    if sig < 0 or sig >= NSIG:
        raise SyscallError(errno.EINVAL)


def _init_ignores(call, host, sig):
    """Whether process `host`, the init of a PID namespace (the sandbox's
    or one below), drops `sig` from the caller: a signal it has no handler
    for (and does not block) is dropped, but for SIGKILL and SIGSTOP from a
    process outside its namespace, as the kernel forces those from an
    ancestor namespace."""
    proc = call.kernel.processes.get(host)
    if proc is None or proc.pidns is None or proc.pidns.init != host or sig == 0:
        return False
    if sig in (SIGKILL, SIGSTOP) and not call.process.pidns.below(proc.pidns):
        return False
    masks = _signal_masks(host)
    if masks is None:
        return False
    bit = 1 << (sig - 1)
    # a blocked signal is queued, whatever the handler (it may be waited for)
    return not (masks["SigBlk"] | masks["SigCgt"]) & bit


def _any_thread(call, vid):
    """(host tid, host tgid) for kill(2) and rt_sigqueueinfo(2), which take
    any thread's id, as Linux does, and signal its whole process."""
    host = call.kernel.host_id(vid, task=True)
    task = call.kernel.tasks.get(host)
    return host, (task.process.tgid if task is not None else host)


def _signal_masks(tid):
    """The signal masks of /proc/<tid>/status (SigPnd, ShdPnd, SigBlk,
    SigIgn, SigCgt) as ints; None when the task is gone."""
    masks = {}
    try:
        with open(f"/proc/{tid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"):
                    masks[key] = int(value, 16)
    except (OSError, ValueError):
        return None
    return masks if len(masks) == 5 else None


CAP_KILL, SIGCONT = 5, 18


def _may_signal(call, host, sig):
    """check_kill_permission on emulated ids (the host's sees one uid for
    every guest): the sender's real or effective uid is the target's real or
    saved one, or it holds CAP_KILL, or it sends SIGCONT within its session
    (EPERM).  `host`: any task of the target."""
    kernel = call.kernel
    task = kernel.tasks.get(host)
    target = task.creds if task is not None and task.creds is not None else kernel.creds_of(host)
    me = call.task.creds
    if target is None or me is None or task is call.task:
        return
    if {me.euid, me.ruid} & {target.suid, target.ruid} or me.capable(CAP_KILL):
        return
    try:
        if sig == SIGCONT and os.getsid(call.process.tgid) == os.getsid(host):
            return
    except OSError:
        pass
    raise SyscallError(errno.EPERM)


def _signal_each(call, sig, wanted, none_is_esrch=True):
    """Signal every sandbox process wanted(host tgid) picks; ESRCH if none
    (as for a process group), EPERM if it may signal none of them."""
    kernel = call.kernel
    sender = (call.process.tgid, call.process.vpid, call.task.creds.ruid)
    if len(kernel.proxied) > PROXIED_MAX:
        kernel.proxied.clear()
    sent = refused = 0
    for host in list(kernel.processes):
        try:
            if wanted(host):
                try:
                    _may_signal(call, host, sig)
                except SyscallError:
                    refused += 1
                    continue
                sent += 1
                if sig and not _init_ignores(call, host, sig):
                    kernel.proxied[(host, sig)] = sender   # for its siginfo (sentry/kernel/siginfo.py)
                    os.kill(host, sig)
        except ProcessLookupError:
            pass                               # gone meanwhile
    if not sent and refused:
        raise SyscallError(errno.EPERM)
    if not sent and none_is_esrch:
        raise SyscallError(errno.ESRCH)
    return 0


def pgid_or_none(host):
    """A host process's process group, or None once it is gone."""
    try:
        return os.getpgid(host)
    except OSError:
        return None


@handler("kill", note="pids are virtual; kill(-1), kill(0), kill(-pgrp) reach sandbox processes only")
def sys_kill(call):
    pid, sig = call.args[0], call.args[1]
    _check_sig(sig)
    kernel = call.kernel
    if pid > 0:
        host, tgid = _any_thread(call, pid)
        _may_signal(call, host, sig)
        if _init_ignores(call, tgid, sig):
            return 0
        return Rewrite(args={0: host}, restore=True)
    if pid == -1:
        # every process of the caller's PID namespace but itself and the
        # namespace's init
        ns = call.process.pidns
        skip = (ns.init, call.process.tgid)

        def in_namespace(host):
            proc = kernel.processes.get(host)
            return host not in skip and proc is not None and proc.pidns.below(ns)
        return _signal_each(call, sig, in_namespace, none_is_esrch=False)
    if pid == 0:
        pgid = os.getpgid(call.process.tgid)
    elif pid == -0x80000000:
        raise SyscallError(errno.ESRCH)
    else:
        pgid = kernel.host_id(-pid, group=True)
    return _signal_each(call, sig, lambda host: pgid_or_none(host) == pgid)


@handler("tkill")
def sys_tkill(call):
    tid, sig = call.args[0], call.args[1]
    _check_sig(sig)
    if tid <= 0:
        raise SyscallError(errno.EINVAL)
    host = call.kernel.host_id(tid, task=True)
    _may_signal(call, host, sig)
    task = call.kernel.tasks.get(host)
    if task is not None and _init_ignores(call, task.process.tgid, sig):
        return 0
    return Rewrite(args={0: host}, restore=True)


@handler("tgkill")
def sys_tgkill(call):
    tgid, tid, sig = call.args[0], call.args[1], call.args[2]
    _check_sig(sig)
    if tgid <= 0 or tid <= 0:
        raise SyscallError(errno.EINVAL)
    host_tgid = call.kernel.host_id(tgid)
    host_tid = call.kernel.host_id(tid, task=True)
    _may_signal(call, host_tid, sig)
    if _init_ignores(call, host_tgid, sig):
        return 0
    return Rewrite(args={0: host_tgid, 1: host_tid}, restore=True)


def _staged_siginfo(call, i):
    """The guest's own siginfo, with a sender it names by virtual pid given
    the host's, so that the translation at delivery gives it back."""
    from sentry.kernel import siginfo
    raw = call.read(call.args[i], siginfo.SIZE)
    return call.stage(siginfo.to_host(call.kernel, raw))[0]


@handler("rt_sigqueueinfo")
def sys_rt_sigqueueinfo(call):
    sig = call.args[1]
    _check_sig(sig)
    host, tgid = _any_thread(call, call.args[0])
    _may_signal(call, host, sig)
    if _init_ignores(call, tgid, sig):
        return 0
    return Rewrite(args={0: host, 2: _staged_siginfo(call, 2)}, restore=True)


@handler("rt_tgsigqueueinfo")
def sys_rt_tgsigqueueinfo(call):
    sig = call.args[2]
    _check_sig(sig)
    host_tgid = call.kernel.host_id(call.args[0])
    host_tid = call.kernel.host_id(call.args[1], task=True)
    _may_signal(call, host_tid, sig)
    if _init_ignores(call, host_tgid, sig):
        return 0
    return Rewrite(args={0: host_tgid, 1: host_tid, 3: _staged_siginfo(call, 3)}, restore=True)


# Signals whose default action is to ignore them (sig_kernel_ignore)
DEFAULT_IGNORED = {17, 18, 23, 28}       # SIGCHLD, SIGCONT, SIGURG, SIGWINCH
ERESTARTNOHAND = 514


def _only_ignored_pending(tid, waited):
    """Whether every signal that can interrupt `tid` (pending, unblocked, not
    waited for) is one it ignores.  Linux drops those when they are sent; a
    traced task gets them queued, so its sigtimedwait wakes with EINTR."""
    masks = _signal_masks(tid)
    if masks is None:
        return False
    pending = (masks["SigPnd"] | masks["ShdPnd"]) & ~masks["SigBlk"] & ~waited
    if not pending:
        return False
    default_ignored = sum(1 << (n - 1) for n in DEFAULT_IGNORED) & ~masks["SigCgt"]
    return not pending & ~(masks["SigIgn"] | default_ignored)


@handler("rt_sigtimedwait", note="the siginfo it fills names the sender by virtual pid; "
         "signals the guest ignores do not interrupt it (they would under ptrace)")
def sys_rt_sigtimedwait(call):
    info, timeout = call.args[1], call.args[2]
    kernel, task = call.kernel, call.task
    try:
        (waited,) = struct.unpack("<Q", call.read(call.args[0], 8))
        slot = call.slot()
    except SyscallError:
        return PASS                     # the kernel answers EFAULT itself
    # A call run again after an ignored signal waits only for what is left
    # of its timeout: its timespec is then a copy in the staging slot.
    again = task.sigwait if task.sigwait and timeout == task.sigwait[2] else None
    task.sigwait = None
    if again:
        deadline, guest_timeout = again[0], again[1]
    else:
        deadline, guest_timeout = None, timeout
        if timeout:
            try:
                sec, nsec = struct.unpack("<qq", call.read(timeout, 16))
                deadline = time.monotonic() + sec + nsec / 1e9
            except SyscallError:
                return PASS

    def done(t, result):
        regs = t.exit_regs
        if result == -errno.EINTR and _only_ignored_pending(t.tid, waited):
            # run it again once the ignored signal is gone: natively it never woke
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return -errno.EAGAIN
                (copy,) = staging.stage(t.tid, slot, struct.pack("<qq", int(left), int(left % 1 * 1e9)))
                regs.rdx = copy
                t.sigwait = (deadline, guest_timeout, copy)
            return -ERESTARTNOHAND
        if regs.rdx != guest_timeout:
            regs.rdx = guest_timeout        # the guest's register, as it left it
            ptrace.setregs(t.tid, regs)
        if result > 0 and info:
            from sentry.kernel import siginfo
            try:
                raw = call.read(info, siginfo.PID_OFFSET + 8)
                call.write(info, siginfo.translate(kernel, task, raw))
            except SyscallError:
                pass
        return result
    return Rewrite(on_exit=done)


SIGEV_THREAD_ID = 4
SIGEVENT_SIZE = 64


@handler("timer_create", note="a SIGEV_THREAD_ID target and a CPU-time clock's pid are virtual")
def sys_timer_create(call):
    args = {}
    clockid = call.args[0]
    host_clock = host_clockid(call, clockid)
    if host_clock != clockid:
        args[0] = host_clock
    sevp = call.args[1]
    if sevp:
        raw = bytearray(call.read(sevp, SIGEVENT_SIZE))
        notify, tid = struct.unpack_from("<ii", raw, 12)
        if notify == SIGEV_THREAD_ID:
            # the kernel reads the struct again: it gets the checked copy
            try:
                host = call.kernel.host_id(tid, task=True)
            except SyscallError:
                raise SyscallError(errno.EINVAL)          # as for a tid not of this process
            struct.pack_into("<i", raw, 16, host)
            args[1] = call.stage(bytes(raw))[0]
    return Rewrite(args=args, restore=True) if args else PASS


PIDFD_SIGNAL_THREAD, PIDFD_SIGNAL_THREAD_GROUP, PIDFD_SIGNAL_PROCESS_GROUP = 1, 2, 4
PIDFD_THREAD = os.O_EXCL                 # in a pidfd's flags: it names a thread
PIDFD_LINK = "anon_inode:[pidfd]"
SYS_KILL, SYS_RT_SIGQUEUEINFO, SYS_TGKILL, SYS_RT_TGSIGQUEUEINFO = 62, 129, 234, 297
SI_TKILL = -6


def _checked(r):
    """The result of a call of the Sentry's own (native/host.c: no os
    function takes a siginfo), or its errno raised."""
    if r < 0:
        raise SyscallError(-r)
    return r


def _pidfd_target(dup):
    """(host id, names a thread) of the process or thread the pidfd `dup`
    (the Sentry's copy) names; EBADF for another kind of fd, ESRCH for a
    process already reaped (Pid: -1)."""
    if os.readlink(f"/proc/self/fd/{dup}") != PIDFD_LINK:
        raise SyscallError(errno.EBADF)
    info = fdinfo("self", dup)
    pid = int(info["Pid"]) if "Pid" in info else None
    flags = int(info["flags"], 8) if "flags" in info else None
    if pid is None or pid <= 0:
        raise SyscallError(errno.ESRCH)
    return pid, bool(flags and flags & PIDFD_THREAD)


@handler("pidfd_send_signal", note="the pidfd must name a sandbox process (ESRCH: one a host peer sent), "
         "checked and signalled on the Sentry's copy of the fd; PIDFD_SIGNAL_PROCESS_GROUP reaches sandbox "
         "processes only; the sandbox's init is protected as for kill(2); a siginfo's sender is virtual")
def sys_pidfd_send_signal(call):
    sig, flags = call.args[1], call.args[3]
    if flags & ~7 or flags & (flags - 1):
        raise SyscallError(errno.EINVAL)         # one scope at most, as Linux checks first
    fd = call.fd(0)
    proc_dir = _proc_dir_target(call, fd)
    _check_sig(sig)
    raw = None
    if call.args[2]:
        from sentry.kernel import siginfo
        raw = call.read(call.args[2], siginfo.SIZE)
        if struct.unpack_from("<i", raw)[0] != sig:
            raise SyscallError(errno.EINVAL)     # whatever the fd, as Linux checks it
    if proc_dir is not None:
        # a /proc/<pid> directory fd names its process too (the legacy
        # pidfd), but this /proc is the Sentry's: the same signal by pid
        _may_signal(call, proc_dir, sig)
        if _init_ignores(call, proc_dir, sig):
            return 0
        if call.args[3]:
            raise SyscallError(errno.EINVAL)
        if call.args[2]:
            return Rewrite(SYS_RT_SIGQUEUEINFO, {0: proc_dir, 1: sig, 2: _staged_siginfo(call, 2)},
                           restore=True)
        return Rewrite(SYS_KILL, {0: proc_dir, 1: sig}, restore=True)
    info = None
    if raw is not None:
        from sentry.kernel import siginfo
        info = siginfo.to_host(call.kernel, raw)
    kernel = call.kernel
    dup = kernel.borrow_fd(call.process, fd)
    try:
        host, thread = _pidfd_target(dup)
        # The copy names its process for good (a pid number may be reused,
        # the pidfd's process never), so the check holds for the signal sent
        # through the copy: a host process's pidfd -- from a host peer,
        # over SCM_RIGHTS -- is ESRCH, as if it did not exist.
        task = kernel.tasks.get(host)
        if task is not None and task.process is not None:
            tgid = task.process.tgid
        elif kernel.in_sandbox_host(host):
            tgid = host
        else:
            raise SyscallError(errno.ESRCH)
        if flags & PIDFD_SIGNAL_PROCESS_GROUP:
            # every process whose group is that process's pid: in the
            # sandbox only (the guest may share a host process group)
            return _signal_group_of(call, host, sig, info)
        _may_signal(call, host, sig)
        if _init_ignores(call, tgid, sig):
            return 0
        to_thread = flags & PIDFD_SIGNAL_THREAD or (thread and not flags & PIDFD_SIGNAL_THREAD_GROUP)
        if tgid == call.process.tgid:
            # its own process: by id, in its own context (exact siginfo
            # rules for oneself); the id cannot be reused while it runs
            tid = host if to_thread else None
            if info is not None:
                (addr,) = call.stage(info)
                return (Rewrite(SYS_RT_TGSIGQUEUEINFO, {0: tgid, 1: tid, 2: sig, 3: addr}, restore=True)
                        if tid else Rewrite(SYS_RT_SIGQUEUEINFO, {0: tgid, 1: sig, 2: addr}, restore=True))
            return (Rewrite(SYS_TGKILL, {0: tgid, 1: tid, 2: sig}, restore=True)
                    if tid else Rewrite(SYS_KILL, {0: tgid, 1: sig}, restore=True))
        if info is None and sig:
            kernel.proxied[(tgid, sig)] = (call.process.tgid, call.process.vpid,     # its siginfo's sender
                                           call.task.creds.ruid)
        return _checked(lib.sn_pidfd_send_signal(dup, sig, ffi.NULL if info is None else info, flags))
    except OSError as e:
        raise SyscallError(e.errno)
    finally:
        os.close(dup)


def _signal_group_of(call, host, sig, info):
    """PIDFD_SIGNAL_PROCESS_GROUP: the sandbox processes in group `host`."""
    if info is None:
        return _signal_each(call, sig, lambda h: pgid_or_none(h) == host)
    code = struct.unpack_from("<i", info, 8)[0]
    if host != call.process.tgid and (code >= 0 or code == SI_TKILL):
        raise SyscallError(errno.EPERM)      # only oneself may be sent a kernel-looking siginfo
    sent = 0
    for tgid in list(call.kernel.processes):
        if pgid_or_none(tgid) == host:
            sent += 1
            if not _init_ignores(call, tgid, sig):
                try:
                    _checked(lib.sn_rt_sigqueueinfo(tgid, sig, info))
                except SyscallError as e:
                    if e.errno != errno.ESRCH:
                        raise
    if not sent:
        raise SyscallError(errno.ESRCH)
    return 0


def _proc_dir_target(call, fd):
    """Host pid of the process a guest's fd on a /proc/<pid> directory names."""
    spath = call.mounts.sandbox_path(call.host_fd_path(fd))
    if spath is None or not spath.startswith("/proc/"):
        return None
    vpid = spath[len("/proc/"):]
    if not vpid.isdigit():
        return None
    proc = call.kernel.process_of(int(vpid))
    return proc.tgid if proc is not None else None


# ---- signalfd: its records name senders too ------------------------------

@handler("signalfd", "signalfd4", note="reads of the new fd and of its copies are trapped "
         "(sentry/kernel/fdtraps.py) so that ssi_pid/ssi_uid are virtual")
def sys_signalfd(call):
    if call.fd(0) != -1:
        return PASS                      # changes the mask of an fd already trapped
    return fdtraps.trap_result(call, fdtraps.SIGNALFD_TRAPS)


@handler("read", note="allowed in BPF; trapped only on fds a process filter names (signalfd)")
def sys_read(call):
    fd, buf = call.fd(0), call.args[1]
    if call.host_fd_path(fd) != fdtraps.SIGNALFD_LINK:
        return PASS                      # the number was reused
    kernel, task = call.kernel, call.task

    def done(t, result):
        if result > 0:
            from sentry.kernel import siginfo
            try:
                call.write(buf, siginfo.translate_signalfd(kernel, task, call.read(buf, result)))
            except SyscallError:
                pass
        return result
    return Rewrite(on_exit=done)
