"""The kernel's syscall interface: a trapped call as handlers see it (the task,
its args, guest memory), the outcomes a handler returns, and the table the
dispatcher reads.

Handlers live above, in syscalls/: they build a SyscallTable, which the top
layer (sentry/sandbox/start.py) hands to the Kernel, so nothing here knows them.

A handler is `fn(call) -> outcome`.  It returns an int (emulate: the Sentry's
answer, the host call is skipped), `PASS` (let the host run the call
unchanged), or a `Rewrite` (the host runs a changed call in the guest's
context).  It raises SyscallError to deny.
"""
import errno
import os

from sentry.errors import SyscallError
from sentry.kernel import abi
from sentry.platform import memory, staging

AT_FDCWD = -100


def sint(v):
    """An `int` argument: the kernel looks at the low 32 bits only."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


class NeedStaging(Exception):
    """The address space has no staging area yet; the kernel maps one and
    lets the call trap again."""


class Inject(Exception):
    """Run syscall `nr(*args)` in the guest first, then(result) with its
    result; the guest's own call then runs again from its syscall
    instruction and traps again (Kernel.inject)."""

    def __init__(self, nr, args, then):
        super().__init__(nr)
        self.nr, self.args, self.then = nr, args, then


class After:
    """What an Inject's then() may answer instead of a result: the guest's
    call gets `result`, but first run() runs from its exit stop, with the
    guest's own registers as the exit registers (a Kernel.inject_after of
    the Sentry's: fdtraps.trap_after loading a filter on the fd just handed
    over); run() returns whether it injected a call (else the guest's
    registers are put back at once)."""

    def __init__(self, result, run):
        self.result, self.run = result, run


class Handover(Inject):
    """Put the Sentry's own `fd` into the calling thread's fd table -- at
    number `at` (what was there is closed, as by dup2) or at the lowest free
    one -- atomically, before any other thread can name it
    (platform/handover.py); then(result) with the number or -errno, as for
    Inject: None runs the guest's call again, a value is its result.  The
    Sentry's copy of `fd` is closed once handed over (or not)."""

    def __init__(self, fd, then, at=None, cloexec=False):
        super().__init__(None, (), then)
        self.fd, self.at, self.cloexec = fd, at, cloexec


class Call:
    """`args` are the arguments as the kernel reads them, each decoded by its
    declared C type (sentry/kernel/abi.py): an `int` is its low 32 bits,
    sign-extended.  Handlers use nothing else; `raw` keeps the registers."""

    def __init__(self, kernel, task, regs, decode=abi.RAW):
        self.kernel = kernel
        self.task = task
        self.regs = regs
        self.nr = regs.orig_rax
        self.raw = (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9)
        self.args = decode(self.raw)

    @property
    def tid(self):
        return self.task.tid

    @property
    def process(self):
        return self.task.process

    @property
    def mounts(self):
        """The caller's mount namespace's table, which its paths resolve in."""
        return self.kernel.mounts_of(self.task.process)

    def may_search(self, dir_st):
        """Asked by the path walk for each directory it passes: EACCES when
        the guest's emulated ids may not search it (checked only for a guest
        the host's own check does not cover, Credentials.checks_files)."""
        creds = self.task.creds
        if creds is not None and creds.checks_files:
            creds.check(dir_st, 1)

    @property
    def checks_search(self):
        creds = self.task.creds
        return creds is not None and creds.checks_files

    def fd(self, i):
        return sint(self.args[i])

    def string(self, i, limit=memory.PATH_MAX):
        return memory.read_string(self.tid, self.args[i], limit)

    def path(self, i):
        p = self.string(i)
        if not p:
            raise SyscallError(errno.ENOENT)
        return p

    def read(self, addr, n):
        return memory.read(self.tid, addr, n)

    def write(self, addr, data):
        memory.write(self.tid, addr, data)

    def slot(self):
        """This thread's staging slot, mapping the area first if needed."""
        slots = self.task.slots
        if not slots.mapped:
            raise NeedStaging()
        return slots.slot_of(self.tid)

    def stage(self, *chunks):
        return staging.stage(self.tid, self.slot(), *chunks)

    def umask(self):
        with open(f"/proc/{self.tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
        return 0o022

    def host_fd_path(self, fd):
        """What the host kernel says guest fd `fd` refers to."""
        try:
            return os.readlink(f"/proc/{self.tid}/fd/{fd}")
        except FileNotFoundError:
            raise SyscallError(errno.EBADF)


class _Pass:
    def __repr__(self):
        return "PASS"


PASS = _Pass()


class Rewrite:
    __slots__ = ("nr", "args", "on_exit", "restore")

    def __init__(self, nr=None, args=None, on_exit=None, restore=True):
        self.nr = nr                  # new syscall number, None = same
        self.args = args or {}        # arg index -> new value
        self.on_exit = on_exit        # fn(task, result) -> new result or None
        # the guest's own registers go back at the syscall exit: the kernel
        # keeps every register but rax, rcx and r11 across a syscall, and
        # code may keep a value in an argument register across one (nor
        # may it see a host pid or a staging address there).  False only
        # for execve, whose exit is a new image's first registers
        self.restore = restore


class Handler:
    """A handler as registered for one syscall name (syscalls/registry.py)."""
    __slots__ = ("name", "fn", "support", "note")

    def __init__(self, name, fn, support="full", note=""):
        self.name = name
        self.fn = fn
        self.support = support        # full | partial
        self.note = note


class TableEntry:
    __slots__ = ("nr", "name", "outcome", "handler", "deny_errno", "_note", "arg_types", "allow_if",
                 "_decode", "_args", "_classes", "_describe")

    def __init__(self, nr, name, outcome, handler=None, deny_errno=errno.ENOSYS, note="", arg_types=None,
                 args=(), classes=frozenset(), allow_if=None, describe=None):
        self.nr = nr
        self.name = name
        self.outcome = outcome
        self.handler = handler
        self.deny_errno = deny_errno
        self._note = note
        # ((C type, name), ...) as the kernel declares them; None: unknown
        self.arg_types = arg_types
        self.allow_if = allow_if        # the argument checks under which BPF allows it
        # made on first use: a start needs a few dozen of some 370 (see decode, args)
        self._decode = None
        self._args = args
        self._classes = classes
        self._describe = describe       # () -> (args, classes), when they are not given

    @property
    def decode(self):
        """The registers -> the arguments as the kernel reads them (abi.py)."""
        d = self._decode
        if d is None:
            d = self._decode = abi.decoder([abi.kind_of(t) for t, _ in self.arg_types or ()])
        return d

    def _described(self):
        if self._describe is not None:
            self._args, self._classes = self._describe()
            self._describe = None

    @property
    def args(self):
        """What each argument means (syscalls/signature.py)."""
        self._described()
        return self._args

    @property
    def classes(self):
        """strace's %file, %network... classes."""
        self._described()
        return self._classes

    def prototype(self):
        """`name(int dfd, const char *filename, ...)`, or `name(?)` when unknown."""
        if self.arg_types is None:
            return f"{self.name}(?)"
        return f"{self.name}({', '.join(a.declaration() for a in self.args)})"

    @property
    def note(self):
        """The handler's own note, else the table's."""
        return (self.handler.note if self.handler is not None else "") or self._note

    @property
    def support(self):
        if self.outcome in ("allow", "allow-if", "native"):
            return "full"
        if self.handler is not None:
            return self.handler.support
        return "none"


class SyscallTable:
    """Every syscall number the host knows -> its TableEntry (outcomes in
    syscalls/table.py); a number it does not know is denied."""

    def __init__(self, entries):
        self.entries = entries
        self._unknown = {}

    def entry(self, nr):
        e = self.entries.get(nr)
        if e is None:
            e = self._unknown.get(nr)
            if e is None:
                e = self._unknown[nr] = TableEntry(nr, f"syscall_{nr}", "deny", None, errno.ENOSYS,
                                                   "unknown to sentry")
        return e
