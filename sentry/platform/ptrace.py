"""Thin Python face of the native tracer (native/tracer.c)."""
import errno
import os
import signal

from sentry._native import ffi, lib

# ptrace requests and options (linux/ptrace.h)
PTRACE_CONT = 7
PTRACE_SYSCALL = 24
PTRACE_GETSIGINFO = 0x4202
PTRACE_SETSIGINFO = 0x4203
PTRACE_SEIZE = 0x4206
PTRACE_LISTEN = 0x4208

O_TRACESYSGOOD = 1
O_TRACEFORK = 1 << 1
O_TRACEVFORK = 1 << 2
O_TRACECLONE = 1 << 3
O_TRACEEXEC = 1 << 4
O_TRACEEXIT = 1 << 6
O_TRACESECCOMP = 1 << 7
O_EXITKILL = 1 << 20

TRACE_OPTIONS = (O_TRACESYSGOOD | O_TRACEFORK | O_TRACEVFORK | O_TRACECLONE
                 | O_TRACEEXEC | O_TRACEEXIT | O_TRACESECCOMP | O_EXITKILL)

# event kinds reported by sn_wait (tracer.h)
EXITED, SIGNALED, SECCOMP, SYSCALL_EXIT, FORK, VFORK, CLONE, EXEC, EXIT, \
    VFORK_DONE, GROUP_STOP, NEW_STOP, SIGNAL, OTHER_EVENT, GONE = range(1, 16)


class TaskGone(Exception):
    """The task vanished (SIGKILL from elsewhere, exit): normal, never fatal."""


def check(ret):
    if ret < 0:
        if ret == -errno.ESRCH:
            raise TaskGone()
        raise OSError(-ret, os.strerror(-ret))
    return ret


def seize(pid):
    check(lib.sn_ptrace(PTRACE_SEIZE, pid, 0, TRACE_OPTIONS))


def resume(tid, sig=0):
    """PTRACE_CONT; a vanished task is fine."""
    return lib.sn_ptrace(PTRACE_CONT, tid, 0, sig)


def resume_to_exit(tid, sig=0):
    """Let the call run and stop again at its syscall-exit."""
    return lib.sn_ptrace(PTRACE_SYSCALL, tid, 0, sig)


def listen(tid):
    return lib.sn_ptrace(PTRACE_LISTEN, tid, 0, 0)


def getregs(tid):
    regs = ffi.new("sn_regs *")
    check(lib.sn_getregs(tid, regs))
    return regs


def setregs(tid, regs):
    check(lib.sn_setregs(tid, regs))


SIGINFO_SIZE = 128


def getsiginfo(tid):
    """The siginfo of the signal a task is stopped for (bytes), or None."""
    buf = ffi.new("char[]", SIGINFO_SIZE)
    if lib.sn_ptrace(PTRACE_GETSIGINFO, tid, 0, int(ffi.cast("uintptr_t", buf))) < 0:
        return None
    return ffi.buffer(buf, SIGINFO_SIZE)[:]


def setsiginfo(tid, raw):
    buf = ffi.new("char[]", raw)
    lib.sn_ptrace(PTRACE_SETSIGINFO, tid, 0, int(ffi.cast("uintptr_t", buf)))


def new_event():
    return ffi.new("sn_event *")


def wait(event):
    """Next stop that needs Python; -errno (ECHILD when no tracee is left)."""
    return lib.sn_wait(event)


def tgkill(tgid, tid, sig):
    """Signal one thread (ESRCH and the like are ignored: it may be gone)."""
    lib.sn_tgkill(tgid, tid, sig)


def kill_task(tid):
    try:
        os.kill(tid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def counters():
    c = ffi.new("sn_counters *")
    lib.sn_get_counters(c)
    return {k: getattr(c, k) for k in ("seccomp_stops", "fast_allowed", "fast_denied",
                                       "killed_foreign", "fast_paths", "python_exit_stops",
                                       "python_other_stops", "staging_first", "c_other_stops",
                                       "staging_in_c")}


def ffi_copy(regs):
    out = ffi.new("sn_regs *")
    ffi.memmove(out, regs, ffi.sizeof("sn_regs"))
    return out


def ffi_copy_into(dst, src):
    ffi.memmove(dst, src, ffi.sizeof("sn_regs"))


def regs_of(event):
    """Pointer to the registers inside an event (valid until the next wait)."""
    return ffi.addressof(event[0], "regs")
