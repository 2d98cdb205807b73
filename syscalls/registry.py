"""How a handler is declared, and the three outcomes it can return.

A handler is `fn(call) -> outcome`, registered with `@handler("name", ...)`.
It returns an int (emulate: the Sentry's answer, the host call is skipped),
`PASS` (let the host run the call unchanged), or a `Rewrite` (the host runs a
changed call in the guest's context).  It raises SyscallError to deny.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

HANDLERS = {}          # name -> Entry


class _Pass:
    def __repr__(self):
        return "PASS"


PASS = _Pass()


@dataclass
class Rewrite:
    nr: Optional[int] = None                  # new syscall number, None = same
    args: dict = field(default_factory=dict)  # arg index -> new value
    on_exit: Optional[Callable] = None        # fn(task, result) -> new result or None


@dataclass
class Entry:
    name: str
    fn: Callable
    support: str = "full"      # full | partial
    note: str = ""
    stages: bool = False       # needs the staging area mapped


def handler(*names, support="full", note="", stages=False):
    def register(fn):
        for name in names:
            HANDLERS[name] = Entry(name, fn, support, note, stages)
        return fn
    return register
