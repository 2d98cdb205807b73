"""How a handler is declared, and the three outcomes it can return.

A handler is `fn(call) -> outcome`, registered with `@handler("name", ...)`.
It returns an int (emulate: the Sentry's answer, the host call is skipped),
`PASS` (let the host run the call unchanged), or a `Rewrite` (the host runs a
changed call in the guest's context).  It raises SyscallError to deny.
"""
HANDLERS = {}          # name -> Entry


class _Pass:
    def __repr__(self):
        return "PASS"


PASS = _Pass()


class Rewrite:
    __slots__ = ("nr", "args", "on_exit", "restore")

    def __init__(self, nr=None, args=None, on_exit=None, restore=False):
        self.nr = nr                  # new syscall number, None = same
        self.args = args or {}        # arg index -> new value
        self.on_exit = on_exit        # fn(task, result) -> new result or None
        # the args are host ids (pids): the guest's own go back into its
        # registers at the syscall exit (the kernel preserves them; the
        # guest may rely on it, and must not see a host pid there)
        self.restore = restore


class Entry:
    __slots__ = ("name", "fn", "support", "note")

    def __init__(self, name, fn, support="full", note=""):
        self.name = name
        self.fn = fn
        self.support = support        # full | partial
        self.note = note


def handler(*names, support="full", note=""):
    def register(fn):
        for name in names:
            HANDLERS[name] = Entry(name, fn, support, note)
        return fn
    return register
