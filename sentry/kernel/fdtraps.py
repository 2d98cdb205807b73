"""Traps on one fd number of one process, for reads the Sentry must see.

The Sentry's filter is the same for every guest: it cannot tell a signalfd
from a pipe, and trapping every read would cost every program.  When a guest
makes an fd whose reads carry host ids (a signalfd: ssi_pid), the Sentry has
it load one more seccomp filter of its own (it stacks, as a guest's filters
do; TSYNC gives it to every thread): RET_TRACE for those calls on that fd
number, ALLOW for the rest.  The handler of the trapped call then checks what
the fd is now (the number may have been reused) and translates the result.

A copy of the fd under another number (dup, dup2, dup3, F_DUPFD) is trapped
too: those calls on a trapped fd trap, and the copy gets the same filter.

If the filter cannot be installed (the guest's own filter, or its OCI
profile, denies seccomp(2); a thread with a filter of its own makes TSYNC
fail), the process is killed: its reads would show host ids.

Known limit: an fd sent to another process (SCM_RIGHTS) is read untrapped
there.
"""
import errno
import logging
import os
import socket
import struct

from sentry.errors import SyscallError
from sentry.platform import ptrace
from sentry.kernel.syscall import PASS, Rewrite

log = logging.getLogger("sentry")

SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1
SECCOMP_RET_TRACE, SECCOMP_RET_ALLOW = 0x7FF00000, 0x7FFF0000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
NR_OFFSET, ARG0_OFFSET = 0, 16       # struct seccomp_data: nr, arch, ip, args[6]
SYS_SECCOMP = 317
SYS_READ, SYS_DUP, SYS_DUP2, SYS_FCNTL = 0, 32, 33, 72
SYS_ACCEPT, SYS_RECVMSG, SYS_ACCEPT4, SYS_RECVMMSG, SYS_DUP3 = 43, 47, 288, 299, 292
# every trapped fd: its copies must be trapped too
DUPS = [SYS_DUP, SYS_DUP2, SYS_DUP3, SYS_FCNTL]
# a signalfd (so /proc/<tid>/fd names it): its records carry the sender's pid and uid
SIGNALFD_LINK = "anon_inode:[signalfd]"
SIGNALFD_TRAPS = [SYS_READ] + DUPS
# a SO_PASSCRED socket: received SCM_CREDENTIALS; an accepted socket inherits it
PASSCRED_TRAPS = [SYS_RECVMSG, SYS_RECVMMSG, SYS_ACCEPT, SYS_ACCEPT4] + DUPS
SOL_SOCKET, SO_PASSCRED = 1, 16
# a sock_diag socket where outbound connections exist: its dumps list them
# too (sentry/net/diag.py); iproute2 reads them with recvmsg
DIAG_TRAPS = [SYS_RECVMSG] + DUPS
NETLINK_SOCK_DIAG = 4
# a network setting whose writes the namespace helper makes for a guest root
# (fsimpl/proc.py helper_writes; syscalls/settings.py)
SYS_WRITE, SYS_PWRITE64, SYS_WRITEV, SYS_PWRITEV, SYS_PWRITEV2 = 1, 18, 20, 296, 328
SETTING_TRAPS = [SYS_WRITE, SYS_PWRITE64, SYS_WRITEV, SYS_PWRITEV, SYS_PWRITEV2] + DUPS


def helper_written(host_path):
    """Whether a guest fd's host path (the helper's /proc/sys, where the
    sandbox's settings are opened: fsimpl/proc.py live files) names a setting
    whose writes the namespace helper makes (fsimpl/proc.py helper_writes)."""
    from sentry.fsimpl.proc import helper_writes
    return host_path.startswith("/proc/sys/") and helper_writes(host_path[len("/proc/sys/"):])


def _insn(code, jt, jf, k):
    return struct.pack("<HBBI", code, jt, jf, k)


def program(fd, syscalls):
    """BPF: TRACE when the call is one of `syscalls` on `fd` (its low 32
    bits, as the kernel reads an int), else ALLOW."""
    n = len(syscalls)
    code = [_insn(BPF_LD_W_ABS, 0, 0, NR_OFFSET)]
    for i, nr in enumerate(syscalls):
        # on a match, jump over the remaining tests and the ALLOW to the fd check
        code.append(_insn(BPF_JEQ_K, n - i, 0, nr))
    code.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    code.append(_insn(BPF_LD_W_ABS, 0, 0, ARG0_OFFSET))
    code.append(_insn(BPF_JEQ_K, 0, 1, fd & 0xFFFFFFFF))
    code.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_TRACE))
    code.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return b"".join(code)


BPF_JGE_K, BPF_JGT_K, BPF_JSET_K = 0x35, 0x25, 0x45
ARG_LOW = [16 + 8 * i for i in range(6)]     # the low half of each argument (an int, as the kernel reads it)
ANY_BIT = "any bit of"                       # a rule's test of flags: (arg index, ANY_BIT, mask)


def process_program(rules):
    """BPF for a whole process, whatever the fd: TRACE when the call is one
    of `rules`' syscalls and its arguments match, else ALLOW.  rules:
    {nr: None (always), or [alternative, ...]}, an alternative being
    [(arg index, low, high), ...] that must all hold (low <= the argument's
    low 32 bits <= high), or (arg index, ANY_BIT, mask) (a flag of mask set
    in them)."""
    allow, trace = "allow", "trace"
    prog = [("ld", NR_OFFSET)]
    for nr, alts in rules.items():
        skip = f"not{nr}"
        prog.append(("jeq", nr, None, skip))
        if alts is None:
            prog.append(("ret", trace))
        for j, alt in enumerate(alts or ()):
            nxt = f"alt{nr}.{j}"
            for i, low, high in alt:
                if low == ANY_BIT:
                    prog += [("ld", ARG_LOW[i]), ("jset", high, None, nxt)]
                else:
                    prog += [("ld", ARG_LOW[i]), ("jge", low, None, nxt), ("jgt", high, nxt, None)]
            prog += [("ret", trace), ("label", nxt)]
        if alts is not None:
            prog.append(("ret", allow))
        prog.append(("label", skip))
    prog.append(("ret", allow))
    return _assemble(prog)


def _assemble(prog):
    """Labels resolved into BPF's forward jumps (None: the next instruction)."""
    where, n = {}, 0
    for op in prog:
        if op[0] == "label":
            where[op[1]] = n
        else:
            n += 1
    code, pc = [], 0
    ret = {"allow": SECCOMP_RET_ALLOW, "trace": SECCOMP_RET_TRACE}
    for op in prog:
        if op[0] == "label":
            continue
        if op[0] == "ld":
            code.append(_insn(BPF_LD_W_ABS, 0, 0, op[1]))
        elif op[0] == "ret":
            code.append(_insn(BPF_RET_K, 0, 0, ret[op[1]]))
        else:
            kind = {"jeq": BPF_JEQ_K, "jge": BPF_JGE_K, "jgt": BPF_JGT_K, "jset": BPF_JSET_K}[op[0]]
            jt, jf = (0 if t is None else where[t] - pc - 1 for t in op[2:])
            code.append(_insn(kind, jt, jf, op[1] & 0xFFFFFFFF))
        pc += 1
    return b"".join(code)


def ensure_process_filter(call, name, rules, ready=lambda proc: True):
    """Before the guest's call goes on: the calling process has the filter
    of `rules` (process_program), which its children keep and exec does not
    remove, once -- loaded under `name` (Process.process_traps, which also
    tells --strace that its calls may trap: Kernel._traps_own).  The first
    time, the load is injected and the guest's call runs again (and passes
    here); where it cannot be loaded (a filter of the guest's own refuses
    seccomp(2), a thread has one of its own), or `ready(proc)`, what must go
    with it, fails, the call is EPERM: what the filter is to catch would
    run untrapped."""
    proc = call.process
    if name in proc.process_traps:
        return

    def loaded(result):
        if result != 0 or not ready(proc):
            return -errno.EPERM
        proc.process_traps = {**proc.process_traps, name: frozenset(rules)}
        return None
    install(call, process_program(rules), loaded)


def install(call, filt, then):
    """Raise the Inject that loads filter `filt` in the calling thread's
    process (TSYNC: every thread); then(result of seccomp(2)): 0 once it is
    there."""
    from sentry.kernel.syscall import Inject
    slot = call.slot()
    call.stage(struct.pack("<HxxxxxxQ", len(filt) // 8, slot + 16), filt)
    raise Inject(SYS_SECCOMP, (SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, slot), then)


# fd numbers trapped one by one before a process's next trap names them all
PER_FD_MAX = 128
ALL_FDS = -1


def trap_after(kernel, task, fd, syscalls, result, vital=True):
    """From an on_exit callback: make `syscalls` on `fd` trap in task's
    process from now on, then let the guest's call return `result`.
    vital: a process that cannot load the filter is killed (what the
    untrapped calls would do must not happen); else it goes on untrapped.
    A filter stays for good, and names a number, not a file: where one of
    the process's traps these calls on this number already, none is added
    (a program that opens such a file over and over would otherwise pile
    them up to the kernel's limit, ENOMEM).  Past PER_FD_MAX numbers, the
    next filter traps its calls on every fd of the process (their handlers
    pass what is not theirs): every filter runs at every call the process
    makes, so their number stays bounded.  Returns whether it injected."""
    from sentry.platform import staging
    proc = task.process
    have = proc.fd_traps.get(fd, frozenset()) | proc.fd_traps.get(ALL_FDS, frozenset())
    if have >= set(syscalls):
        return False
    if len(proc.fd_traps) >= PER_FD_MAX:
        fd = ALL_FDS
        syscalls = set(syscalls).union(*proc.fd_traps.values())
        filt = process_program({nr: None for nr in sorted(syscalls)})
    else:
        filt = program(fd, syscalls)
    slot = task.slots.slot_of(task.tid)
    # struct sock_fprog {u16 len; u64 filter}, then the filter itself
    filt_addr = slot + 16
    staging.stage(task.tid, slot, struct.pack("<HxxxxxxQ", len(filt) // 8, filt_addr), filt)

    def installed(r):
        # Not 0: a filter of the guest's own (or its OCI profile) refused
        # seccomp(2), or a thread with a filter of its own made TSYNC fail
        # (it returns that thread's id).  The fd's reads would then show
        # host ids untrapped: the process does not go on.
        if r == 0:
            proc.fd_traps[fd] = proc.fd_traps.get(fd, frozenset()) | set(syscalls)
        elif not vital:
            log.debug("fd %d of process %d: no trap (seccomp answered %d)", fd, task.process.vpid, r)
        else:
            log.warning("fd %d of process %d: its trap could not be installed (seccomp answered %d): "
                        "the process is killed", fd, task.process.vpid, r)
            ptrace.kill_task(task.process.tgid)
    kernel.inject_after(task, SYS_SECCOMP, (SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, slot),
                        result, then=installed)
    return True


def trap_result(call, syscalls):
    """The Rewrite for a call that makes an fd (signalfd, a sock_diag
    socket, a copy of a trapped fd): at its exit, `syscalls` on the fd it
    returns trap."""
    call.slot()                          # the exit stop will stage a filter
    kernel = call.kernel

    def made(task, result):
        if result >= 0:
            trap_after(kernel, task, result, syscalls, result)
    return Rewrite(on_exit=made)


# (kernel, host path of the fd) -> traps or None: fds of kinds a higher layer
# knows (syscalls/controlfiles.py registers the files whose writes it parses)
CLASSIFIERS = []


def traps_of(kernel, process, fd):
    """The traps a guest's fd needs, by what it is now; None for any other fd."""
    try:
        what = os.readlink(f"/proc/{process.tgid}/fd/{fd}")
    except OSError:
        return None
    if what == SIGNALFD_LINK:
        return SIGNALFD_TRAPS
    if helper_written(what):
        return SETTING_TRAPS
    for classify in CLASSIFIERS:
        traps = classify(kernel, what)
        if traps is not None:
            return traps
    if what.startswith("socket:"):
        try:
            mine = socket.socket(fileno=kernel.borrow_fd(process, fd))
        except (OSError, SyscallError):
            return None
        with mine:
            if mine.family == socket.AF_UNIX and mine.getsockopt(SOL_SOCKET, SO_PASSCRED):
                return PASSCRED_TRAPS
            if mine.family == socket.AF_NETLINK and mine.proto == NETLINK_SOCK_DIAG \
                    and kernel.outbound is not None:
                return DIAG_TRAPS
    return None


def follow_copy(call):
    """For dup, dup2, dup3 and F_DUPFD on fd arg 0, which trapped: the copy
    gets the same traps as the original."""
    traps = traps_of(call.kernel, call.process, call.fd(0))
    if traps is None:
        return PASS
    return trap_result(call, traps)
