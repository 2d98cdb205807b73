"""The syscall table: every x86-64 syscall number, its name and its outcome.

One declarative table drives the seccomp filter (sentry/platform/seccomp.py),
the native fast path, the dispatcher (sentry/kernel/dispatch.py), the --strace
printer and the compatibility page (`python -m syscalls.table`).

Outcomes:
  allow      ALLOWed in BPF: acts only on the caller's own resources
  allow-if   ALLOWed in BPF when its arguments pass a check; trapped otherwise
  native     trapped, answered in C (native/tracer.c) without entering Python
  handler    trapped, answered by a Python handler in syscalls/<family>.py
  deny       trapped, answered with an errno and one log line
"""
import errno
import sys

from sentry.platform.libseccomp import pyseccomp

from syscalls.ptracedata import PROTOTYPES as PTRACE_PROTOTYPES
from sentry.kernel import abi
from sentry.kernel.namespaces import CLONE_NEW_ANY, CLONE_UNTRACED
from sentry.kernel.syscall import SyscallTable, TableEntry
from syscalls import signature
from sentry.platform import staging
from sentry.vfs.mountns import SHMMAX
from sentry.vfs.mount import HIDDEN_FD_BASE

# --- numbers and names: libseccomp's per-arch table (the kernel's own) ---
def _names():
    names = {}
    for nr in range(512):
        try:
            names[nr] = pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, nr).decode()
        except Exception:
            pass            # a hole in the numbering, or newer than libseccomp
    return names


NAMES = _names()

# --- argument types: python-ptrace's prototypes, and those it lacks --------
# (python-ptrace's as literals, syscalls/ptracedata.py: importing its package costs ~10 ms)
# (as the kernel declares them with SYSCALL_DEFINE: each is decoded by its C
# type before any handler sees it, sentry/kernel/abi.py)
PROTOTYPES_ADDED = {
    "arch_prctl": "int option, unsigned long addr",
    "rseq": "struct rseq *rseq, u32 rseq_len, int flags, u32 sig",
    "pkey_mprotect": "unsigned long start, size_t len, unsigned long prot, int pkey",
    "pidfd_send_signal": "int pidfd, int sig, siginfo_t *info, unsigned int flags",
    "pidfd_open": "pid_t pid, unsigned int flags",
    "pidfd_getfd": "int pidfd, int fd, unsigned int flags",
    "close_range": "unsigned int fd, unsigned int max_fd, unsigned int flags",
    "openat2": "int dfd, const char *filename, struct open_how *how, size_t usize",
    "faccessat2": "int dfd, const char *filename, int mode, int flags",
    "fchmodat2": "int dfd, const char *filename, umode_t mode, unsigned int flags",
    "process_madvise": "int pidfd, const struct iovec *vec, size_t vlen, int behavior, unsigned int flags",
    "process_mrelease": "int pidfd, unsigned int flags",
    "clone3": "struct clone_args *uargs, size_t size",
    "umount2": "char *name, int flags",
    "memfd_secret": "unsigned int flags",
    "quotactl_fd": "unsigned int fd, unsigned int cmd, qid_t id, void *addr",
    "mount_setattr": "int dfd, const char *path, unsigned int flags, struct mount_attr *uattr, size_t usize",
    "epoll_pwait2": "int epfd, struct epoll_event *events, int maxevents, "
                    "const struct __kernel_timespec *timeout, const sigset_t *sigmask, size_t sigsetsize",
    "futex_waitv": "struct futex_waitv *waiters, unsigned int nr_futexes, unsigned int flags, "
                   "struct __kernel_timespec *timeout, clockid_t clockid",
    "cachestat": "unsigned int fd, struct cachestat_range *cstat_range, struct cachestat *cstat, unsigned int flags",
    "io_uring_setup": "u32 entries, struct io_uring_params *p",
    "io_uring_enter": "unsigned int fd, u32 to_submit, u32 min_complete, u32 flags, const void *argp, size_t argsz",
    "io_uring_register": "unsigned int fd, unsigned int opcode, void *arg, unsigned int nr_args",
    "open_tree": "int dfd, const char *filename, unsigned flags",
    "move_mount": "int from_dfd, const char *from_path, int to_dfd, const char *to_path, unsigned int flags",
    "fsopen": "const char *fs_name, unsigned int flags",
    "fsconfig": "int fd, unsigned int cmd, const char *key, const void *value, int aux",
    "fsmount": "int fs_fd, unsigned int flags, unsigned int attr_flags",
    "fspick": "int dfd, const char *path, unsigned int flags",
}


def _prototype(name):
    """((ctype, name), ...) of a syscall's arguments, or None if unknown."""
    if name in PROTOTYPES_ADDED:
        out = []
        for decl in PROTOTYPES_ADDED[name].split(","):
            ctype, _, argname = decl.strip().rpartition(" ")
            out.append((ctype + "*" * argname.count("*"), argname.lstrip("*")))
        return tuple(out)
    return PTRACE_PROTOTYPES.get(name)


# --- allowed in BPF: fd-local, cannot name a host object -------------------
ALLOW = set("""
read write pread64 pwrite64 readv writev preadv pwritev preadv2 pwritev2 lseek
poll ppoll select pselect6 epoll_create epoll_create1 epoll_ctl epoll_wait
epoll_pwait epoll_pwait2 brk rt_sigaction rt_sigprocmask rt_sigreturn
rt_sigpending rt_sigsuspend sigaltstack pipe pipe2 sched_yield
mincore pause nanosleep getitimer setitimer alarm
sendfile accept accept4 recvfrom recvmsg recvmmsg
listen getsockname getpeername exit
exit_group fsync fdatasync ftruncate fallocate getdents getdents64 umask
gettimeofday getrusage times arch_prctl
set_robust_list futex futex_waitv timer_settime timer_gettime timer_getoverrun
timer_delete timerfd_create timerfd_settime timerfd_gettime eventfd eventfd2
inotify_init inotify_init1 inotify_rm_watch memfd_create
getrandom rseq membarrier copy_file_range splice tee vmsplice sync_file_range
readahead fadvise64 fgetxattr flistxattr getcpu restart_syscall
sched_get_priority_max sched_get_priority_min fork vfork
landlock_create_ruleset landlock_add_rule
personality mq_timedsend mq_timedreceive mq_notify mq_getsetattr
io_setup io_destroy io_getevents io_submit io_cancel io_pgetevents
mlockall munlockall sync syncfs time pkey_alloc pkey_free futex_wake
futex_wait futex_requeue cachestat map_shadow_stack set_mempolicy get_mempolicy
set_mempolicy_home_node
""".split())
# the host's clocks: reading their state is anyone's, and the kernel refuses
# any change (the guest holds no CAP_SYS_TIME), after its own EFAULT and
# EINVAL checks, as in a container
ALLOW |= {"settimeofday", "adjtimex"}
# the file system types this kernel knows, by index and name: /proc/filesystems's list
ALLOW |= {"sysfs"}

MAP_FIXED_ANY = 0x10 | 0x100000              # MAP_FIXED | MAP_FIXED_NOREPLACE


def _lt(i, v): return [pyseccomp.Arg(i, pyseccomp.LT, v)]
def _eq(i, v): return [pyseccomp.Arg(i, pyseccomp.EQ, v)]
def _mask0(i, m): return [pyseccomp.Arg(i, pyseccomp.MASKED_EQ, m, 0)]


# Each list is OR-ed rules of AND-ed argument checks.  Comparisons are on all
# 64 bits while the kernel reads an `int` argument's low half only, so only
# equality and "less than" are safe: a range rule ("greater than X") would let
# 0xffffffff00000000|TIOCSTI through.  Anything else traps, and the handler
# looks at the low half as the kernel does.
STAGING_LOW = staging.BASE - (1 << 40)      # below: short ranges stay below the area
STAGING_HIGH = staging.BASE + staging.SIZE   # at or above: the area is behind
MREMAP_FIXED = 2


def _clear_of_staging(addr, length):
    """Rules under which [addr, addr+length) cannot overlap the staging area."""
    return [[pyseccomp.Arg(addr, pyseccomp.LT, STAGING_LOW), pyseccomp.Arg(length, pyseccomp.LT, 1 << 40)],
            [pyseccomp.Arg(addr, pyseccomp.GE, STAGING_HIGH)]]


HOT_IOCTLS = [0x5401, 0x5402, 0x5403, 0x5404, 0x540B, 0x5413, 0x5414, 0x541B,
              0x5421, 0x5450, 0x5451,   # TCGETS TCSETS* TCFLSH TIOCGWINSZ
              0x40049409, 0x4020940D]
#   TIOCSWINSZ FIONREAD FIONBIO FIONCLEX FIOCLEX; FICLONE FICLONERANGE, which cp
#   tries once per file copied (a clone into a file the guest opened for writing
#   from one it opened for reading: what its read and write could do)
# all but those naming a process: F_GETLK(5), F_SETOWN(8), F_GETOWN(9), F_SETOWN_EX(15),
# F_GETOWN_EX(16) (syscalls/file.py translates their pids), and the locks and leases,
# F_SETLK(6), F_SETLKW(7), F_OFD_*(36-38), F_SETLEASE(1024): on a file the sandbox borrows
# from the host they must not reach its inode (syscalls/locks.py)
SAFE_FCNTLS = [0, 1, 2, 3, 4, 10, 11, 1025, 1026,
               1030, 1031, 1032, 1033, 1034]

ALLOW_IF = {
    # the Sentry's hidden fds are invisible: any use of them traps (EBADF)
    "close": [_lt(0, HIDDEN_FD_BASE), _eq(0, 0xFFFFFFFF)],     # close(-1): EBADF, as shells do
    "dup": [_lt(0, HIDDEN_FD_BASE)],
    "dup2": [_lt(0, HIDDEN_FD_BASE) + _lt(1, HIDDEN_FD_BASE)],
    "dup3": [_lt(0, HIDDEN_FD_BASE) + _lt(1, HIDDEN_FD_BASE)],
    "fstat": [_lt(0, HIDDEN_FD_BASE)],
    "fstatfs": [_lt(0, HIDDEN_FD_BASE)],
    "fchdir": [_lt(0, HIDDEN_FD_BASE)],
    # a fixed mapping could land on the staging area
    "mmap": [_mask0(3, MAP_FIXED_ANY)] + _clear_of_staging(0, 1),
    # TIOCSTI/TIOCLINUX type into the host terminal: never reachable
    "ioctl": [_eq(1, v) for v in HOT_IOCTLS],
    # F_SETOWN names a process that will receive SIGIO
    "fcntl": [_lt(0, HIDDEN_FD_BASE) + _eq(1, v) for v in SAFE_FCNTLS],
    # CLONE_UNTRACED would start a child the tracer never sees
    "clone": [_mask0(0, CLONE_UNTRACED | CLONE_NEW_ANY)],
    # the families sentry offers (syscalls/socket.py, sys_socket): unix; internet of any
    # type but raw; netlink route (in a private network namespace, the sandbox's);
    # sock_diag traps, so that its dumps may list outbound sockets (sentry/net/diag.py);
    # the rest traps and is refused as Linux refuses a process without
    # the capability, or a kernel without the family
    "socket": [_eq(0, 1)] + [_eq(0, f) + [pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xF, t)]
                             for f in (2, 10) for t in (1, 2, 5)] + [_eq(0, 16) + _eq(2, 0)],
    "socketpair": [_eq(0, 1)],
    # a destination address names a socket: only the connected form runs free, and
    # without MSG_FASTOPEN, which connects as it sends (sentry/net/connect.py)
    "sendto": [_eq(4, 0) + _mask0(3, 0x20000000)],
    # ranges that cannot reach the staging area (checked in C when trapped)
    **{name: _clear_of_staging(0, 1) for name in
       "munmap mprotect madvise pkey_mprotect mlock munlock mlock2 msync mbind".split()},
    "mremap": [r + _mask0(3, MREMAP_FIXED) for r in _clear_of_staging(0, 1)],
    # pid 0 is the caller: nothing to translate or check
    # RLIMIT_CORE (4) and RLIMIT_NPROC (6) are the sandbox's own (syscalls/rlimit.py); for
    # prlimit64, pid 0 is the caller
    "getrlimit": [_lt(0, 4), _eq(0, 5)] + [_eq(0, r) for r in range(7, 16)],
    "setrlimit": [_lt(0, 4), _eq(0, 5)] + [_eq(0, r) for r in range(7, 16)],
    "prlimit64": [_eq(0, 0) + _lt(1, 4), _eq(0, 0) + _eq(1, 5)] + [_eq(0, 0) + _eq(1, r) for r in range(7, 16)],
    "sched_getaffinity": [_eq(0, 0)],
    "sched_setaffinity": [_eq(0, 0)],
    "sched_getparam": [_eq(0, 0)],
    "sched_getscheduler": [_eq(0, 0)],
    "get_robust_list": [_eq(0, 0)],
    # all options but those naming a process (PR_SCHED_CORE 62, PR_SET_PTRACER), the
    # child-subreaper bit (36, 37: init's is emulated), the credential ones (keep-caps
    # 7 8, bounding set 23 24, securebits 27 28, ambient 47, no_new_privs 38 39: emulated)
    # and seccomp's (21 22: the guest's own view); unknown options trap
    "prctl": [_lt(0, 7)] + [_eq(0, v) for v in range(9, 80)
                            if v not in (21, 22, 23, 24, 27, 28, 36, 37, 38, 39, 47, 62)]
             + [_eq(0, 0x53564D41)],
    # the caller's own clocks; a CPU-time clock of another pid traps (syscalls/clock.py)
    **{name: [_lt(0, 64)] + [_eq(0, c & mask) for c in range(-8, 0) for mask in (2**64 - 1, 2**32 - 1)]
       for name in ("clock_gettime", "clock_getres", "clock_nanosleep")},
    # SOL_SOCKET's SO_PEERCRED (17) and later name a process: they trap
    "getsockopt": [_lt(2, 17)] + [_eq(1, level) for level in (0, 6, 17, 41, 132, 270)],
    # SOL_SOCKET's SO_PASSCRED (16) makes the socket's recvmsg trap (syscalls/socket.py)
    "setsockopt": [_lt(2, 16)] + [_eq(1, level) for level in (0, 6, 17, 41, 132, 270)]
                  + [_eq(2, name) for name in (20, 21, 25, 29, 33, 36, 46, 47, 49)],
}

# shmat(2) maps a segment at its address, over a free range or (SHM_REMAP)
# whatever is there: it runs free only where that cannot reach the staging
# area: no address (the kernel picks a free range), or above the area, or a
# terabyte below it, since the sandbox's IPC namespace has no larger segment
# (vfs/mountns.py SHMMAX; where the helper could not set that limit, not
# below).  The rest is refused (syscalls/ipc.py).
SHM_BELOW = [pyseccomp.Arg(1, pyseccomp.LT, staging.BASE - SHMMAX)]
IPC_ALLOW_IF = {"shmat": [_eq(1, 0), SHM_BELOW, [pyseccomp.Arg(1, pyseccomp.GE, STAGING_HIGH)]]}
# the commands that answer with a pid (a host one) trap: syscalls/ipc.py
# translates it; the rest run free (an int: its low half compared)
IPC_ALLOW_IF.update({
    "msgctl": [[pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xFFFFFFFF, c)] for c in (0, 1, 3, 12)],
    "shmctl": [[pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xFFFFFFFF, c)] for c in (0, 1, 3, 11, 12, 14)],
    "semctl": [[pyseccomp.Arg(2, pyseccomp.MASKED_EQ, 0xFFFFFFFF, c)]
               for c in (0, 1, 2, 3, 12, 13, 14, 15, 16, 17, 18, 19, 20)]})

# Calls that could unmap, remap or re-protect the staging area: answered in C
# (native/tracer.c) when trapped.  Most never trap: a range that starts far
# below the area and is shorter than the gap, or starts above it, cannot
# touch it, and BPF can tell that from the registers (ALLOW_IF above).
MM_CALLS = set("""munmap mprotect madvise mremap pkey_mprotect remap_file_pages mlock
munlock mlock2 msync mbind""".split())
# The caller's own ids: virtual, answered in C from the kernel's table
# (native/identity.c); the Python handlers in syscalls/ serve the rest.
IDENTITY_CALLS = set("""getpid gettid getppid getpgrp getuid geteuid getgid getegid
getresuid getresgid""".split())
NATIVE = MM_CALLS | IDENTITY_CALLS

def _low(i, v): return pyseccomp.Arg(i, pyseccomp.MASKED_EQ, 0xFFFFFFFF, v)


# Answered in BPF with an errno when the arguments match, whatever the call's
# outcome otherwise: (errno, AND-ed checks) pairs.  Only the low half of an
# `int` argument is compared (masked: high bits change nothing, as for the
# kernel), and no ALLOW_IF rule of the same call may match the same values.
ERRNO_IF = {
    # SOL_SOCKET's SO_PASSPIDFD (76): every message received would carry a
    # pidfd of its sender (SCM_PIDFD), a host peer's too
    "setsockopt": [(errno.ENOPROTOOPT, [_low(1, 1), _low(2, 76)])],
}

NOTES = {
    "modify_ldt": "16/32-bit code segments are of no use to an x86-64-only sandbox",
}


def build_table():
    """The table with every family's handlers: registering them is importing
    their modules, done here and nowhere else, so no import order decides
    what the table holds."""
    from syscalls import (clock, controlfiles, credentials, deny, exec as _exec, file, ipc,  # noqa: F401
                          mount, namespaces, path, process, rlimit, settings, signal, socket, sysinfo, uts,
                          writes)
    from syscalls.registry import HANDLERS
    entries = {}
    for nr, name in NAMES.items():
        h = HANDLERS.get(name)
        if name in ALLOW:
            outcome = "allow"
        elif name in ALLOW_IF:
            outcome = "allow-if"
        elif name in NATIVE:
            outcome = "native"
        elif name in deny.DENIED:
            outcome, h = "deny", None
        elif h is not None:
            outcome = "handler"
        else:
            outcome = "deny"
        note = deny.note(name) if name in deny.DENIED else (h.note if h else "") or NOTES.get(name, "")
        arg_types = _prototype(name)
        # each argument's meaning (fd, path, O_* flags, struct stat * out...) and the
        # call's strace classes: read by --strace, the fuzz test and the docs, so made
        # when first read
        entries[nr] = TableEntry(nr, name, outcome, h, deny.DENIED.get(name, errno.ENOSYS), note, arg_types,
                                 allow_if=ALLOW_IF.get(name), describe=_describer(name, arg_types))
    return SyscallTable(entries)


def _describer(name, arg_types):
    def describe():
        args = signature.signature(name, arg_types, abi.kind_of)
        return args, signature.classes(name, args)
    return describe


# allowed calls whose handlers check what the fd is (signalfd reads; writes
# the Sentry answers: syscalls/writes.py), so --strace may trap them all
FD_CHECKED = {"read", "write", "pwrite64", "writev", "pwritev", "pwritev2",
              # and those whose handlers check the file or the caller's time
              # namespace (syscalls/fsetid.py, syscalls/timens.py)
              "ftruncate", "fallocate", "futex", "timerfd_settime", "timer_settime"}


def filter_rules(table, trace_all=False, private_ipc=False, shm_capped=False):
    """The seccomp filter's rules (sentry/platform/seccomp.py): (nr, errno or
    None to allow, argument checks); every other call traps.  trace_all
    (--strace): the calls allowed in BPF trap too, so that they can be shown,
    and the Kernel lets them run as BPF would have (entry.allow_if).  Allowed
    calls with a handler are the exception, but FD_CHECKED: their handlers
    assume the trap came from a per-fd filter (kernel/fdtraps.py), but
    these check the fd themselves."""
    from syscalls import ipc
    for e in table.entries.values():
        if private_ipc and not trace_all and e.name in ipc.CALLS:
            # the sandbox's own IPC namespace's (syscalls/ipc.py)
            for args in IPC_ALLOW_IF.get(e.name, [[]]):
                if shm_capped or args is not SHM_BELOW:
                    yield e.nr, None, args
        if e.outcome == "allow":
            if not (trace_all and (e.handler is None or e.name in FD_CHECKED)):
                yield e.nr, None, []
        elif e.outcome == "allow-if":
            for args in () if trace_all else ALLOW_IF[e.name]:
                yield e.nr, None, args
        for err, args in ERRNO_IF.get(e.name, ()):
            yield e.nr, err, args


def mm_checked(table):
    """The numbers of the calls native/tracer.c checks against the staging area."""
    return [e.nr for e in table.entries.values() if e.name in MM_CALLS or e.name == "mmap"]


def markdown(table):
    lines = ["| nr | signature | outcome | support | note |", "|---|---|---|---|---|"]
    for nr in sorted(table.entries):
        e = table.entries[nr]
        lines.append(f"| {nr} | `{e.prototype()}` | {e.outcome} | {e.support} | {e.note} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown(build_table()) + "\n")
