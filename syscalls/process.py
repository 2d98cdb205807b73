"""Process creation and the calls that name a process by pid.

The guest names processes by the virtual pids of the sandbox's PID namespace
(sentry/kernel/pidns.py).  A pid argument is translated to the host's before
the host runs the call, and a pid result back; a pid that names no sandbox
process is ESRCH, as if it did not exist.  fork, vfork and ordinary clone(2)
flags are ALLOWed in BPF and followed with PTRACE_O_TRACE{FORK,VFORK,CLONE};
their results are rewritten by the kernel (Kernel.on_new_task).
"""
import errno
import os
import struct

from sentry.kernel.clone import CLONE_ARGS, CLONE_ARGS_SIZE, CLONE_ARGS_VER0, clone3_staging_blob
from sentry.kernel.credentials import CAP_SYS_NICE
from sentry.kernel.idmap import OVERFLOW_ID
from sentry.kernel.namespaces import (CLONE_FS, CLONE_NEW_OTHERS, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER,
                                      CLONE_NEWTIME, CLONE_NEWUTS, CLONE_SIGHAND, CLONE_THREAD, CLONE_UNTRACED,
                                      CLONE_VM, CSIGNAL)
from sentry.kernel.limits import host_soft_limit
from syscalls import credentials, namespaces, signal as signal_calls
from sentry.kernel.syscall import PASS, Rewrite, sint
from sentry.errors import SyscallError
from syscalls.registry import handler


@handler("clone", support="partial",
         note="traps only with CLONE_UNTRACED (EPERM) or CLONE_NEW*: namespaces as unshare(2) makes "
              "them, for the child (CLONE_NEWPID: it is a new namespace's init; CLONE_NEWUTS: its "
              "names are its own; CLONE_NEWNS: a copy of its parent's mount table; with CLONE_THREAD EPERM: a thread's namespaces are its process's); "
              "and with CLONE_THREAD after unshare(CLONE_NEWPID) (EINVAL), under the process's own filter")
def sys_clone(call):
    flags = call.args[0] & 0xFFFFFFFF & ~CSIGNAL    # the kernel's: the low half, less the exit signal
    new = _new_namespaces(call, flags)
    return Rewrite(args={0: call.args[0] & ~new}, restore=True, on_exit=_made(call.task, new))


def _new_namespaces(call, flags):
    """copy_process's rules for `flags` and the sandbox's: the namespaces
    the child is to get, which the host's call must not ask for (a new
    user namespace is made here, for the child: Kernel.on_new_task)."""
    if flags & CLONE_UNTRACED:
        raise SyscallError(errno.EPERM)
    # copy_process's own rules on namespace flags come before any namespace is made
    # (a thread is of its process's PID namespace: not after unshare(CLONE_NEWPID),
    # which the C fast path leaves to Python, and whose clone(2) threads trap then:
    # syscalls/namespaces.py)
    if (flags & CLONE_FS and flags & (CLONE_NEWNS | CLONE_NEWUSER)) \
            or (flags & CLONE_THREAD and not flags & CLONE_SIGHAND) \
            or (flags & CLONE_SIGHAND and not flags & CLONE_VM) \
            or (flags & CLONE_THREAD and flags & (CLONE_NEWUSER | CLONE_NEWPID)) \
            or (flags & CLONE_THREAD and call.process.pidns_children is not call.process.pidns):
        raise SyscallError(errno.EINVAL)
    child_userns = namespaces.new_user_namespace(call, flags)
    new = flags & (CLONE_NEW_OTHERS | CLONE_NEWUSER)
    if new & ~(CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWUSER | CLONE_NEWTIME | CLONE_NEWNS | CLONE_NEWNET) \
            or (flags & CLONE_THREAD and new):
        raise SyscallError(errno.EPERM)
    if new & CLONE_NEWPID:
        namespaces.check_new_pidns(call.process)
    call.task.clone_userns = child_userns
    if new & CLONE_NEWNET:
        owner = child_userns if child_userns is not None else call.task.creds.userns
        call.task.clone_netns = namespaces.new_network_namespace(call, owner)
    return new


def _made(task, new):
    """The host makes an ordinary child; the Kernel gives it the new
    namespaces (Kernel.on_new_task).  A failed clone made none."""
    task.clone_namespaces = new

    def done(t, result):
        t.clone_namespaces = 0
        t.clone_userns = t.clone_netns = None
        return None
    return done


CLONE_DETACHED, CLONE_PARENT = 0x00400000, 0x00008000
CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP = 1 << 32, 1 << 33
PAGE_SIZE, NSIG, PID_NS_LEVELS = 4096, 64, 32


@handler("clone3", support="partial",
         note="its struct copied to the staging area and checked there as clone(2)'s flags are "
              "(native/clone3.c, this handler when a rule of Python's applies); set_tid and "
              "CLONE_INTO_CGROUP EPERM: the host's pids and cgroups are not the guest's to choose")
def sys_clone3(call):
    addr, size = call.args[0], call.args[1]
    # copy_clone_args_from_user: the struct's size, then a longer one's tail
    if size > PAGE_SIZE:
        raise SyscallError(errno.E2BIG)
    if size < CLONE_ARGS_VER0:
        raise SyscallError(errno.EINVAL)
    if size > CLONE_ARGS_SIZE and any(call.read(addr + CLONE_ARGS_SIZE, size - CLONE_ARGS_SIZE)):
        raise SyscallError(errno.E2BIG)
    raw = call.read(addr, min(size, CLONE_ARGS_SIZE))
    args = dict(zip(CLONE_ARGS, struct.unpack(f"<{len(CLONE_ARGS)}Q", raw.ljust(CLONE_ARGS_SIZE, b"\0"))))
    flags, exit_signal = args["flags"], args["exit_signal"]
    if args["set_tid_size"] > PID_NS_LEVELS or bool(args["set_tid"]) != bool(args["set_tid_size"]) \
            or exit_signal & ~CSIGNAL or exit_signal > NSIG \
            or (flags & CLONE_INTO_CGROUP and (args["cgroup"] > 0x7FFFFFFF or size < CLONE_ARGS_SIZE)):
        raise SyscallError(errno.EINVAL)
    # clone3_args_valid: the flags it knows, and none of clone(2)'s only
    if flags & ~(0xFFFFFFFF | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) \
            or flags & (CLONE_DETACHED | (CSIGNAL & ~CLONE_NEWTIME)) \
            or (flags & CLONE_CLEAR_SIGHAND and flags & CLONE_SIGHAND) \
            or (flags & (CLONE_THREAD | CLONE_PARENT) and exit_signal) \
            or bool(args["stack"]) != bool(args["stack_size"]):
        raise SyscallError(errno.EINVAL)
    new = _new_namespaces(call, flags)
    if args["set_tid"] or flags & CLONE_INTO_CGROUP:
        raise SyscallError(errno.EPERM)
    staged = struct.pack("<Q", flags & ~new) + raw[8:]
    at, = call.stage(clone3_staging_blob(staged, addr, size))
    return Rewrite(args={0: at, 1: len(raw)}, restore=True, on_exit=_made(call.task, new))


# ---- the caller's own ids (answered in C, native/identity.c; here when it has no row)

@handler("getpid")
def sys_getpid(call):
    return call.kernel.vpid_of(call.process)


@handler("gettid")
def sys_gettid(call):
    return call.kernel.vtid_of(call.task)


@handler("getppid")
def sys_getppid(call):
    return call.kernel.ppid_of(call.process)


@handler("getpgrp")
def sys_getpgrp(call):
    return call.kernel.pgid_of(call.process.tgid)


@handler("set_tid_address", note="returns the caller's virtual tid")
def sys_set_tid_address(call):
    vtid = call.kernel.vtid_of(call.task)
    return Rewrite(on_exit=lambda task, result: vtid)


# ---- process groups and sessions -------------------------------------------

def _target(call, i):
    """Host pid of the process named by argument i (0: the caller)."""
    pid = call.args[i]
    if pid < 0:
        raise SyscallError(errno.ESRCH)
    return call.kernel.host_id(pid) if pid else call.process.tgid


@handler("getpgid")
def sys_getpgid(call):
    return call.kernel.pgid_of(_target(call, 0))


@handler("getsid")
def sys_getsid(call):
    host = _target(call, 0)
    try:
        os.getsid(host)
    except OSError as e:
        raise SyscallError(e.errno)
    return call.kernel.sid_of(host)


@handler("setsid", note="returns the new virtual session id")
def sys_setsid(call):
    proc = call.process

    def done(task, result):
        if result < 0:
            return result
        call.kernel.publish_process(proc)
        return call.kernel.vpid_of(proc)
    return Rewrite(on_exit=done)


NO_GROUP = 0x7FFFFFFF                 # above any pid_max


@handler("setpgid", note="a process may only join a process group of the sandbox")
def sys_setpgid(call):
    pid, pgid = call.args[0], call.args[1]
    if pid < 0 or pgid < 0:
        raise SyscallError(errno.EINVAL)
    kernel = call.kernel
    target = kernel.host_id(pid) if pid else call.process.tgid
    if pgid == 0 or pgid == kernel.vpid(target):
        host_pgid = target                      # a new group named after the target
    else:
        try:
            host_pgid = kernel.host_id(pgid, group=True)
        except SyscallError:
            # no group of the sandbox: a number that names none on the host
            # either, so that the kernel's own checks of the target (EACCES
            # after its exec, ESRCH, a session leader's EPERM) come first
            host_pgid = NO_GROUP
    proc = kernel.processes.get(target)

    def done(task, result):
        if result == 0 and proc is not None:
            kernel.publish_process(proc)
        return result
    return Rewrite(args={0: target, 1: host_pgid}, on_exit=done)


# ---- calls whose first argument is a pid or tid ------------------------------

@handler("sched_setaffinity", "sched_getaffinity", "sched_setparam",
         "sched_getparam", "sched_setscheduler", "sched_getscheduler", "sched_rr_get_interval",
         "sched_setattr", "sched_getattr", "process_vm_readv", "process_vm_writev",
         "migrate_pages", "move_pages", "get_robust_list", "pidfd_open",
         note="the pid must name a sandbox process")
def sys_pid_first(call):
    """(0 names the caller)."""
    pid = call.args[0]
    name = call.kernel.table.entries[call.nr].name
    if name in ARG_FIRST:
        # these check their other arguments, then a negative pid, before any lookup
        i = ARG_FIRST[name]
        if i is not None and not call.args[i]:
            raise SyscallError(errno.EINVAL)
        if pid < 0:
            raise SyscallError(errno.EINVAL)
    if name in ("process_vm_readv", "process_vm_writev") and call.args[5]:
        raise SyscallError(errno.EINVAL)        # flags, first
    if pid == 0:
        return PASS
    if pid < 0:
        raise SyscallError(errno.ESRCH)
    host = call.kernel.host_id(pid, task=True)
    task = call.kernel.tasks.get(host)
    if task is not None and task.creds is not None and task is not call.task:
        if name in INSPECTING:
            call.task.creds.may_inspect(task.creds)
        elif name in RESCHEDULING:
            call.task.creds.may_reschedule(task.creds)
    return Rewrite(args={0: host}, restore=True)


# the host checks these as the guest's host process, which is every
# guest's: the emulated credentials' own check comes first
INSPECTING = {"get_robust_list", "process_vm_readv", "process_vm_writev", "move_pages"}
RESCHEDULING = {"sched_setaffinity", "sched_setparam", "sched_setscheduler", "sched_setattr"}


# calls that answer EINVAL for a negative pid, and the pointer argument
# they want non-NULL first (kernel/sched/syscalls.c, pidfd_open)
ARG_FIRST = {"sched_setparam": 1, "sched_getparam": 1, "sched_setscheduler": 2,
             "sched_getscheduler": None, "sched_rr_get_interval": None, "sched_setattr": 1,
             "sched_getattr": 1, "pidfd_open": None}


@handler("kcmp")
def sys_kcmp(call):
    hosts = [call.kernel.host_id(call.args[i]) for i in (0, 1)]
    for host in hosts:
        task = call.kernel.tasks.get(host)
        if task is not None and task.creds is not None and task.process is not call.process:
            call.task.creds.may_inspect(task.creds)
    return Rewrite(args={0: hosts[0], 1: hosts[1]}, restore=True)


PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2


def _prio_target(call, which, who):
    if which == PRIO_PROCESS:
        return call.kernel.host_id(who, task=True) if who else 0
    if which == PRIO_PGRP:
        return call.kernel.host_id(who, group=True) if who else 0
    if which == PRIO_USER:
        # "every process of this uid" includes the host's
        raise SyscallError(errno.EPERM)
    raise SyscallError(errno.EINVAL)


def _prio_tasks(call, which, who):
    """The sandbox's tasks a PRIO_* target names, as Linux's for_each
    loops see them: a process's, a process group's every thread, or every
    thread whose real uid is `who` (0: the caller's group, or real uid)."""
    kernel = call.kernel
    if which == PRIO_PROCESS:
        return [kernel.tasks.get(kernel.host_id(who, task=True)) if who else call.task]
    if which == PRIO_PGRP:
        group = kernel.host_id(who, group=True) if who else os.getpgid(call.process.tgid)
        return [t for t in list(kernel.tasks.values())
                if t.process is not None and signal_calls.pgid_or_none(t.process.tgid) == group]
    if which == PRIO_USER:
        uid = who or call.task.creds.ruid
        return [t for t in list(kernel.tasks.values()) if t.creds is not None and t.creds.ruid == uid]
    raise SyscallError(errno.EINVAL)


@handler("getpriority", note="PRIO_USER counts the sandbox's processes of that real uid only")
def sys_getpriority(call):
    which, who = call.args[0], call.args[1]
    if which != PRIO_USER:
        return Rewrite(args={1: _prio_target(call, which, who)}, restore=True)
    best = None
    for t in _prio_tasks(call, which, who):
        try:
            best = max(best or 0, 20 - os.getpriority(os.PRIO_PROCESS, t.tid))
        except OSError:
            pass                                  # gone meanwhile
    if best is None:
        raise SyscallError(errno.ESRCH)
    return best


@handler("setpriority", note="done by the Sentry on each task it names, with Linux's checks on the "
         "emulated credentials: CAP_SYS_NICE lowers a nice value below RLIMIT_NICE's floor")
def sys_setpriority(call):
    which, who, niceval = call.args[0], call.args[1], max(-20, min(19, call.args[2]))
    if which not in (PRIO_PROCESS, PRIO_PGRP, PRIO_USER):
        raise SyscallError(errno.EINVAL)
    me = call.task.creds
    error = errno.ESRCH
    for t in _prio_tasks(call, which, who):
        if t is None or t.creds is None:
            continue
        try:
            me.may_reschedule(t.creds)
        except SyscallError as e:
            error = e.errno
            continue
        try:
            now = os.getpriority(os.PRIO_PROCESS, t.tid)
            floor = 20 - host_soft_limit(t.tid, "Max nice priority")
            if niceval < now and niceval < floor and not me.capable(CAP_SYS_NICE):
                error = errno.EACCES
                continue
            os.setpriority(os.PRIO_PROCESS, t.tid, niceval)
        except OSError as e:
            if e.errno == errno.ESRCH:
                continue                          # gone meanwhile
            error = e.errno
            continue
        if error == errno.ESRCH:
            error = 0
    if error:
        raise SyscallError(error)
    return 0


# IOPRIO_WHO_PROCESS, _PGRP and _USER (1, 2, 3) are PRIO_PROCESS, _PGRP and _USER + 1
@handler("ioprio_get", "ioprio_set", support="partial", note="IOPRIO_WHO_USER is refused")
def sys_ioprio(call):
    return Rewrite(args={1: _prio_target(call, call.args[0] - 1, call.args[1])}, restore=True)


# ---- pidfd ioctls: what a pidfd says of its process ------------------------------

PIDFS_IOCTL_TYPE, PIDFD_GET_INFO_NR = 0xFF, 11
PIDFD_INFO_PID, PIDFD_INFO_CREDS, PIDFD_INFO_CGROUPID = 1, 2, 4
# struct pidfd_info: mask, cgroupid, then pid, tgid, ppid, then ruid rgid euid egid suid sgid fsuid fsgid
INFO_IDS_AT, INFO_CREDS_AT, INFO_MIN = 16, 28, 60


def pidfd_ioctl(call, req):
    """ioctl type 0xFF, pidfs's.  PIDFD_GET_INFO names the process by host
    pid and host ids: its answer is translated.  The namespace getters
    (PIDFD_GET_*_NAMESPACE) would hand out the host's namespaces, whose
    ioctls translate pids between them: ENOTTY, as on a kernel without them."""
    if call.host_fd_path(call.fd(0)) != "anon_inode:[pidfd]":
        return PASS                      # another driver's ioctl of type 0xFF
    if req & 0xFF != PIDFD_GET_INFO_NR:
        raise SyscallError(errno.ENOTTY)
    kernel, addr, size = call.kernel, call.args[2], (req >> 16) & 0x3FFF

    def done(task, result):
        if result != 0 or size < INFO_MIN:
            return result
        try:
            info = bytearray(call.read(addr, INFO_MIN))
        except SyscallError:
            return result
        mask = struct.unpack_from("<Q", info)[0]
        host_pid = struct.unpack_from("<I", info, INFO_IDS_AT)[0]
        if mask & PIDFD_INFO_PID:
            struct.pack_into("<III", info, INFO_IDS_AT,
                             *(kernel.vpid(v) for v in struct.unpack_from("<III", info, INFO_IDS_AT)))
        if mask & PIDFD_INFO_CREDS:
            creds = kernel.creds_of(host_pid)
            ids = ((creds.ruid, creds.rgid, creds.euid, creds.egid, creds.suid, creds.sgid,
                    creds.fsuid, creds.fsgid) if creds else (OVERFLOW_ID,) * 8)
            struct.pack_into("<8I", info, INFO_CREDS_AT, *ids)
        # the host's cgroup: the sandbox has none of its own to name
        struct.pack_into("<QQ", info, 0, mask & ~PIDFD_INFO_CGROUPID, 0)
        try:
            call.write(addr, bytes(info))
        except SyscallError:
            pass
        return result
    return Rewrite(on_exit=done)


# ---- prctl: the options that name a process, and init's subreaper bit -------

PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER, PR_SCHED_CORE = 36, 37, 62
PR_GET_SECCOMP, PR_SET_SECCOMP = 21, 22
PR_SET_PTRACER = 0x59616D61
PR_SET_PTRACER_ANY = -1
PIDTYPE_PGID = 2


@handler("prctl", support="partial",
         note="allowed in BPF but for the options that name a pid (translated), init's "
              "child-subreaper bit (emulated: the host's must stay set) and the capability "
              "options (keep-caps, securebits, bounding and ambient sets, no_new_privs: "
              "emulated) and the seccomp ones (the guest's own mode; a filter's EACCES)")
def sys_prctl(call):
    option, kernel = call.args[0], call.kernel
    if option in credentials.CRED_PRCTLS:
        return credentials.prctl_creds(call, option)
    if option in (PR_GET_SECCOMP, PR_SET_SECCOMP):
        return _prctl_seccomp(call, option)
    pidns = call.process.pidns
    is_init = pidns is not None and pidns.init == call.process.tgid
    if option == PR_SET_CHILD_SUBREAPER and is_init:
        # it inherits its namespace's orphans either way, as a namespace's init does
        pidns.init_subreaper = bool(call.args[1])
        return 0
    if option == PR_GET_CHILD_SUBREAPER and is_init:
        call.write(call.args[1], struct.pack("<i", pidns.init_subreaper))
        return 0
    if option == PR_SCHED_CORE:
        pid = sint(call.args[2])
        if pid <= 0:
            return PASS
        host = kernel.host_id(pid, group=sint(call.args[3]) == PIDTYPE_PGID, task=True)
        return Rewrite(args={2: host}, restore=True)
    if option == PR_SET_PTRACER:
        pid = sint(call.args[1])
        if pid in (0, PR_SET_PTRACER_ANY):
            return PASS
        try:
            host = kernel.host_id(pid)
        except SyscallError:
            raise SyscallError(errno.EINVAL)           # as for a pid that does not exist
        return Rewrite(args={1: host}, restore=True)
    return PASS


# ---- waiting -----------------------------------------------------------------

P_PID, P_PGID = 1, 2              # idtype; P_ALL (0) needs no translation
WNOWAIT = 0x01000000


def _reaped(call, host, flags):
    if host > 0 and not flags & WNOWAIT:
        call.kernel.reaped(host)


# wait4's options (kernel_wait4 checks them first): WNOHANG, WUNTRACED,
# WCONTINUED, __WNOTHREAD, __WCLONE, __WALL
WAIT4_OPTIONS = 0x1 | 0x2 | 0x8 | 0x20000000 | 0x80000000 | 0x40000000
INT_MIN = -2 ** 31


@handler("wait4", note="pids in and out are virtual")
def sys_wait4(call):
    pid, options = call.args[0], call.args[2]
    kernel = call.kernel
    if pid == INT_MIN:
        # a group whose id -pid cannot be: ESRCH, once the options passed
        raise SyscallError(errno.EINVAL if options & ~WAIT4_OPTIONS & 0xFFFFFFFF else errno.ESRCH)
    if call.task.reaping is not None and pid == call.task.reaping:
        return PASS          # the Sentry's own: a refused child reaped (Kernel.refuse)
    if pid > 0:
        host = kernel.viewer.host(pid)
        if host is None or not kernel.in_sandbox_host(host):
            raise SyscallError(errno.ECHILD)
        arg = host
    elif pid < -1:
        try:
            arg = -kernel.host_id(-pid, group=True)
        except SyscallError:
            raise SyscallError(errno.ECHILD)
    else:
        arg = pid

    def done(task, result):
        if result <= 0:
            return result
        v = kernel.vpid(result)
        if call.args[1]:
            kernel.show_core_dump(task, result, call.args[1])
        _reaped(call, result, options)
        return v
    return Rewrite(args={0: arg}, on_exit=done)


@handler("waitid", note="pids in and out (siginfo) are virtual")
def sys_waitid(call):
    idtype, vid, infop, options = call.args[0], call.args[1], call.args[2], call.args[3]
    kernel = call.kernel
    arg = vid
    if idtype == P_PID:
        host = kernel.viewer.host(vid) if vid > 0 else None
        if host is None or not kernel.in_sandbox_host(host):
            raise SyscallError(errno.ECHILD if vid > 0 else errno.EINVAL)
        arg = host
    elif idtype == P_PGID and vid > 0:
        try:
            arg = kernel.host_id(vid, group=True)
        except SyscallError:
            raise SyscallError(errno.ECHILD)

    def done(task, result):
        if result != 0 or not infop:
            return result
        from sentry.kernel import siginfo
        try:
            raw = call.read(infop, siginfo.STATUS_OFFSET + 4)
            host = struct.unpack_from("<i", raw, siginfo.PID_OFFSET)[0]
            call.write(infop, siginfo.translate(kernel, None, raw))
        except SyscallError:
            return result
        _reaped(call, host, options)
        return result
    return Rewrite(args={1: arg}, on_exit=done)


SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_NEW_LISTENER = 1, 1 << 3
SECCOMP_FILTER_FLAGS = (1 << 6) - 1        # TSYNC, LOG, SPEC_ALLOW, NEW_LISTENER, TSYNC_ESRCH, WAIT_KILLABLE_RECV
SECCOMP_MODE_FILTER = 2
BPF_MAXINSNS = 4096


def _install_filter(call, flags, fprog):
    """A guest's own filter, as the kernel's seccomp_set_mode_filter checks
    it up to the point only the kernel can go on: the host's no_new_privs
    is always set, so without the emulated flag or CAP_SYS_ADMIN it is
    EACCES here.  The Rewrite counts it in the guest's view once it holds."""
    if flags & ~SECCOMP_FILTER_FLAGS:
        raise SyscallError(errno.EINVAL)
    # a process that has run no program yet runs sentry's own set-up (the
    # OCI profile, loaded as runc loads it, privileged, whatever the user)
    own_setup = call.process.exe == ""
    if not call.task.creds.may_confine_itself() and not own_setup:
        length = struct.unpack("<H", call.read(fprog, 2))[0]      # EFAULT first
        if length == 0 or length > BPF_MAXINSNS:
            raise SyscallError(errno.EINVAL)
        raise SyscallError(errno.EACCES)
    tasks = [call.task]
    if flags & SECCOMP_FILTER_FLAG_TSYNC:
        proc = call.process
        tasks = [t for t in list(call.kernel.tasks.values()) if t.process is proc and t.creds is not None]

    def done(task, result):
        if result == 0:           # (TSYNC's failure is a tid: none took it)
            for t in tasks:
                t.creds.seccomp_filters += 1
        return result
    return Rewrite(on_exit=done)


@handler("seccomp", support="partial",
         note="a guest's own filters stack under the Sentry's; a user-notification listener is refused "
              "(EBUSY); without no_new_privs (emulated) or CAP_SYS_ADMIN a filter is EACCES")
def sys_seccomp(call):
    # A SECCOMP_RET_USER_NOTIF filter outranks the Sentry's RET_TRACE, and its
    # supervisor could answer "continue": the call would run untrapped.  The
    # flags are in a register: the check holds.
    op, flags = call.args[0], call.args[1]
    if op == SECCOMP_SET_MODE_FILTER:
        if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER:
            raise SyscallError(errno.EBUSY)
        return _install_filter(call, flags, call.args[2])
    # strict mode is the kernel's EINVAL: the host task is in filter mode already
    return PASS


def _prctl_seccomp(call, option):
    """PR_GET_SECCOMP: the guest's own mode (the Sentry's filter is not the
    guest's); PR_SET_SECCOMP: seccomp(2)'s, flags 0."""
    if option == PR_GET_SECCOMP:
        return SECCOMP_MODE_FILTER if call.task.creds.seccomp_filters else 0
    if call.args[1] == SECCOMP_MODE_FILTER:
        return _install_filter(call, 0, call.args[2])
    return PASS


LANDLOCK_FLAGS_INVALID = 0xFFFFFFFF


@handler("landlock_restrict_self", support="partial",
         note="without no_new_privs (emulated) or CAP_SYS_ADMIN: EPERM, as Linux checks it")
def sys_landlock_restrict_self(call):
    """The host's no_new_privs is always set; the guest's is emulated.  The
    kernel checks, in order, that landlock is enabled (EOPNOTSUPP), then
    no_new_privs, then the flags (EINVAL): with flags no call has, its answer
    is the first check's, or EINVAL where the guest gets EPERM."""
    if call.task.creds.may_confine_itself():
        return PASS
    return Rewrite(args={1: LANDLOCK_FLAGS_INVALID},
                   on_exit=lambda task, result: -errno.EPERM if result == -errno.EINVAL else result)
