"""--strace: one line per trapped syscall, like `runsc --strace`.

Names and argument prototypes come from python-ptrace; strings are read once
from guest memory and shown quoted.  Each line says which outcome the call
took (emulated / rewritten / passed / denied) and its result.
"""
import errno
import logging

from ptrace.syscall.prototypes import SYSCALL_PROTOTYPES

from sentry.platform import memory

log = logging.getLogger("sentry.strace")

STRING_ARGS = {"filename", "pathname", "path", "oldname", "newname", "name",
               "oldpath", "newpath", "linkpath", "target", "specialfile"}


def _errname(e):
    return errno.errorcode.get(e, str(e))


class Tracer:
    def format_args(self, tid, name, args):
        proto = SYSCALL_PROTOTYPES.get(name)
        if proto is None:
            return ", ".join(hex(a) for a in args[:6])
        out = []
        for (ctype, argname), value in zip(proto[1], args):
            if "char *" in ctype and argname in STRING_ARGS:
                try:
                    s = memory.read_string(tid, value, 256)
                    out.append(repr(s.decode(errors="replace")))
                except Exception:
                    out.append(hex(value))
            elif "*" in ctype:
                out.append(hex(value))
            elif ctype in ("int", "unsigned int", "pid_t", "uid_t", "gid_t"):
                v = value & 0xFFFFFFFF
                out.append(str(v - (1 << 32) if ctype in ("int", "pid_t") and v >= 1 << 31 else v))
            else:
                out.append(str(value) if value < 1 << 32 else hex(value))
        return ", ".join(out)

    def enter(self, task, call, entry, outcome):
        task.strace_entry = (entry.name, self.format_args(task.tid, entry.name, call.args), outcome)

    def exit(self, task, result):
        if task.strace_entry is None:
            return
        name, args, outcome = task.strace_entry
        task.strace_entry = None
        res = f"-1 {_errname(-result)}" if -4096 < result < 0 else (hex(result) if result > 1 << 32 else str(result))
        log.info("[%6d] %s(%s) = %s (%s)", task.tid, name, args, res, outcome)
