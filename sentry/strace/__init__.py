"""--strace: one line per syscall the Sentry sees, as strace prints it.

    [pid     1] openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3 (rewritten)

Each argument is shown by its meaning, declared once in the syscall table
(syscalls/signature.py) and formatted by sentry/strace/format.py.  Arguments
the kernel reads are formatted at the call's entry (before it runs, while the
guest's memory still holds them: execve's argv is gone after it), those it
writes at its exit.  The pid is the sandbox's, and the line ends with the
outcome the Sentry chose: emulated, rewritten, passed or denied.
"""
import logging
import time

from sentry.strace import format as fmt

log = logging.getLogger("sentry.strace")

TIMESTAMPS = ("t", "tt", "ttt")          # strace -t, -tt, -ttt: the time of the call
DURATION = "T"                           # strace -T: time spent in it
NO_RETURN = {"exit", "exit_group"}


def parse_time_options(spec):
    """`--strace-time=tt,T` -> (timestamp style or None, show durations)."""
    stamp, duration = None, False
    for item in filter(None, (s.strip() for s in (spec or "").split(","))):
        if item in TIMESTAMPS:
            stamp = item
        elif item == DURATION:
            duration = True
        else:
            raise ValueError(f"unknown --strace-time option {item!r} (t, tt, ttt, T)")
    return stamp, duration


def _stamp(style, when):
    if style == "ttt":
        return f"{when:.6f} "
    t = time.localtime(when)
    base = time.strftime("%H:%M:%S", t)
    return f"{base}.{int(when % 1 * 1e6):06d} " if style == "tt" else base + " "


class Pending:
    """A call between its entry and its exit: what was shown at entry."""
    __slots__ = ("entry", "args", "shown", "outcome", "start")

    def __init__(self, entry, args, shown, outcome, start):
        self.entry, self.args, self.shown, self.outcome, self.start = entry, args, shown, outcome, start


class Tracer:
    """`select`: the names to show (None: all); `timestamps`: None or one of
    TIMESTAMPS; `durations`: add strace -T's `<seconds>`; `string_limit`:
    strace -s."""

    def __init__(self, select=None, timestamps=None, durations=False,
                 string_limit=fmt.STRING_LIMIT):
        self.select = select
        self.timestamps = timestamps
        self.durations = durations
        self.string_limit = string_limit

    def begin(self, task):
        """The call trapped: its time starts now (a handler may run long)."""
        task.strace_start = time.time()

    def wants(self, entry):
        return self.select is None or entry.name in self.select

    def enter(self, task, call, entry, outcome):
        if not self.wants(entry):
            task.strace_entry = None
            return
        ctx = fmt.Context(task.tid, call.args, None, self.string_limit)
        shown = []
        for i, a in enumerate(entry.args):
            shown.append(None if a.out else self._arg(entry, i, ctx))
        if entry.arg_types is None:     # undeclared: the six registers
            shown = [hex(v) for v in call.args]
        for i in fmt.omitted(entry.args, call.args):
            shown[i] = ""
        start = getattr(task, "strace_start", None) or time.time()
        task.strace_entry = Pending(entry, call.args, shown, outcome, start)
        if entry.name in NO_RETURN:      # no exit stop: shown now, as strace does
            self.exit(task, None)

    def _arg(self, entry, i, ctx):
        try:
            return fmt.arg(entry.name, entry.args, i, ctx)
        except Exception:               # a printer bug must not stop the guest
            log.debug("strace: cannot format %s arg %d", entry.name, i, exc_info=True)
            return hex(ctx.args[i])

    def exit(self, task, result):
        p = task.strace_entry
        if p is None:
            return
        task.strace_entry = None
        end = time.time()
        ctx = fmt.Context(task.tid, p.args, result, self.string_limit)
        args = [s if s is not None else self._arg(p.entry, i, ctx) for i, s in enumerate(p.shown)]
        shown = "?" if result is None else fmt.result(p.entry.name, result)
        line = f"{p.entry.name}({', '.join(a for a in args if a != '')}) = {shown}"
        if self.durations:
            line += f" <{end - p.start:.6f}>"
        if self.timestamps:
            line = _stamp(self.timestamps, p.start) + line
        log.info("[pid %5d] %s (%s)", task.vtid or task.tid, line, p.outcome)
